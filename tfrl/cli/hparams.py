"""`tfrl hparams`: the hyper-parameters `tfrl train ENV --agent X` would use, and their origin."""

from __future__ import annotations

import argparse

__all__ = ["register", "run"]

EPILOG = """\
examples:
  tfrl hparams Acrobot-v1 --agent dqn
  tfrl hparams CartPole-v1 --agent ppo --hparam learning_rate=3e-4
  tfrl hparams --list

Each value's origin is "tuned" (the table row for this agent and env,
tfrl/agents/tuned/<agent>.yaml), "user" (--hparam) or "default" (the agent's
config defaults).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "hparams",
        help="show the tuned hyper-parameters for an agent and env",
        description="Show the hyper-parameters a training run would use and where each comes from.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("env_id", nargs="?", help="gymnasium id, e.g. CartPole-v1")
    p.add_argument("--agent", default="dqn", help="dqn, ddqn, reinforce, ppo, softmax or slateq")
    p.add_argument(
        "--hparam",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a value you would pass to `tfrl train`, repeatable",
    )
    p.add_argument("--list", action="store_true", help="list every tuned (agent, env) pair")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tfrl.agents.hparams import resolve, tuned_pairs
    from tfrl.cli.train import parse_hparams
    from tfrl.envs.registry import check_id
    from tfrl.errors import ConfigError

    if args.list:
        for agent, env_id in tuned_pairs():
            print(f"{agent:10s} {env_id}")
        return 0
    if not args.env_id:
        raise ConfigError("Name an environment, e.g. `tfrl hparams CartPole-v1 --agent dqn`.")
    check_id(args.env_id)
    resolved = resolve(args.agent, args.env_id, parse_hparams(args.hparam))
    if resolved.row is None:
        print(resolved.describe())
    else:
        print(f"Tuned row for {resolved.agent} on {resolved.env_id}: {resolved.row.file}")
        print(f"Source: {resolved.row.source}")
    if resolved.row is not None and resolved.row.budget:
        print(f"Tuned for a budget of {resolved.row.budget:,} env steps (--steps).")
    width = max(len(name) for name in resolved.values)
    print(f"\n{'hyper-parameter':{width}s}  {'value':>12s}  origin")
    for name, value in resolved.values.items():
        print(f"{name:{width}s}  {value!s:>12s}  {resolved.origins[name]}")
    return 0
