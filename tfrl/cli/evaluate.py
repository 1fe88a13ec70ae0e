"""`tfrl evaluate`: the greedy policy's mean return, from a run or an export."""

from __future__ import annotations

import argparse
import os

__all__ = ["add_checkpoint_flag", "load_checkpoint", "register", "run"]


def checkpoint_choice(text: str) -> str | int:
    """`--checkpoint` value: best, latest or an env step."""
    if text in ("best", "latest"):
        return text
    try:
        step = int(text)
    except ValueError:
        step = -1
    if step < 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not best, latest or an env step (e.g. --checkpoint 8192)"
        )
    return step


def add_checkpoint_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint",
        type=checkpoint_choice,
        default="best",
        metavar="best|latest|N",
        help="which checkpoint of a run: the best-evaluated (default; the latest when "
        "none was evaluated), the latest, or the one at env step N",
    )


def load_checkpoint(run_dir: str, which: str | int):
    """Loads a run at the chosen checkpoint and prints which one and why."""
    from tfrl.training.run import load_run

    trainer = load_run(run_dir, checkpoint=which)
    print(
        f"Using checkpoint {os.path.basename(trainer.checkpoint)} of {run_dir} "
        f"(--checkpoint {which}: {trainer.checkpoint_reason})"
    )
    return trainer


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="mean return of a trained policy",
        description=(
            "Play whole episodes with the greedy policy of a run directory's checkpoint "
            "(the best-evaluated one unless --checkpoint says otherwise), or of an "
            "exported SavedModel version directory."
        ),
        epilog=(
            "examples:\n  tfrl evaluate runs/cartpole\n"
            "  tfrl evaluate runs/cartpole --checkpoint latest\n"
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
    add_checkpoint_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tfrl.errors import ConfigError
    from tfrl.training.evaluate import evaluate, make_eval_env
    from tfrl.training.run import RUN_FILE, read_run_config

    env_kwargs: dict = {}
    if os.path.exists(os.path.join(args.path, RUN_FILE)):
        trainer = load_checkpoint(args.path, args.checkpoint)
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
