"""`tfrl evaluate`: the greedy policy's mean return, from a run or an export."""

from __future__ import annotations

import argparse
import os

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="mean return of a trained policy",
        description=(
            "Play whole episodes with the greedy policy of a run directory's latest "
            "checkpoint, or of an exported SavedModel version directory."
        ),
        epilog=(
            "examples:\n  tfrl evaluate runs/cartpole\n"
            "  tfrl evaluate saved_models/cartpole_dqn/1 --env CartPole-v1 --episodes 100"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("path", help="a `tfrl train --output` directory or an export version directory")
    p.add_argument("--env", help="gymnasium id (needed for an export; a run knows its own)")
    p.add_argument("--episodes", type=int, default=20, help="episodes (default 20)")
    p.add_argument(
        "--seed", type=int, default=12345, help="seed of the evaluation envs (default 12345)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tfrl.errors import ConfigError
    from tfrl.training.evaluate import evaluate, make_eval_env
    from tfrl.training.run import RUN_FILE, load_run, read_run_config

    env_kwargs: dict = {}
    if os.path.exists(os.path.join(args.path, RUN_FILE)):
        trainer = load_run(args.path)
        policy = trainer.agent.policy
        run_config = read_run_config(args.path)
        env_id = args.env or run_config.env_id
        if env_id == run_config.env_id:
            env_kwargs = run_config.env_kwargs  # the env the run trained on, not the id's defaults
        label = f"{args.path} (env step {trainer.env_steps})"
    elif os.path.exists(os.path.join(args.path, "saved_model.pb")):
        if not args.env:
            raise ConfigError(
                f"Evaluating the export {args.path} needs --env ID (e.g. --env CartPole-v1)."
            )
        from tfrl.export import load

        policy = load(args.path)
        env_id, label = args.env, args.path
    else:
        raise ConfigError(
            f"{args.path} is neither a run directory (no {RUN_FILE}) nor an export version "
            "directory (no saved_model.pb)."
        )
    env = make_eval_env(env_id, args.episodes, args.seed, **env_kwargs)
    result = evaluate(policy, env, episodes=args.episodes)
    print(f"{label} on {env_id}: mean return {result}")
    return 0
