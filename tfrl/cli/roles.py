"""`tfrl replay-server`, `tfrl actor`, `tfrl learner`: the roles of a distributed run, alone.

`tfrl train --distributed` starts all three on this machine; these commands
start one role each, so a run can span machines. Every role reads the run's
settings from `--config` (default `<output>/run.json`, which
`tfrl train --distributed` writes; copy it to the other machines).
"""

from __future__ import annotations

import argparse
import os

__all__ = ["register"]

EPILOG = """\
examples (one machine per line is fine; see README "Distributed training"):
  tfrl replay-server --config run.json --output runs/dist --port 8520
  tfrl learner --replay 10.0.0.1:8520 --config run.json --output runs/dist
  tfrl actor --replay 10.0.0.1:8520 --config run.json --output runs/dist --id 0
"""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", required=True, help="run directory (status, logs, checkpoints)")
    p.add_argument("--config", help="RunConfig file (YAML/JSON). Default: OUTPUT/run.json")


def _connect_timeout(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--connect-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="give up if the replay server does not answer within this (default 60)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser(
        "replay-server",
        help="serve a distributed run's Reverb replay and variable tables",
        description="Serve the Reverb tables of a distributed run (listens on every interface).",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    _common(p)
    p.add_argument(
        "--port",
        type=int,
        default=8520,
        help="TCP port, opened on every interface: firewall it (default 8520)",
    )
    p.set_defaults(func=run_replay_server)

    p = subparsers.add_parser(
        "actor",
        help="collect experience into a replay server with the learner's policy",
        description="Collect env steps with the learner's latest policy into Reverb.",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    _common(p)
    p.add_argument("--replay", required=True, metavar="HOST:PORT", help="the replay server")
    p.add_argument("--id", type=int, default=0, help="actor number: names files, offsets seeds")
    _connect_timeout(p)
    p.add_argument(
        "--restart", type=int, default=0, help="restarts so far (the launcher sets it; new seeds)"
    )
    p.set_defaults(func=run_actor)

    p = subparsers.add_parser(
        "learner",
        help="train from a replay server, publish the policy, evaluate, checkpoint",
        description="Train the agent from Reverb samples; evaluate, checkpoint and export.",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    _common(p)
    p.add_argument("--replay", required=True, metavar="HOST:PORT", help="the replay server")
    _connect_timeout(p)
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    p.add_argument("--export", metavar="NAME", help="export to saved_models/NAME/<N>/ at the end")
    p.set_defaults(func=run_learner)


def _run_config(args: argparse.Namespace):
    from tfrl.distributed.spec import check_agent
    from tfrl.training.run import RunConfig

    path = args.config or os.path.join(args.output, "run.json")
    if not os.path.exists(path):
        from tfrl.errors import ConfigError

        raise ConfigError(
            f"No run settings at {path}. Pass --config FILE (a RunConfig YAML/JSON, e.g. the "
            "run.json `tfrl train --distributed` writes) or --output of such a run."
        )
    run = RunConfig.from_file(path)
    run.validate()
    check_agent(run.agent)
    return run


def run_replay_server(args: argparse.Namespace) -> int:
    from tfrl.distributed.replay_server import serve

    serve(_run_config(args), args.output, args.port)
    return 0


def run_actor(args: argparse.Namespace) -> int:
    from tfrl.distributed.actor import run_actor as actor
    from tfrl.distributed.spec import parse_address

    address = parse_address(args.replay)
    run = _run_config(args)
    actor(
        run,
        args.output,
        address,
        args.id,
        restart=args.restart,
        connect_timeout=args.connect_timeout,
    )
    return 0


def run_learner(args: argparse.Namespace) -> int:
    from tfrl.distributed.learner import run_learner as learner
    from tfrl.distributed.spec import parse_address

    run = _run_config(args)
    address = parse_address(args.replay)
    learner(
        run,
        args.output,
        address,
        resume=args.resume,
        export=args.export,
        connect_timeout=args.connect_timeout,
    )
    from tfrl.distributed.status import read_status

    final = read_status(args.output, "learner") or {}
    evals = final.get("history", {})
    steps, returns = evals.get("eval_steps") or [], evals.get("eval_returns") or []
    print(f"learner: done ({final.get('stopped_by', 'stopped')}).")
    if returns:
        print(f"Last evaluation at {steps[-1]:,} env steps: mean return {returns[-1]:.1f}")
    if final.get("export_path"):
        print(f"Exported to {final['export_path']}")
    return 0
