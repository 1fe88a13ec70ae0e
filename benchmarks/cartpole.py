"""tfrl DQN vs the TF-Agents DQN tutorial's training loop on CartPole-v1.

    python benchmarks/cartpole.py                       # seeds 0 1 2 → results/cartpole.md
    python benchmarks/cartpole.py --seeds 0 --max-env-steps 30000 --output /tmp/x.md

Both sides train the same agent (tfrl's DQN with the same network, batch,
replay and exploration settings); only the loop differs:

- tfrl: `tfrl.Trainer` — 8 envs stepped as one batch, 256 env steps
  collected then 128 gradient steps, each phase inside one `tf.function`.
- peer: the loop of the TF-Agents DQN tutorial (tf_agents/colabs/
  1_dqn_tutorial.ipynb): one `TFPyEnvironment`, `DynamicStepDriver` with
  `num_steps=1` under `common.function`, samples from
  `replay_buffer.as_dataset(num_parallel_calls=3, sample_batch_size=64,
  num_steps=2).prefetch(3)`, one env step + one `agent.train` per iteration.

Protocol (../shared/BENCHMARKS.md): evaluate every 2,000 env steps with 20
greedy episodes on separate seeded envs; solved = first evaluation with mean
≥ 475; keep training for 10 more evaluations to report stability; seeds run
one after another; ratios ours/peer per seed.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import statistics
import sys
import time

from tfrl.console import quiet

quiet()

import machine  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_agents  # noqa: E402
from tf_agents.drivers import dynamic_step_driver  # noqa: E402
from tf_agents.utils import common  # noqa: E402

import tfrl  # noqa: E402
from tfrl.training import loops  # noqa: E402

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

    @property
    def steps_per_sec(self) -> float:
        return self.env_steps / self.train_seconds

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


def run_tfrl(seed: int, max_env_steps: int) -> Run:
    tf.random.set_seed(seed)
    env = tfrl.envs.make(ENV_ID, num_envs=8, seed=seed)
    agent = tfrl.agents.make("dqn", env)
    trainer = tfrl.Trainer(agent, env, seed=seed)
    run = Run("tfrl", seed)
    protocol = Protocol(run, max_env_steps)

    class Stop(tfrl.callbacks.Callback):
        def on_iteration_end(self, env_steps, logs):
            if protocol.maybe_evaluate(env_steps, logs["train_seconds"], agent.policy):
                self.trainer.stop_training = True

    trainer.fit(10**9, eval_every=None, callbacks=[Stop()], verbose=0)
    return run


def run_peer(seed: int, max_env_steps: int) -> Run:
    """The TF-Agents DQN tutorial's loop around the same agent."""
    tf.random.set_seed(seed)
    env = tfrl.envs.make(ENV_ID, num_envs=1, seed=seed)
    agent = tfrl.agents.make("dqn", env)
    config = agent.config
    replay = loops.make_replay_buffer(agent, 1, config.replay_capacity)
    driver = dynamic_step_driver.DynamicStepDriver(
        env, agent.collect_policy, observers=[replay.add_batch], num_steps=1
    )
    driver.run = common.function(driver.run)
    agent.train = common.function(agent.train)

    @common.function
    def count_step():
        agent.env_step_counter.assign_add(1)

    run = Run("peer", seed)
    protocol = Protocol(run, max_env_steps)
    time_step, policy_state = env.reset(), agent.collect_policy.get_initial_state(1)
    start = time.perf_counter()
    for _ in range(config.learning_starts):
        time_step, policy_state = driver.run(time_step, policy_state)
        count_step()
    dataset = replay.as_dataset(
        num_parallel_calls=3, sample_batch_size=config.batch_size, num_steps=2
    )
    iterator = iter(dataset.prefetch(3))
    env_steps = config.learning_starts
    train_seconds = time.perf_counter() - start
    while True:
        start = time.perf_counter()
        time_step, policy_state = driver.run(time_step, policy_state)
        count_step()
        experience, _ = next(iterator)
        agent.train(experience)
        env_steps += 1
        train_seconds += time.perf_counter() - start
        if env_steps % 250 == 0 and protocol.maybe_evaluate(env_steps, train_seconds, agent.policy):
            return run


def _fmt(x, digits=1):
    return "—" if x is None else f"{x:,.{digits}f}"


