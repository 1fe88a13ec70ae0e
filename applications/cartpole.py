"""CartPole with DQN: train until solved, compare with a random baseline, export.

    python applications/cartpole.py                  # `make cartpole`
    python applications/cartpole.py --agent ppo --total-env-steps 200000
    python applications/cartpole.py --help

CartPole-v1 counts as solved when the greedy policy's mean return over 20
evaluation episodes is at least 475 (of 500). The trained policy is exported
to `saved_models/cartpole_<agent>/<N>/` for TensorFlow Serving, then reloaded
to check that the export acts exactly like the in-memory policy.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time

from tfrl.cli import flags
from tfrl.console import quiet

quiet()

import numpy as np  # noqa: E402

import tfrl  # noqa: E402


@dataclasses.dataclass
class Args:
    agent: str = "dqn"
    """agent to train: dqn, ddqn, reinforce or ppo"""
    total_env_steps: int = 100_000
    """upper bound on training env steps (training stops once solved)"""
    num_envs: int = 8
    """CartPole copies stepped together as one batch"""
    seed: int = 0
    """seed for envs, exploration and evaluation"""
    target_return: float = 475.0
    """evaluation mean return that counts as solved"""
    eval_episodes: int = 20
    """episodes per evaluation"""
    export_base: str = "saved_models"
    """where the SavedModel goes (TF Serving layout <base>/<name>/<version>/)"""
    verbose: int = 1
    """1 shows a progress bar, 0 prints only the summary"""


def parse_args() -> Args:
    return flags.parse(Args, __doc__)


def main(args: Args) -> int:
    tfrl.set_seed(args.seed)  # before anything is built: network weights are drawn then
    env = tfrl.envs.make("CartPole-v1", num_envs=args.num_envs, seed=args.seed)
    # The tuned row for CartPole-v1, as `tfrl train` and `tfrl.train` use (`tfrl hparams`).
    tuned = tfrl.agents.hparams.resolve(args.agent, "CartPole-v1")
    print(tuned.describe())
    agent = tfrl.agents.make(args.agent, env, **tuned.hparams)
    trainer = tfrl.Trainer(agent, env, seed=args.seed)

    baseline = tfrl.evaluate(
        _random_policy(env), "CartPole-v1", episodes=args.eval_episodes, seed=args.seed + 1
    )
    print(f"Random policy: mean return {baseline}")

    start = time.perf_counter()
    history = trainer.fit(
        args.total_env_steps,
        eval_episodes=args.eval_episodes,
        callbacks=[tfrl.callbacks.EarlyStopping(args.target_return)],
        verbose=args.verbose,
    )
    wall = time.perf_counter() - start
    solved_at = history.first_step_reaching(args.target_return)
    final = history.eval_returns[-1] if history.eval_returns else float("nan")
    print(
        f"{args.agent.upper()}: evaluation mean return {final:.1f} after "
        f"{trainer.env_steps:,} env steps in {wall:.1f} s "
        f"({wall - history.eval_seconds:.1f} s training, {history.eval_seconds:.1f} s evaluating)"
    )

    path = tfrl.export(agent, os.path.join(args.export_base, f"cartpole_{args.agent}"))
    _check_export(agent, path, env)
    print(f"Exported to {path} (serving_default: observation → action)")
    if solved_at is None:
        print(
            f"Not solved: no evaluation reached {args.target_return} "
            f"within {args.total_env_steps} env steps."
        )
        return 1
    print(f"Solved at {solved_at} env steps; random baseline {baseline.mean:.1f} → {final:.1f}.")
    return 0


def _random_policy(env):
    from tf_agents.policies import random_tf_policy

    return random_tf_policy.RandomTFPolicy(env.time_step_spec(), env.action_spec())


def _check_export(agent, path: str, env) -> None:
    """The reloaded export must pick the same actions as the in-memory policy."""
    time_step = env.reset()
    serving = tfrl.load(path).signatures["serving_default"]
    exported = serving(observation=time_step.observation)["action"].numpy()
    expected = agent.policy.action(time_step).action.numpy()
    if not np.array_equal(exported, expected):
        raise SystemExit(f"Export check failed: exported actions {exported} != {expected}")


if __name__ == "__main__":
    sys.exit(main(parse_args()))
