"""A learned learning-rate controller inside `model.fit`, against fixed rates and schedules.

    python applications/training_control.py            # train, evaluate on a held-out task, export
    python applications/training_control.py --total-env-steps 300 --seeds 0 --grid 0.03
    python applications/training_control.py --help

1. Trains a double-DQN controller on `tfrl/TrainingControl-v1`: every
   episode trains a fresh small Keras model (one of `--train-tasks`) with
   SGD + momentum for `--epochs` epochs; after each epoch the controller
   halves, keeps or doubles the learning rate (between a tenth and twice the
   starting rate, `--lr-range 10,2`) and is rewarded by the change of
   validation accuracy (plus the final accuracy). Undiscounted (γ = 1), so
   maximising its return maximises the final accuracy (the return is twice
   the final accuracy less the first epoch's). With `--candidates K` it trains K
   controllers and keeps the one that does best inside `model.fit` on
   `--select-task`, a validation task (what the benchmark does, with K = 3).
2. Exports it to `saved_models/lr_controller/<N>/`.
3. On the held-out task (a model and a data set absent from `--train-tasks`;
   an evaluation data set that is trained on is refused) runs plain
   `model.fit` for each seed with: the exported controller through
   `tfrl.keras.RLController`, each fixed rate of `--grid`,
   `ReduceLROnPlateau` and cosine decay (both from `--initial-lr`, like the
   controller), and prints the final validation accuracies (mean ± 95% CI).
   A curves PNG shows validation accuracy and the learning rate by epoch.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from typing import Any

from tfrl.cli import flags
from tfrl.console import quiet

quiet()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfrl  # noqa: E402
from environments import training_control as tc  # noqa: E402
from environments.training_control.tasks import parse_task  # noqa: E402
from tfrl.atomic import atomic_write_png  # noqa: E402
from tfrl.errors import ConfigError, TfrlError  # noqa: E402
from tfrl.keras import features  # noqa: E402
from tfrl.keras.controller import band_metadata  # noqa: E402
from tfrl.stats import mean_ci  # noqa: E402

ENV_ID = "tfrl/TrainingControl-v1"


@dataclasses.dataclass
class Args:
    train_tasks: str = (
        "linear:digits,mlp:digits,cnn:digits,mlp:synthetic,deep:digits,deep:synthetic,"
        "mlp:noisy,deep:noisy,mlp:wide"
    )
    """comma-separated '<model>:<dataset>' tasks the controller trains on"""
    eval_task: str = "dropout:synthetic8"
    """held-out task evaluated inside model.fit (its model and data set are never trained on)"""
    epochs: int = 15
    """epochs per training run (the controller decides after each but the last)"""
    total_env_steps: int = 12_000
    """controller training budget in decisions (env steps)"""
    gamma: float = 1.0
    """controller's discount (at 1.0 the per-epoch changes telescope, so maximising the return
    maximises the final accuracy; below 1 early gains count more than the final accuracy)"""
    replay_ratio: int = 4
    """DQN gradient steps per decision (env step)"""
    double_q: bool = True
    """Double DQN targets (less over-estimation of the noisy action values)"""
    initial_lr: float = 0.03
    """starting rate of the controller, ReduceLROnPlateau and cosine decay"""
    lr_range: str = "10,2"
    """how far the controlled rate may move from its start: 'r' (÷r to ×r) or 'down,up'
    (÷down to ×up), in the env and in RLController"""
    grid: str = "0.003,0.01,0.03,0.1,0.3"
    """fixed learning rates to compare with"""
    seeds: str = "0,1,2"
    """evaluation seeds (weights and data order of the held-out runs)"""
    seed: int = 0
    """seed of controller training (with --candidates K, candidates seed·K … seed·K + K − 1)"""
    candidates: int = 1
    """controllers to train; with more than one, the one whose final accuracy on
    --select-task is best is kept (each training seed can land on a poor controller)"""
    select_task: str = "mlp2:synthetic6"
    """validation task that picks among the candidates: neither trained on nor the held-out task"""
    select_seeds: str = "0,1,2"
    """evaluation seeds of that choice"""
    export_base: str = "saved_models"
    """the controller goes to <export_base>/lr_controller/<N>/"""
    plot: str = "runs/training_control/curves.png"
    """curves PNG ('' skips it)"""
    verbose: int = 1
    """1 shows controller-training progress, 0 only the summary"""


def parse_args(argv: list[str] | None = None) -> Args:
    parser = flags.parser_for(Args, __doc__)
    args = Args(**vars(parser.parse_args(argv)))
    try:
        check_args(args)
    except TfrlError as e:  # ConfigError, UnknownNameError
        parser.error(str(e))
    return args


def check_args(args: Args) -> None:
    """The flags that can be checked before any training; a `ConfigError` names the first bad
    one (the export directory is only known to be writable when the export is written)."""
    for task in args.train_tasks.split(","):
        parse_task(task)
    check_held_out(args)
    lr_range(args)
    if args.candidates < 1:
        raise ConfigError(f"--candidates {args.candidates} must be at least 1.")
    if args.epochs < 2:
        raise ConfigError(f"--epochs {args.epochs} must be at least 2 (one decision per epoch).")
    if args.total_env_steps < 1:
        raise ConfigError(f"--total-env-steps {args.total_env_steps} must be at least 1.")
    if not 0 < args.initial_lr <= 1:
        raise ConfigError(f"--initial-lr {args.initial_lr} must be a rate in (0, 1].")
    if not 0 <= args.gamma <= 1:
        raise ConfigError(f"--gamma {args.gamma} must be a discount in [0, 1].")
    if args.replay_ratio < 1:
        raise ConfigError(f"--replay-ratio {args.replay_ratio} must be at least 1.")
    if args.seed < 0:
        raise ConfigError(f"--seed {args.seed} must be a whole number ≥ 0.")
    for flag, value, kind in (
        ("--grid", args.grid, float),
        ("--seeds", args.seeds, int),
        ("--select-seeds", args.select_seeds, int),
    ):
        try:
            values = [kind(v) for v in value.split(",")]
        except ValueError:
            values = []
        valid = all(0 < v <= 1 for v in values) if kind is float else all(v >= 0 for v in values)
        if not values or not valid:
            what = "rates in (0, 1]" if kind is float else "whole numbers ≥ 0"
            raise ConfigError(f"{flag} {value!r} must be comma-separated {what}, e.g. '0,1,2'.")


def lr_range(args: Args) -> tuple[float, float]:
    """`--lr-range` as (down, up) factors; a `ConfigError` names a bad value."""
    try:
        values = [float(v) for v in str(args.lr_range).split(",")]
    except ValueError:
        values = []
    if len(values) not in (1, 2):
        raise ConfigError(f"--lr-range {args.lr_range!r} must read 'r' or 'down,up', e.g. '10,2'.")
    down, up = values if len(values) == 2 else values * 2
    return features.check_lr_range((down, up), "--lr-range")


def check_held_out(args: Args) -> None:
    """Refuses an evaluation (or selection) task whose data set the controller trains on."""
    _, eval_dataset = parse_task(args.eval_task)
    train_tasks = args.train_tasks.split(",")
    overlap = [t for t in train_tasks if parse_task(t)[1] == eval_dataset]
    if overlap:
        raise ConfigError(
            f"--eval-task {args.eval_task} is not held out: its data set {eval_dataset!r} is in "
            f"--train-tasks ({', '.join(overlap)}), so the comparison would measure a controller "
            f"on data it trained on. Evaluate on a data set absent from --train-tasks "
            f"(default: {Args.eval_task})."
        )
    if args.candidates > 1:
        _, select_dataset = parse_task(args.select_task)
        if select_dataset == eval_dataset or any(
            parse_task(t)[1] == select_dataset for t in train_tasks
        ):
            raise ConfigError(
                f"--select-task {args.select_task} must use a data set that is neither in "
                "--train-tasks nor the held-out task's, or the choice among candidates would "
                "look at data it is judged on."
            )


def train_controller(args: Args):
    """DQN on the training tasks; returns (agent, seconds)."""
    tfrl.set_seed(args.seed)
    env = tfrl.envs.make(
        ENV_ID,
        seed=args.seed,
        tasks=tuple(args.train_tasks.split(",")),
        epochs=args.epochs,
        initial_learning_rate=(0.003, 0.3),
        lr_range=lr_range(args),
    )
    agent = tfrl.agents.make(
        "dqn",
        env,
        learning_rate=1e-3,
        gamma=args.gamma,
        hidden_units=(64, 64),
        epsilon_end=0.05,
        exploration_steps=max(args.total_env_steps // 2, 1),
        learning_starts=min(200, args.total_env_steps // 2),
        collect_env_steps=args.epochs - 1,
        train_steps=args.replay_ratio * (args.epochs - 1),
        batch_size=64,
        target_update_period=100,
        double_q=args.double_q,
    )
    start = time.perf_counter()
    tfrl.Trainer(agent, env, seed=args.seed).fit(
        args.total_env_steps, eval_every=None, verbose=args.verbose
    )
    return agent, time.perf_counter() - start


def select_controller(args: Args) -> tuple[Any, list[dict]]:
    """Trains `args.candidates` controllers and keeps the best on `args.select_task`.

    Returns (the kept agent, one dict per candidate: seed, agent, training
    seconds and validation score, the mean final accuracy on the selection
    task; no score with a single candidate).
    """
    candidates = []
    for index in range(args.candidates):
        seed = args.seed * args.candidates + index
        agent, seconds = train_controller(dataclasses.replace(args, seed=seed))
        candidates.append({"seed": seed, "agent": agent, "seconds": seconds})
    if len(candidates) > 1:
        choice = dataclasses.replace(args, eval_task=args.select_task, seeds=args.select_seeds)
        for candidate in candidates:
            runs = evaluate_methods(choice, candidate["agent"].policy, ["RLController"])
            candidate["score"] = float(np.mean(final_accuracies(runs["RLController"])))
    best = max(candidates, key=lambda c: c.get("score", 0.0))
    return best["agent"], candidates


def final_accuracies(seed_runs: list[dict]) -> list[float]:
    """The final validation accuracy of each run (one per evaluation seed)."""
    return [run["val_accuracy"][-1] for run in seed_runs]


def fit_held_out(args: Args, seed: int, method: str, controller: Any) -> dict:
    """One plain `model.fit` on the held-out task; returns val accuracy and rate per epoch."""
    model_name, dataset_name = args.eval_task.split(":")
    x, y, x_val, y_val = tc.load_dataset(dataset_name)
    tfrl.set_seed(seed)
    model = tc.make_model(model_name, x.shape[1:], int(y.max()) + 1)
    callbacks: list = []
    lr: float | tf.keras.optimizers.schedules.LearningRateSchedule = args.initial_lr
    if method == "RLController":
        callbacks.append(tfrl.keras.RLController(controller, lr_range=lr_range(args)))
    elif method == "ReduceLROnPlateau":
        callbacks.append(tf.keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.5, patience=2))
    elif method == "cosine decay":
        steps = args.epochs * math.ceil(len(y) / 64)
        lr = tf.keras.optimizers.schedules.CosineDecay(args.initial_lr, steps)
    else:
        lr = float(method.split("=")[1])
    model.compile(
        tf.keras.optimizers.SGD(lr, momentum=0.9),
        tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    rates = _RateLog()
    history = model.fit(
        x,
        y,
        validation_data=(x_val, y_val),
        epochs=args.epochs,
        batch_size=64,
        callbacks=[*callbacks, rates],
        verbose=0,
    )
    return {"val_accuracy": history.history["val_accuracy"], "learning_rate": rates.rates}


class _RateLog(tf.keras.callbacks.Callback):
    """The learning rate in effect during each epoch, read back from the optimizer."""

    def on_train_begin(self, logs=None):
        self.rates = []

    def on_epoch_begin(self, epoch, logs=None):
        lr = self.model.optimizer.learning_rate
        if isinstance(lr, tf.keras.optimizers.schedules.LearningRateSchedule):
            lr = lr(self.model.optimizer.iterations)
        self.rates.append(float(tf.keras.backend.get_value(lr)))


def default_methods(args: Args) -> list[str]:
    """The controller, each rate of the grid, ReduceLROnPlateau and cosine decay."""
    return [
        "RLController",
        *[f"fixed lr={g}" for g in args.grid.split(",")],
        "ReduceLROnPlateau",
        "cosine decay",
    ]


def evaluate_methods(
    args: Args, controller: Any, methods: list[str] | None = None
) -> dict[str, list[dict]]:
    """Every method (default: the controller, the grid and both schedules) × seed, held out."""
    methods = default_methods(args) if methods is None else methods
    seeds = [int(s) for s in args.seeds.split(",")]
    return {m: [fit_held_out(args, s, m, controller) for s in seeds] for m in methods}


def plot_curves(runs: dict[str, list[dict]], path: str, title: str) -> None:
    """Validation accuracy (mean over seeds) and the learning rate, by epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for method, seed_runs in runs.items():
        style = {"linewidth": 2.5, "color": "black"} if method == "RLController" else {}
        accuracy = np.mean([r["val_accuracy"] for r in seed_runs], axis=0)
        epochs = np.arange(1, len(accuracy) + 1)
        left.plot(epochs, accuracy, label=method, **style)
        right.plot(epochs, seed_runs[0]["learning_rate"], label=method, **style)
    left.set(xlabel="epoch", ylabel="validation accuracy (mean over seeds)", title=title)
    left.set_ylim(max(0.0, left.get_ylim()[0]), None)
    right.set(xlabel="epoch", ylabel="learning rate (first seed)", yscale="log")
    right.legend(fontsize=8)
    fig.tight_layout()
    atomic_write_png(fig, path)
    plt.close(fig)


