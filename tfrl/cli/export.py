"""`tfrl export`: a run's policy → saved_models/<name>/<N>/, or check an export."""

from __future__ import annotations

import argparse
import os

from tfrl.cli.evaluate import add_checkpoint_flag, load_checkpoint

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a trained policy as a SavedModel for TF Serving, or check one",
        description=(
            "Export the greedy policy of a run's checkpoint (the best-evaluated one unless "
            "--checkpoint says otherwise) to the next version directory BASE/NAME/<N>/ "
            "(TF Serving layout), or --check an export."
        ),
        epilog=(
            "examples:\n  tfrl export runs/cartpole --name cartpole_dqn\n"
            "  tfrl export --check saved_models/cartpole_dqn/1"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", nargs="?", help="a `tfrl train --output` directory")
    p.add_argument("--name", help="model name (default: the run directory's name)")
    p.add_argument("--base", default="saved_models", help="base directory (default saved_models)")
    p.add_argument(
        "--check", metavar="PATH", help="load PATH as TF Serving would and run its signatures"
    )
    add_checkpoint_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tfrl.errors import ConfigError

    if args.check:
        from tfrl.cli.export_check import check_main

        return check_main(args.check)
    if not args.run_dir:
        raise ConfigError(
            "tfrl export needs a run directory (or --check PATH). See tfrl export --help."
        )
    from tfrl.export import export

    trainer = load_checkpoint(args.run_dir, args.checkpoint)
    name = args.name or os.path.basename(os.path.normpath(args.run_dir))
    path = export(trainer.agent, os.path.join(args.base, name))
    print(f"Exported {args.run_dir} (env step {trainer.env_steps}) to {path}")
    return 0
