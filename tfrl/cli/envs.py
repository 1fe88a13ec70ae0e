"""`tfrl envs`: list the environment ids `tfrl train` accepts."""

from __future__ import annotations

import argparse

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "envs",
        help="list registered environment ids",
        description="List gymnasium environment ids, tfrl's own (tfrl/...) first.",
    )
    p.add_argument(
        "--all",
        action="store_true",
        help="include every gymnasium id, not only tfrl's and classic control",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import gymnasium as gym

    from tfrl.envs import list_ids

    ours = list_ids(namespace="tfrl")
    others = [i for i in list_ids() if i not in ours]
    if not args.all:
        others = [i for i in others if "classic_control" in str(gym.registry[i].entry_point)]
    print("tfrl environments:")
    for env_id in ours:
        print(f"  {env_id}")
    print(
        "gymnasium environments:" if args.all else "gymnasium classic control (--all for every id):"
    )
    for env_id in others:
        print(f"  {env_id}")
    return 0