def main(args: Args) -> int:
    check_args(args)
    agent, candidates = select_controller(args)
    seconds = sum(c["seconds"] for c in candidates)
    count = f"{len(candidates)} candidates × " if len(candidates) > 1 else ""
    print(
        f"Controller: DQN, {count}{args.total_env_steps:,} decisions on {args.train_tasks} "
        f"in {seconds:.0f} s"
    )
    if len(candidates) > 1:
        scores = ", ".join(f"seed {c['seed']}: {c['score']:.4f}" for c in candidates)
        print(f"Kept the best of {len(candidates)} on {args.select_task} ({scores})")
    path = tfrl.export(
        agent,
        os.path.join(args.export_base, "lr_controller"),
        metadata=band_metadata(lr_range(args)),
    )
    print(f"Exported to {path}")
    runs = evaluate_methods(args, path)
    print(
        f"Held-out task {args.eval_task}, SGD + momentum 0.9, {args.epochs} epochs, "
        f"seeds {args.seeds}:"
    )
    print(f"{'method':<22}{'final val acc.':>16}{'± 95% CI':>10}")
    for method, seed_runs in runs.items():
        mean, half = mean_ci(final_accuracies(seed_runs))
        interval = f"{half:>10.4f}" if math.isfinite(half) else f"{'(1 seed)':>10}"
        print(f"{method:<22}{mean:>16.4f}{interval}")
    rates = runs["RLController"][0]["learning_rate"]
    print("RLController's rates (first seed): " + " ".join(f"{r:.3g}" for r in rates))
    if args.plot:
        plot_curves(runs, args.plot, args.eval_task)
        print(f"Curves: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main(parse_args()))
