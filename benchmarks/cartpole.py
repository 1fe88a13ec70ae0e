"""CartPole-v1 DQN: tfrl's defaults vs its peers as their users run them, and a loop comparison.

    python benchmarks/cartpole.py                       # seeds 0 1 2 → results/cartpole.md
    python benchmarks/cartpole.py --seeds 0 --max-env-steps 30000 --output /tmp/x.md

Per seed, one after another, in this one invocation:

- tfrl: `tfrl train CartPole-v1 --agent dqn` as shipped (the tuned row of
  tfrl/agents/tuned/dqn.yaml over DQNConfig's defaults; `tfrl hparams CartPole-v1`).
- TF-Agents tutorial: the DQN tutorial (docs/tutorials/1_dqn_tutorial.ipynb)
  with its own settings, written here from its description: its Q-network
  (Dense 100 and 50, ReLU, variance-scaling initialisation; a Q-value layer
  initialised uniform in ±0.03 with bias -0.2), Adam 1e-3, squared TD loss,
  `DqnAgent` defaults otherwise (ε-greedy 0.1, target update every step,
  γ 1.0), 100 initial random steps, then per iteration one env step and one
  `agent.train` on a batch of 64 two-step samples. Its replay is the earlier
  tutorial's in-graph one (a `TFUniformReplayBuffer` of 100,000 read through
  `as_dataset(num_parallel_calls=3).prefetch(3)`, a `DynamicStepDriver`),
  not the current notebook's Reverb server and Python driver, so no server
  process is needed.
- SB3: stable-baselines3 DQN with the RL Zoo's CartPole-v1 row
  (benchmarks/sb3_dqn.py, run in a subprocess by the Python of `.venv-peers`,
  which `make bench` creates from benchmarks/requirements-peers.txt: torch needs a
  newer typing-extensions than tf-agents allows, so SB3 gets an environment of its own,
  as its users would have).
- Loop comparison (kept apart): the same tfrl DQN agent (network, batch,
  replay, replay ratio) driven by tfrl's Trainer and by the tutorial's loop,
  which trains once per 1/ratio env steps; env steps/s over a fixed budget.

Protocol (../shared/BENCHMARKS.md): evaluate every 2,000 env steps with 20
greedy episodes on separate seeded envs; solved = first evaluation with mean
≥ 475; keep training for 10 more evaluations to report stability; training
seconds exclude evaluation; ratios tfrl / faster peer per seed, and medians.
The sides of a seed run one after another, in an order that rotates with the
seed; each run records the 1-minute load average when it starts, and a run
whose env steps/s is under half its side's median is marked as slowed.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

from tfrl.console import quiet

quiet()

import machine  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_agents  # noqa: E402
from tf_agents.agents.dqn import dqn_agent  # noqa: E402
from tf_agents.drivers import dynamic_step_driver  # noqa: E402
from tf_agents.networks import sequential  # noqa: E402
from tf_agents.policies import random_tf_policy  # noqa: E402
from tf_agents.replay_buffers import tf_uniform_replay_buffer  # noqa: E402
from tf_agents.utils import common  # noqa: E402

import tfrl  # noqa: E402
from tfrl.atomic import atomic_write_text  # noqa: E402
from tfrl.training import loops  # noqa: E402
from tfrl.training.run import RunConfig, build_trainer  # noqa: E402

ENV_ID = "CartPole-v1"
SOLVED = 475.0
EVAL_EVERY = 2_000
EVAL_EPISODES = 20
STABILITY_EVALS = 10


@dataclasses.dataclass
class Run:
    side: str
    seed: int
    solved_at: int | None = None
    train_seconds_to_solve: float | None = None
    total_seconds_to_solve: float | None = None
    env_steps: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    eval_returns: list[float] = dataclasses.field(default_factory=list)
    load: float = dataclasses.field(default_factory=lambda: os.getloadavg()[0])

    @property
    def steps_per_sec(self) -> float:
        return self.env_steps / self.train_seconds if self.train_seconds else 0.0

    solved_index: int = -1

    @property
    def after_solving(self) -> list[float]:
        """Mean returns of the (up to 10) evaluations after the solving one."""
        if self.solved_at is None:
            return []
        return self.eval_returns[self.solved_index + 1 : self.solved_index + 1 + STABILITY_EVALS]


class Protocol:
    """Evaluates on separate seeded envs and decides when a run may stop."""

    def __init__(self, run: Run, max_env_steps: int):
        self.run = run
        self.max_env_steps = max_env_steps
        self.eval_env = tfrl.envs.make(ENV_ID, num_envs=EVAL_EPISODES, seed=10_000 + run.seed)
        self.next_eval = EVAL_EVERY

    def maybe_evaluate(self, env_steps: int, train_seconds: float, policy) -> bool:
        """Returns True when the run is finished."""
        run = self.run
        run.env_steps, run.train_seconds = env_steps, train_seconds
        if env_steps < self.next_eval:
            return env_steps >= self.max_env_steps
        self.next_eval += EVAL_EVERY
        start = time.perf_counter()
        mean = tfrl.evaluate(policy, self.eval_env, EVAL_EPISODES).mean
        run.eval_seconds += time.perf_counter() - start
        run.eval_returns.append(mean)
        if run.solved_at is None and mean >= SOLVED:
            run.solved_at = env_steps
            run.solved_index = len(run.eval_returns) - 1
            run.train_seconds_to_solve = train_seconds
            run.total_seconds_to_solve = train_seconds + run.eval_seconds
        stable_done = run.solved_at is not None and len(run.after_solving) >= STABILITY_EVALS
        return stable_done or env_steps >= self.max_env_steps


def _seed_everything(seed: int) -> None:
    """Python, NumPy and TensorFlow RNGs, and TF op determinism (`tfrl.set_seed`)."""
    tfrl.set_seed(seed)


def run_tfrl(seed: int, max_env_steps: int) -> Run:
    """`tfrl train CartPole-v1 --agent dqn --seed SEED` as shipped (tuned row over defaults)."""
    _seed_everything(seed)
    trainer = build_trainer(RunConfig(env_id=ENV_ID, agent="dqn", seed=seed))
    agent = trainer.agent
    run = Run("tfrl", seed)
    protocol = Protocol(run, max_env_steps)

    class Stop(tfrl.callbacks.Callback):
        def on_iteration_end(self, env_steps, logs):
            if protocol.maybe_evaluate(env_steps, logs["train_seconds"], agent.policy):
                self.trainer.stop_training = True

    trainer.fit(10**9, eval_every=None, callbacks=[Stop()], verbose=0)
    return run


def _tutorial_loop(env, agent, replay, batch_size: int, on_step, train_every: float = 1.0):
    """The TF-Agents DQN tutorial's collect/train loop; `on_step(env_steps, seconds)` → stop?

    One env step per iteration (a `DynamicStepDriver` with num_steps=1), then
    `agent.train` on a batch from `replay.as_dataset` whenever a whole train step
    is due (`train_every` train steps per env step; the tutorial's is 1).
    """
    driver = dynamic_step_driver.DynamicStepDriver(
        env, agent.collect_policy, observers=[replay.add_batch], num_steps=1
    )
    driver.run = common.function(driver.run)
    if not getattr(agent, "_tutorial_compiled", False):
        agent.train = common.function(agent.train)
        agent._tutorial_compiled = True
    steps = agent.train_sequence_length or 2  # the tutorial's 2; n-step agents need n + 1
    dataset = replay.as_dataset(num_parallel_calls=3, sample_batch_size=batch_size, num_steps=steps)
    iterator = iter(dataset.prefetch(3))
    counter = getattr(agent, "env_step_counter", None)
    count_step = common.function(lambda: counter.assign_add(1)) if counter is not None else None
    time_step, policy_state = env.reset(), agent.collect_policy.get_initial_state(1)
    env_steps, credit, seconds = 0, 0.0, 0.0
    while True:
        start = time.perf_counter()
        time_step, policy_state = driver.run(time_step, policy_state)
        if count_step is not None:
            count_step()
        env_steps += 1
        credit += train_every
        while credit >= 1.0:
            experience, _ = next(iterator)
            agent.train(experience)
            credit -= 1.0
        seconds += time.perf_counter() - start
        if on_step(env_steps, seconds):
            return


def _tutorial_q_network(num_actions: int) -> sequential.Sequential:
    """The tutorial's Q-network: two ReLU layers, then Q-values started near -0.2."""
    hidden = [
        tf.keras.layers.Dense(
            units,
            activation="relu",
            kernel_initializer=tf.keras.initializers.VarianceScaling(
                scale=2.0, mode="fan_in", distribution="truncated_normal"
            ),
        )
        for units in (100, 50)
    ]
    q_values = tf.keras.layers.Dense(
        num_actions,
        kernel_initializer=tf.keras.initializers.RandomUniform(-0.03, 0.03),
        bias_initializer=tf.keras.initializers.Constant(-0.2),
    )
    return sequential.Sequential([*hidden, q_values])


def run_tutorial(seed: int, max_env_steps: int) -> Run:
    """The TF-Agents DQN tutorial with its own network, learning rate and loop."""
    _seed_everything(seed)
    env = tfrl.envs.make(ENV_ID, num_envs=1, seed=seed)
    agent = dqn_agent.DqnAgent(
        env.time_step_spec(),
        env.action_spec(),
        q_network=_tutorial_q_network(int(env.action_spec().maximum) + 1),
        optimizer=tf.keras.optimizers.Adam(learning_rate=1e-3),
        td_errors_loss_fn=common.element_wise_squared_loss,
        train_step_counter=tf.Variable(0),
    )
    agent.initialize()
    replay = tf_uniform_replay_buffer.TFUniformReplayBuffer(
        data_spec=agent.collect_data_spec, batch_size=1, max_length=100_000
    )
    run = Run("TF-Agents tutorial", seed)
    protocol = Protocol(run, max_env_steps)
    start = time.perf_counter()
    random_policy = random_tf_policy.RandomTFPolicy(env.time_step_spec(), env.action_spec())
    dynamic_step_driver.DynamicStepDriver(
        env, random_policy, observers=[replay.add_batch], num_steps=100
    ).run(env.reset())
    initial_seconds = time.perf_counter() - start
    _tutorial_loop(
        env,
        agent,
        replay,
        64,
        lambda steps, seconds: (
            (steps + 100) % 250 == 0
            and protocol.maybe_evaluate(steps + 100, seconds + initial_seconds, agent.policy)
        ),
    )
    return run


def run_sb3(seed: int, max_env_steps: int, python: str) -> Run | None:
    """SB3 DQN with the RL Zoo's CartPole-v1 settings, in its own process and environment."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sb3_dqn.py")
    load = os.getloadavg()[0]
    result = subprocess.run(
        [python, script, "--seed", str(seed), "--max-env-steps", str(max_env_steps)],
        capture_output=True,
        text=True,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        print(f"SB3 run failed (seed {seed}):\n{result.stderr[-2000:]}", flush=True)
        return None
    data = json.loads(lines[-1])
    run = Run("SB3 (RL Zoo)", seed, load=load)
    for field in dataclasses.fields(Run):
        if field.name in data and field.name not in ("side", "seed"):
            setattr(run, field.name, data[field.name])
    run.versions = data.get("versions", "")
    return run


@dataclasses.dataclass
class LoopRun:
    seed: int
    ratio: float
    tfrl_steps_per_sec: float
    tutorial_steps_per_sec: float
    tfrl_no_xla_steps_per_sec: float | None = None


def run_loops(seed: int, env_steps: int) -> LoopRun:
    """Same agent, network, batch and replay ratio; tfrl's Trainer vs the tutorial's loop."""

    def trainer_rate(**hparams) -> tuple[float, object, int]:
        _seed_everything(seed)
        trainer = build_trainer(RunConfig(env_id=ENV_ID, agent="dqn", seed=seed, hparams=hparams))
        warmup = trainer.agent.config.learning_starts + 2 * trainer.iteration_env_steps
        trainer.fit(warmup, eval_every=None, verbose=0)  # compile, fill past learning_starts
        start = time.perf_counter()
        trainer.fit(warmup + env_steps, eval_every=None, verbose=0)
        return (trainer.env_steps - warmup) / (time.perf_counter() - start), trainer, warmup

    ours, trainer, warmup = trainer_rate()
    config = trainer.agent.config
    ratio = config.train_steps / config.collect_env_steps
    ours_no_xla = trainer_rate(jit_compile=False)[0] if config.jit_compile else None

    _seed_everything(seed)
    env = tfrl.envs.make(ENV_ID, num_envs=1, seed=seed)
    agent = tfrl.agents.make("dqn", env, **tfrl.agents.hparams.resolve("dqn", ENV_ID).hparams)
    replay = loops.make_replay_buffer(agent, 1, config.replay_capacity)
    # Warm up as tfrl did (compile, fill past learning_starts), then time the same budget.
    starts = max(config.learning_starts, 8)  # as_dataset's samples need a few items
    _tutorial_loop(env, agent, replay, config.batch_size, lambda n, _: n >= starts, 0.0)
    _tutorial_loop(env, agent, replay, config.batch_size, lambda n, _: n >= warmup - starts, ratio)
    measured = {}

    def timed(steps, seconds):
        measured.setdefault("t0", seconds)
        measured["t1"] = seconds
        return steps >= env_steps + 1

    _tutorial_loop(env, agent, replay, config.batch_size, timed, train_every=ratio)
    theirs = env_steps / (measured["t1"] - measured["t0"])
    return LoopRun(seed, ratio, ours, theirs, ours_no_xla)


def _slowed(seeds, runs) -> set[tuple[int, str]]:
    """(seed, side) of runs under half their side's median env steps/s."""
    rates: dict[str, list[float]] = {}
    for seed in seeds:
        for r in runs[seed]:
            rates.setdefault(r.side, []).append(r.steps_per_sec)
    return {
        (seed, r.side)
        for seed in seeds
        for r in runs[seed]
        if r.steps_per_sec < 0.5 * statistics.median(rates[r.side])
    }


def _fmt(x, digits=1):
    return "—" if x is None else f"{x:,.{digits}f}"


def _stability(r: Run) -> str:
    after = r.after_solving
    if not after:
        return "—"
    held = "yes" if len(after) == STABILITY_EVALS and min(after) >= SOLVED else "no"
    return f"{statistics.mean(after):.1f} / {min(after):.0f} / {held}"


def report(seeds, runs, loop_runs, command, repeat=None, versions="") -> str:
    lines = [
        "# CartPole-v1 DQN: tfrl's defaults vs peers as their users run them",
        "",
        f"Command: `{command}`",
        "",
        f"Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC}. "
        f"Versions: Python {platform.python_version()}, tensorflow {tf.__version__}, "
        f"tf-agents {tf_agents.__version__}, tfrl {tfrl.__version__}"
        + (f", {versions}" if versions else "")
        + f". Machine: {machine.describe()}, shared with other jobs while this ran "
        "(times are noisy; compare ratios measured side by side).",
        "",
        "Sides: tfrl = `tfrl train CartPole-v1 --agent dqn` as shipped (`tfrl hparams "
        "CartPole-v1 --agent dqn` prints its settings); TF-Agents tutorial = its DQN tutorial "
        "with its own settings (Q-network 100-50 with the notebook's initialisers, Adam 1e-3, "
        "squared loss, ε 0.1, target every step, γ 1.0, 1 env step + 1 train step per "
        "iteration, batch 64; the earlier notebook's in-graph replay and driver instead of "
        "today's Reverb server); SB3 = "
        "stable-baselines3 DQN with the RL Zoo's CartPole-v1 row (256-256, lr 2.3e-3, "
        "train_freq 256, gradient_steps 128). Evaluation every 2,000 env steps, 20 greedy "
        "episodes on separate seeded envs; times are training seconds, evaluation excluded "
        "unless stated.",
        "",
        "| seed | side | solved at (env steps) | train s to solve | s to solve incl. eval "
        "| env steps/s | load at start | 10 evals after solving: mean / min / all ≥ 475 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    slowed = _slowed(seeds, runs)
    for seed in seeds:
        for r in runs[seed]:
            mark = " (slowed)" if (seed, r.side) in slowed else ""
            lines.append(
                f"| {r.seed} | {r.side} | {_fmt(r.solved_at, 0)} "
                f"| {_fmt(r.train_seconds_to_solve)} | {_fmt(r.total_seconds_to_solve)} "
                f"| {r.steps_per_sec:,.0f}{mark} | {r.load:.1f} | {_stability(r)} |"
            )
    if slowed:
        lines += [
            "",
            "(slowed): env steps/s under half the same side's median over the seeds, most "
            "likely other jobs' load; that seed's time ratio measures the machine as much as "
            "the side. Env steps to solve do not depend on load.",
        ]
    lines += [
        "",
        "Time to solve, tfrl / the faster peer (target ≤ 0.5×), and env steps to solve:",
        "",
        "| seed | faster peer | time ratio | env steps ratio |",
        "|---|---|---|---|",
    ]
    ratios = []
    for seed in seeds:
        ours, *peers = runs[seed]
        solved = [p for p in peers if p.train_seconds_to_solve is not None]
        if ours.train_seconds_to_solve is None or not solved:
            lines.append(f"| {seed} | — | — (a side did not solve) | — |")
            continue
        best = min(solved, key=lambda p: p.train_seconds_to_solve)
        t = ours.train_seconds_to_solve / best.train_seconds_to_solve
        ratios.append(t)
        lines.append(
            f"| {seed} | {best.side} | {t:.3f}× | {ours.solved_at / best.solved_at:.2f}× |"
        )
    held = sum(
        1
        for seed in seeds
        if runs[seed][0].after_solving
        and len(runs[seed][0].after_solving) == STABILITY_EVALS
        and min(runs[seed][0].after_solving) >= SOLVED
    )
    lines += [
        "",
        (
            f"Median time-to-solve ratio: {statistics.median(ratios):.3f}× (target ≤ 0.5×). "
            if ratios
            else "Median time-to-solve ratio: not available. "
        )
        + f"tfrl stayed ≥ 475 in all 10 evaluations after solving on {held}/{len(seeds)} seeds "
        "(target: all).",
        "",
    ]
    if loop_runs:
        lines += [
            "## Loop comparison (same agent, equal replay ratio)",
            "",
            "tfrl's DQN as shipped (same network, batch, replay and replay ratio on both "
            "sides), driven by tfrl's Trainer (8 envs, compiled collect and train phases; the "
            "train phase compiled with XLA when the row sets jit_compile) and by the TF-Agents "
            "tutorial's loop (1 env, 1 env step per iteration, a train step each time one is "
            "due at the same ratio, `agent.train` wrapped in `common.function` as the tutorial "
            "does, without XLA as the tutorial runs). Env steps/s over a fixed budget after "
            "learning_starts, no evaluation. XLA is on tfrl's side only: the last columns time "
            "tfrl's Trainer with jit_compile=False too.",
            "",
            "| seed | train steps per env step | tfrl env steps/s | tutorial loop env steps/s "
            "| ratio | tfrl without XLA | ratio without XLA |",
            "|---|---|---|---|---|---|---|",
        ]
        for lr in loop_runs:
            plain = lr.tfrl_no_xla_steps_per_sec
            lines.append(
                f"| {lr.seed} | {lr.ratio:.2f} | {lr.tfrl_steps_per_sec:,.0f} "
                f"| {lr.tutorial_steps_per_sec:,.0f} "
                f"| {lr.tfrl_steps_per_sec / lr.tutorial_steps_per_sec:.2f}× "
                + (
                    f"| {plain:,.0f} | {plain / lr.tutorial_steps_per_sec:.2f}× |"
                    if plain
                    else "| — | — |"
                )
            )
        med = statistics.median(
            lr.tfrl_steps_per_sec / lr.tutorial_steps_per_sec for lr in loop_runs
        )
        lines += ["", f"Median env steps/s ratio: {med:.2f}× (target ≥ 5×).", ""]
    if repeat is not None:
        first = runs[repeat.seed][0]
        same = first.eval_returns == repeat.eval_returns
        lines.append(
            f"Reproducibility: tfrl seed {repeat.seed} was run a second time in this invocation "
            "(seeded with tfrl.set_seed before building, which also turns on TF op "
            "determinism); "
            + (
                "its evaluation returns were identical."
                if same
                else f"its evaluation returns differed (first run: {_short(first.eval_returns)}; "
                f"second: {_short(repeat.eval_returns)})."
            )
            + " Peers were not repeated."
        )
    return "\n".join(lines) + "\n"


def plot(seeds, runs, path: str) -> None:
    """Evaluation returns against env steps, one panel per seed, one line per side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(seeds), figsize=(4.5 * len(seeds), 3.2), squeeze=False)
    colors = {"tfrl": "tab:blue", "TF-Agents tutorial": "tab:orange", "SB3 (RL Zoo)": "tab:green"}
    for ax, seed in zip(axes.flat, seeds):
        for r in runs[seed]:
            steps = [EVAL_EVERY * (i + 1) for i in range(len(r.eval_returns))]
            ax.plot(steps, r.eval_returns, lw=1.5, label=r.side, color=colors.get(r.side))
            if r.solved_at is not None:
                ax.axvline(steps[r.solved_index], color=colors.get(r.side), ls=":", lw=1)
        ax.axhline(SOLVED, color="gray", ls="--", lw=1)
        ax.set_title(f"CartPole-v1 DQN, seed {seed}", fontsize=10)
        ax.set_xlabel("env steps (evaluated every 2,000)")
        ax.set_ylabel("mean return, 20 greedy episodes")
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, path)


def _short(values: list[float]) -> str:
    return ", ".join(f"{v:.0f}" for v in values[:8]) + (" …" if len(values) > 8 else "")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--max-env-steps",
        type=int,
        default=80_000,
        help="per run, per side; a side stops earlier once 10 evaluations followed its solving one",
    )
    parser.add_argument(
        "--loop-env-steps", type=int, default=4_000, help="timed env steps per loop-comparison side"
    )
    parser.add_argument("--no-sb3", action="store_true", help="skip the SB3 peer")
    parser.add_argument(
        "--sb3-python",
        default=".venv-peers/bin/python",
        help="the Python of an environment with stable-baselines3 and torch (make bench makes it)",
    )
    parser.add_argument("--no-repeat", action="store_true", help="skip re-running tfrl's seed")
    parser.add_argument(
        "--output", default=os.path.join(os.path.dirname(__file__), "results", "cartpole.md")
    )
    args = parser.parse_args()
    command = ("python benchmarks/cartpole.py " + " ".join(sys.argv[1:])).strip()
    runs, loop_runs, versions = {}, [], ""
    sides = {
        "tfrl": lambda seed: run_tfrl(seed, args.max_env_steps),
        "tutorial": lambda seed: run_tutorial(seed, args.max_env_steps),
    }
    if not args.no_sb3:
        sides["sb3"] = lambda seed: run_sb3(seed, args.max_env_steps, args.sb3_python)
    names = list(sides)
    for i, seed in enumerate(args.seeds):
        # The order rotates with the seed, so no side always runs first (or last).
        order = names[i % len(names) :] + names[: i % len(names)]
        done_sides = {name: sides[name](seed) for name in order}
        runs[seed] = [done_sides[n] for n in names if done_sides[n] is not None]
        if done_sides.get("sb3") is not None:
            versions = done_sides["sb3"].versions
        for r in runs[seed]:
            print(
                f"seed {seed} {r.side}: solved at {r.solved_at}, "
                f"{_fmt(r.train_seconds_to_solve)} s, after: {_short(r.after_solving)}",
                flush=True,
            )
        loop_runs.append(run_loops(seed, args.loop_env_steps))
        print(f"seed {seed} loops: {loop_runs[-1]}", flush=True)
        # Written after every seed, so a run stopped early still leaves its finished seeds.
        done = [s for s in args.seeds if s in runs]
        atomic_write_text(args.output, report(done, runs, loop_runs, command, None, versions))
        plot(done, runs, os.path.splitext(args.output)[0] + ".png")
    repeat = None
    if not args.no_repeat:
        repeat = run_tfrl(args.seeds[0], args.max_env_steps)
        print(f"seed {args.seeds[0]} tfrl again: solved at {repeat.solved_at}", flush=True)
    text = report(args.seeds, runs, loop_runs, command, repeat, versions)
    atomic_write_text(args.output, text)
    plot(args.seeds, runs, os.path.splitext(args.output)[0] + ".png")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
