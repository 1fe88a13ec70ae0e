"""A learned learning-rate controller vs fixed rates and schedules on a held-out task; env speed.

    python benchmarks/training_control.py                      # → results/training_control.md
    python benchmarks/training_control.py --total-env-steps 300 --seeds 0 --output /tmp/x.md

Runs applications/training_control.py's pipeline: for each controller seed
trains 3 candidate DQN controllers on `tfrl/TrainingControl-v1` over the
training tasks and keeps the one with the best final accuracy inside
`model.fit` on the validation task (`--select-task`, default
`mlp2:synthetic6`; `--candidates 1` skips the choice), exports it, then
runs plain `model.fit` on the held-out task (default `dropout:synthetic8`)
for every evaluation seed with the exported controller
(`tfrl.keras.RLController`), a 5-point fixed-rate grid, `ReduceLROnPlateau`
and cosine decay. Every candidate is also run on the held-out task and
listed, kept or not, so the results show what the choice bought. Final
validation accuracy as mean ± 95% CI; the controller vs the best grid rate,
chosen with hindsight on these very runs (a bar no practical method meets
without a search): the headline interval is across controllers (each
averaged over the seeds), as each controller is one draw of the training;
the per-seed pairing is also shown. All scores are on the held-out task's
validation split (held-out task, not held-out data: the controller observes
that split during fit).

Env speed: `TrainingControl-v1` decisions (training epochs) per second per
task, and the same epochs through one plain `model.fit(epochs=8)` call per
episode (on a fresh model each, like the env, and on one warm model), measured
side by side in this invocation.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time

from tfrl.console import quiet

quiet()

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import gymnasium as gym  # noqa: E402
import machine  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_agents  # noqa: E402

import tfrl  # noqa: E402
from applications import training_control as app  # noqa: E402
from environments import training_control as tc  # noqa: E402
from tfrl.atomic import atomic_write_text  # noqa: E402
from tfrl.errors import TfrlError  # noqa: E402
from tfrl.keras.controller import band_metadata  # noqa: E402
from tfrl.stats import mean_ci  # noqa: E402


def env_speed(task: str, episodes: int = 2, epochs: int = 8) -> tuple[float, float, float]:
    """Epochs/s on `task`: (env decisions, fresh-model `fit(epochs)`, warm-model `fit(epochs)`).

    The env builds a fresh model per episode and trains it one `step` (epoch,
    with validation) at a time. The baselines train `episodes` × `epochs`
    epochs through one plain `model.fit(epochs=epochs)` call per episode: on a
    fresh model each (Keras builds and traces its train function every time),
    and on one already-fitted model (no set-up left: the pure epoch rate).
    """
    env = gym.make("tfrl/TrainingControl-v1", tasks=(task,), epochs=epochs)
    env.reset(seed=0)
    start, steps = time.perf_counter(), 0
    for episode in range(episodes):
        env.reset(seed=episode + 1)
        terminated = False
        while not terminated:
            _, _, terminated, _, _ = env.step(1)
            steps += 1
    env_rate = steps / (time.perf_counter() - start)
    model_name, dataset_name = task.split(":")
    x, y, x_val, y_val = tc.load_dataset(dataset_name)

    def new_model() -> tf.keras.Model:
        model = tc.make_model(model_name, x.shape[1:], int(y.max()) + 1)
        model.compile(
            tf.keras.optimizers.SGD(0.03, momentum=0.9),
            tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        return model

    def fit(model: tf.keras.Model, num_epochs: int) -> None:
        model.fit(x, y, validation_data=(x_val, y_val), epochs=num_epochs, batch_size=64, verbose=0)

    warm = new_model()
    fit(warm, 1)  # warm-up
    start = time.perf_counter()
    for _ in range(episodes):
        fit(new_model(), epochs)
    fresh_rate = episodes * epochs / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(episodes):
        fit(warm, epochs)
    warm_rate = episodes * epochs / (time.perf_counter() - start)
    return env_rate, fresh_rate, warm_rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train-tasks", default=app.Args.train_tasks)
    parser.add_argument("--eval-task", default=app.Args.eval_task)
    parser.add_argument("--seeds", default=",".join(str(s) for s in range(10)))
    parser.add_argument("--controller-seeds", default="0,1,2")
    parser.add_argument("--total-env-steps", type=int, default=app.Args.total_env_steps)
    parser.add_argument("--gamma", type=float, default=app.Args.gamma)
    parser.add_argument("--replay-ratio", type=int, default=app.Args.replay_ratio)
    parser.add_argument(
        "--double-q", action=argparse.BooleanOptionalAction, default=app.Args.double_q
    )
    parser.add_argument("--lr-range", default=app.Args.lr_range)
    parser.add_argument("--candidates", type=int, default=3)
    parser.add_argument("--select-task", default=app.Args.select_task)
    parser.add_argument("--select-seeds", default=app.Args.select_seeds)
    parser.add_argument(
        "--env-speed",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure the env's decisions/s against model.fit (about a minute)",
    )
    parser.add_argument(
        "--output", default=os.path.join(ROOT, "benchmarks/results/training_control.md")
    )
    options = parser.parse_args()
    command = " ".join(
        ["python", os.path.relpath(os.path.abspath(sys.argv[0]), ROOT), *sys.argv[1:]]
    )
    args = app.Args(
        train_tasks=options.train_tasks,
        eval_task=options.eval_task,
        total_env_steps=options.total_env_steps,
        seeds=options.seeds,
        gamma=options.gamma,
        replay_ratio=options.replay_ratio,
        double_q=options.double_q,
        lr_range=options.lr_range,
        candidates=options.candidates,
        select_task=options.select_task,
        select_seeds=options.select_seeds,
        verbose=0,
    )
    try:  # every flag is checked before the first fit
        app.check_args(args)
    except TfrlError as e:  # ConfigError, UnknownNameError
        parser.error(str(e))
    controller_seeds = [int(s) for s in options.controller_seeds.split(",")]
    runs = app.evaluate_methods(
        args, "", [m for m in app.default_methods(args) if m != "RLController"]
    )
    controllers, train_seconds, candidate_runs = {}, [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in controller_seeds:
            args.seed = seed
            agent, candidates = app.select_controller(args)
            train_seconds.append(sum(c["seconds"] for c in candidates))
            path = tfrl.export(
                agent,
                os.path.join(tmp, f"lr_controller_{seed}"),
                metadata=band_metadata(app.lr_range(args)),
            )
            name = f"RLController (controller seed {seed})"
            controllers[name] = app.evaluate_methods(args, path, ["RLController"])["RLController"]
            finals = app.final_accuracies(controllers[name])
            print(f"{name}: {np.mean(finals):.4f} ({train_seconds[-1]:.0f} s)", flush=True)
            for candidate in candidates:
                if candidate["agent"] is agent:
                    candidate["held_out"] = float(np.mean(finals))
                else:  # what a choice among candidates avoided or missed, on the held-out task
                    other = app.evaluate_methods(args, candidate["agent"].policy, ["RLController"])
                    scores = app.final_accuracies(other["RLController"])
                    candidate["held_out"] = float(np.mean(scores))
                candidate_runs.append(
                    {**candidate, "kept": candidate["agent"] is agent, "of": seed}
                )
    eval_seeds = len(args.seeds.split(","))
    # The controllers' mean per evaluation seed: what a user gets from "a" trained controller.
    runs = {
        "RLController": [
            {
                "val_accuracy": np.mean([c[i]["val_accuracy"] for c in controllers.values()], 0),
                "learning_rate": controllers[next(iter(controllers))][i]["learning_rate"],
            }
            for i in range(eval_seeds)
        ],
        **runs,
    }
    png = os.path.splitext(options.output)[0] + "_curves.png"
    app.plot_curves(runs, png, f"held-out task {args.eval_task}")
    speed_tasks = ("mlp:digits", "cnn:digits", args.eval_task) if options.env_speed else ()
    speeds = [(task, *env_speed(task)) for task in speed_tasks]
    validation_size = len(tc.load_dataset(args.eval_task.split(":")[1])[3])

    finals = {m: app.final_accuracies(seed_runs) for m, seed_runs in runs.items()}
    per_controller = {
        name: app.final_accuracies(seed_runs) for name, seed_runs in controllers.items()
    }
    grid = [m for m in finals if m.startswith("fixed")]
    best = max(grid, key=lambda m: np.mean(finals[m]))
    band = app.lr_range(args)
    seconds = ", ".join(f"{t:.0f}" for t in train_seconds)
    lines = [
        "# Learning-rate control in model.fit: a learned controller vs fixed rates and schedules",
        "",
        f"Command: `{command}`",
        "",
        f"Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC}. "
        f"Versions: Python {platform.python_version()}, tensorflow {tf.__version__}, "
        f"tf-agents {tf_agents.__version__}, gymnasium {gym.__version__}, "
        f"tfrl {tfrl.__version__}. Machine: {machine.describe()}, shared with other jobs while "
        "this ran (times are noisy).",
        "",
        f"Controllers: {len(controller_seeds)} "
        f"{'double ' if args.double_q else ''}DQNs (MLP 64-64, Adam 1e-3, "
        f"γ = {args.gamma:g}, {args.replay_ratio} gradient steps per decision), trained "
        f"with seeds {options.controller_seeds}, {args.total_env_steps:,} decisions each "
        + (
            f"(each the best of {args.candidates} candidates, trained with seeds "
            f"seed·{args.candidates} … seed·{args.candidates} + {args.candidates - 1} and chosen "
            f"by their mean final accuracy in fit on the validation task `{args.select_task}`, "
            f"evaluation seeds {args.select_seeds}; training {seconds} s per controller with its "
            "candidates) "
            if args.candidates > 1
            else f"({seconds} s) "
        )
        + "on `tfrl/TrainingControl-v1` "
        f"with tasks {args.train_tasks}, "
        f"{args.epochs} epochs per episode, SGD + momentum 0.9, initial rate drawn log-uniformly "
        f"in [0.003, 0.3], the rate kept within ÷{band[0]:g} and ×{band[1]:g} of its start. "
        "Evaluation: plain `model.fit` on the held-out task "
        f"`{args.eval_task}` (its model and its data set are absent from the training tasks), "
        f"{args.epochs} epochs, batch 64, evaluation seeds "
        f"{args.seeds}; the controller, ReduceLROnPlateau (val_loss, ×0.5, patience 2) and "
        f"cosine decay start at {args.initial_lr}.",
        "",
        "| method | final val accuracy (mean ± 95% CI) | per seed |",
        "|---|---|---|",
    ]
    for method, values in {**per_controller, **finals}.items():
        mean, half = mean_ci(values)
        if method == "RLController":
            method = f"**RLController, mean of the {len(controllers)} controllers**"
        name = method
        per_seed = ", ".join(f"{v:.4f}" for v in values)
        lines.append(f"| {name} | {mean:.4f} ± {half:.4f} | {per_seed} |")
    diff_mean, diff_half = mean_ci([a - b for a, b in zip(finals["RLController"], finals[best])])
    best_mean = float(np.mean(finals[best]))
    by_controller = [float(np.mean(v)) - best_mean for v in per_controller.values()]
    ctl_mean, ctl_half = mean_ci(by_controller)
    verdict = "wins" if ctl_mean > 0 else ("ties" if ctl_mean == 0 else "loses")
    lines += [
        "",
        f"Controllers − best fixed rate of the grid ({best}, chosen with hindsight), across the "
        f"{len(controllers)} controllers (each averaged over the evaluation seeds, so the "
        f"interval covers how much controllers differ): {ctl_mean:+.4f} ± {ctl_half:.4f} "
        "(95% CI; per controller: "
        + ", ".join(f"{d:+.4f}" for d in by_controller)
        + f"): the learned controller {verdict} on average, "
        f"{'significant' if abs(ctl_mean) > ctl_half else 'not significant'} at 5% with "
        f"{len(controllers)} controllers. Paired by evaluation seed with the controllers "
        f"averaged (blind to how much controllers differ, so too narrow): "
        f"{diff_mean:+.4f} ± {diff_half:.4f}.",
        "",
        "Every score is the final accuracy on the held-out task's validation split: the data "
        "the controller observes during fit, ReduceLROnPlateau monitors and the grid's best "
        "rate is picked on with hindsight. 'Held out' means a task (model and data set) no "
        "controller trained on, not unseen test data. That split holds "
        f"{validation_size} samples (one sample is {1 / validation_size:.4f} of accuracy); "
        f"every method runs on the same {eval_seeds} evaluation seeds.",
        "",
        *(
            [
                f"Candidates (each controller seed's {args.candidates}; the kept one is the "
                "controller above). The choice sees only the validation task; the held-out "
                "column is measured for every candidate, so it shows what the choice bought:",
                "",
                f"| controller seed | candidate seed | `{args.select_task}` (chooses) "
                f"| `{args.eval_task}` (held out) | kept |",
                "|---|---|---|---|---|",
                *[
                    f"| {c['of']} | {c['seed']} | {c['score']:.4f} | {c['held_out']:.4f} | "
                    f"{'yes' if c['kept'] else ''} |"
                    for c in candidate_runs
                ],
                "",
            ]
            if args.candidates > 1
            else []
        ),
        "Learning rates each controller chose (first evaluation seed):",
        "",
        *[
            f"- {name}: " + " ".join(f"{r:.3g}" for r in seed_runs[0]["learning_rate"])
            for name, seed_runs in controllers.items()
        ],
        "",
        f"Curves (validation accuracy and learning rate by epoch): "
        f"[{os.path.basename(png)}]({os.path.basename(png)}).",
    ]
    if speeds:
        lines += [
            "",
            "## Env speed (this invocation)",
            "",
            "Epochs per second, each with validation; the baselines make one plain "
            "`model.fit(epochs=8)` call per episode.",
            "",
            "| task | env decisions/s | fit, fresh model per episode | env / fresh fit "
            "| fit, one warm model | env / warm fit |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {t} | {a:.1f} | {b:.1f} | {a / b:.1f}× | {c:.1f} | {a / c:.2f}× |"
            for t, a, b, c in speeds
        ]
    atomic_write_text(options.output, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