def report(runs: list[tuple[Run, Run]], command: str, repeat: Run | None = None) -> str:
    lines = [
        "# CartPole-v1: tfrl DQN vs the TF-Agents tutorial loop",
        "",
        f"Command: `{command}`",
        "",
        f"Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC}. "
        f"Versions: Python {platform.python_version()}, tensorflow {tf.__version__}, "
        f"tf-agents {tf_agents.__version__}, tfrl {tfrl.__version__}. "
        f"Machine: {machine.describe()}.",
        "",
        "Same agent on both sides (tfrl DQN defaults: MLP 256-256, Adam 2.3e-3, batch 64, "
        "replay 100k, Huber loss, ε 1→0.04 over 8k env steps, target sync every 128 train "
        "steps, 1k env steps before learning). tfrl: 8 envs, 256 env steps then 128 train steps "
        "per iteration. Peer: TF-Agents DQN tutorial loop, 1 env, 1 env step + 1 train step per "
        "iteration. Evaluation: every 2,000 env steps, 20 greedy episodes on separate seeded envs. "
        "Times exclude evaluation unless stated.",
        "",
        "| seed | side | solved at (env steps) | train s to solve | s to solve incl. eval "
        "| env steps/s | mean of 10 evals after solving (min) |",
        "|---|---|---|---|---|---|---|",
    ]
    for ours, peer in runs:
        for r in (ours, peer):
            after = r.after_solving
            stab = f"{statistics.mean(after):.1f} ({min(after):.0f})" if after else "—"
            lines.append(
                f"| {r.seed} | {r.side} | {_fmt(r.solved_at, 0)} "
                f"| {_fmt(r.train_seconds_to_solve)} | {_fmt(r.total_seconds_to_solve)} "
                f"| {r.steps_per_sec:,.0f} | {stab} |"
            )
    lines += [
        "",
        "Ratios (tfrl / peer) per seed:",
        "",
        "| seed | env steps/s | train time to solve |",
        "|---|---|---|",
    ]
    sps, tts = [], []
    for ours, peer in runs:
        s = ours.steps_per_sec / peer.steps_per_sec
        sps.append(s)
        t = None
        if ours.train_seconds_to_solve and peer.train_seconds_to_solve:
            t = ours.train_seconds_to_solve / peer.train_seconds_to_solve
            tts.append(t)
        lines.append(f"| {ours.seed} | {s:.2f}× | {_fmt(t, 3)}× |")
    lines += [
        "",
        f"Median env steps/s ratio: {statistics.median(sps):.2f}× (target ≥ 5×). "
        + (
            f"Median time-to-solve ratio: {statistics.median(tts):.3f}× (target ≤ 0.25×)."
            if tts
            else "Time-to-solve ratio: not available (a side did not solve)."
        ),
        "",
    ]
    if repeat is not None:
        first = next(ours for ours, _ in runs if ours.seed == repeat.seed)
        same = first.eval_returns == repeat.eval_returns
        lines.append(
            f"Reproducibility: tfrl seed {repeat.seed} was run a second time in this invocation; "
            + (
                "its evaluation returns were identical."
                if same
                else f"its evaluation returns differed (first run: {_short(first.eval_returns)}; "
                f"second: {_short(repeat.eval_returns)})."
            )
            + " The peer was not repeated."
        )
    return "\n".join(lines) + "\n"


def _short(values: list[float]) -> str:
    return ", ".join(f"{v:.0f}" for v in values[:8]) + (" …" if len(values) > 8 else "")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-env-steps", type=int, default=80_000, help="per run, per side")
    parser.add_argument(
        "--no-repeat", action="store_true", help="skip re-running tfrl's first seed"
    )
    parser.add_argument(
        "--output", default=os.path.join(os.path.dirname(__file__), "results", "cartpole.md")
    )
    args = parser.parse_args()
    command = "python benchmarks/cartpole.py " + " ".join(sys.argv[1:])
    runs = []
    for seed in args.seeds:
        ours = run_tfrl(seed, args.max_env_steps)
        print(
            f"seed {seed} tfrl: solved at {ours.solved_at}, {ours.steps_per_sec:.0f} env steps/s",
            flush=True,
        )
        peer = run_peer(seed, args.max_env_steps)
        print(
            f"seed {seed} peer: solved at {peer.solved_at}, {peer.steps_per_sec:.0f} env steps/s",
            flush=True,
        )
        runs.append((ours, peer))
    repeat = None
    if not args.no_repeat:
        repeat = run_tfrl(args.seeds[0], args.max_env_steps)
        print(f"seed {args.seeds[0]} tfrl again: solved at {repeat.solved_at}", flush=True)
    text = report(runs, command.strip(), repeat)
    from tfrl.atomic import atomic_write_text

    atomic_write_text(args.output, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
