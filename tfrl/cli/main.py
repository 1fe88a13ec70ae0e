"""`tfrl` entry point: parses the subcommand, keeps TensorFlow quiet, reports errors."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

__all__ = ["build_parser", "main"]

# Each module has register(subparsers) and run(args) -> int.
SUBCOMMANDS = ("train", "evaluate", "export", "serve", "envs", "hparams", "roles")

DESCRIPTION = """\
Reinforcement learning for TensorFlow/Keras users.

examples:
  tfrl envs                                       list environment ids
  tfrl hparams Acrobot-v1 --agent dqn             the tuned hyper-parameters a run uses
  tfrl train CartPole-v1 --agent dqn --output runs/cartpole --target-return 475
  tfrl train --resume --output runs/cartpole      continue a stopped run
  tfrl train CartPole-v1 --distributed --actors 2 Reverb server, 2 actors and a learner
  tfrl evaluate runs/cartpole --episodes 20       mean return of the greedy policy
  tfrl export runs/cartpole --name cartpole_dqn   write saved_models/cartpole_dqn/<N>/
  tfrl export --check saved_models/cartpole_dqn/1 load it as TF Serving would
  tfrl serve --model_name cartpole_dqn --model_base_path saved_models/cartpole_dqn
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfrl", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show TensorFlow's own start-up logs and warnings (or set TFRL_VERBOSE=1)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"tfrl.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from tfrl.console import quiet
    from tfrl.errors import TfrlError

    try:
        if getattr(args, "precheck", None) is not None:  # checks that need no TensorFlow
            args.precheck(args)
        quiet(verbose=True if args.verbose else None)
        return int(args.func(args) or 0)
    except TfrlError as e:
        print(f"tfrl {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ntfrl {args.command}: interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `tfrl hparams ... | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
