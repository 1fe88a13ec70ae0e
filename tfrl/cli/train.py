"""`tfrl train`: train an agent on a gymnasium env, with checkpoints and resume."""

from __future__ import annotations

import argparse
import dataclasses

__all__ = ["register", "run"]

EPILOG = """\
examples:
  tfrl train CartPole-v1 --agent dqn --output runs/cartpole --target-return 475
  tfrl train CartPole-v1 --agent ppo --steps 200000 --hparam learning_rate=3e-4
  tfrl train --config run.yaml --output runs/exp1
  tfrl train --resume --output runs/cartpole
  tfrl train CartPole-v1 --agent dqn --distributed --actors 2 --output runs/dist

A config file (YAML or JSON) holds the same fields as the flags:
  env_id: CartPole-v1
  agent: dqn
  total_env_steps: 60000
  num_envs: 8
  target_return: 475
  hparams: {learning_rate: 0.0023, hidden_units: [256, 256]}
Flags given on the command line override the file. `tfrl train --resume --output DIR`
reads everything from DIR/run.json and continues from the latest checkpoint; only
--steps and --target-return may change on resume.
"""

# flag dest → RunConfig field
_FLAGS = {
    "env_id": "env_id",
    "agent": "agent",
    "steps": "total_env_steps",
    "num_envs": "num_envs",
    "seed": "seed",
    "eval_every": "eval_every",
    "eval_episodes": "eval_episodes",
    "target_return": "target_return",
    "checkpoint_every": "checkpoint_every",
}
# What a resumed run may change: how far it goes and when it stops.
_RESUMABLE = ("steps", "target_return")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train an agent on an environment",
        description="Train an agent on a gymnasium environment.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("env_id", nargs="?", help="gymnasium id, e.g. CartPole-v1 (see `tfrl envs`)")
    p.add_argument("--agent", help="dqn, ddqn, reinforce, ppo, softmax or slateq (default dqn)")
    p.add_argument("--steps", type=int, help="total env steps (default 100000)")
    p.add_argument("--num-envs", type=int, help="parallel environments (default 8)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--eval-every", type=int, help="env steps between evaluations (default 2000)")
    p.add_argument("--eval-episodes", type=int, help="episodes per evaluation (default 20)")
    p.add_argument("--target-return", type=float, help="stop when an evaluation reaches this")
    p.add_argument("--checkpoint-every", type=int, help="env steps between checkpoints")
    p.add_argument(
        "--hparam",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="agent hyper-parameter, repeatable (e.g. --hparam learning_rate=1e-3)",
    )
    p.add_argument("--config", help="YAML/JSON file of the same fields")
    p.add_argument("--output", help="run directory: checkpoints, logs, run.json")
    p.add_argument("--resume", action="store_true", help="continue the run in --output")
    p.add_argument("--export", metavar="NAME", help="export the result to saved_models/NAME/<N>/")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--distributed",
        action="store_true",
        help="run a Reverb replay server, actors and a learner as processes (dqn, ddqn)",
    )
    p.add_argument("--actors", type=int, default=2, help="actor processes (--distributed; 2)")
    p.add_argument(
        "--replay-port",
        type=int,
        default=0,
        help="replay server port (--distributed; free one); Reverb opens it on every interface",
    )
    p.add_argument(
        "--max-restarts",
        type=int,
        default=3,
        help="restarts allowed per dead actor before the run fails (--distributed; 3)",
    )
    p.set_defaults(func=run)


def parse_hparams(pairs: list[str]) -> dict:
    """`["a=1", "b=[2, 3]"]` → `{"a": 1, "b": [2, 3]}` (values read as YAML)."""
    from tfrl.errors import ConfigError
    from tfrl.training.run import load_yaml

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(
                f"--hparam {pair!r} must look like KEY=VALUE, e.g. learning_rate=1e-3."
            )
        out[key.strip()] = load_yaml(value)
    return out


def _run_config(args: argparse.Namespace):
    from tfrl.errors import ConfigError
    from tfrl.training.run import RunConfig, read_run_config

    if args.resume:
        if not args.output:
            raise ConfigError("--resume needs --output DIR, the run directory to continue.")
        fixed = [f for f in _FLAGS if f not in _RESUMABLE and getattr(args, f) is not None]
        fixed += ["--hparam"] * bool(args.hparam) + ["--config"] * bool(args.config)
        if fixed:
            names = ", ".join(
                f if f.startswith("--") else "--" + f.replace("_", "-") for f in fixed
            )
            raise ConfigError(
                f"--resume continues a run with its own settings (DIR/run.json); {names} "
                "cannot change them. Only --steps and --target-return may be given, or start "
                "a new run in another --output directory."
            )
        run = read_run_config(args.output)
        if args.steps is not None:
            run.total_env_steps = args.steps
        if args.target_return is not None:
            run.target_return = args.target_return
        return run
    run = RunConfig.from_file(args.config) if args.config else RunConfig()
    for flag, field in _FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            setattr(run, field, value)
    run.hparams = {**run.hparams, **parse_hparams(args.hparam)}
    return dataclasses.replace(run)


# RunConfig field → how the command line spells it, for error messages.
_FLAG_NAMES = {
    "total_env_steps": "--steps",
    "num_envs": "--num-envs",
    "seed": "--seed",
    "eval_every": "--eval-every",
    "eval_episodes": "--eval-episodes",
    "checkpoint_every": "--checkpoint-every",
}


def check_flags(run_config) -> None:
    """Validates what the flags (or the config file) set, naming flags, not `make()` arguments."""
    from tfrl.agents import agent_class, names
    from tfrl.agents.config import config_from_kwargs
    from tfrl.envs.registry import list_ids
    from tfrl.errors import UnknownNameError, check_names

    run_config.validate(_FLAG_NAMES)
    if not isinstance(run_config.env_id, str) or not run_config.env_id:
        raise UnknownNameError(
            "tfrl train needs an environment id, e.g. `tfrl train CartPole-v1` "
            "(`tfrl envs` lists them)."
        )
    check_names(
        [run_config.env_id],
        list_ids(),
        "ENV_ID is not a registered environment:",
        "`tfrl envs` lists all ids.",
    )
    check_names(
        [run_config.agent],
        names(),
        "--agent is not an agent:",
        f"Agents: {', '.join(names())}.",
    )
    cls = agent_class(run_config.agent)
    fields = sorted(f.name for f in dataclasses.fields(cls.config_class))
    check_names(
        run_config.hparams,
        fields,
        f"--hparam: {run_config.agent!r} has no hyper-parameter",
        f"Its hyper-parameters are: {', '.join(fields)}.",
    )
    config_from_kwargs(cls.config_class, run_config.agent, dict(run_config.hparams))


def run(args: argparse.Namespace) -> int:
    from tfrl.agents.hparams import resolve
    from tfrl.training.run import train_run

    run_config = _run_config(args)
    check_flags(run_config)
    if args.distributed:
        return _run_distributed(args, run_config)

    def announce(run_config) -> None:
        preset = run_config.env_kwargs.get("preset")
        print(resolve(run_config.agent, run_config.env_id, run_config.hparams, preset).describe())
        print(
            f"Training {run_config.agent} on {run_config.env_id} for "
            f"{run_config.total_env_steps} env steps ({run_config.num_envs} envs)"
            + (f", run dir {args.output}" if args.output else ""),
            flush=True,
        )

    trainer = train_run(
        run_config,
        output_dir=args.output,
        resume=args.resume,
        verbose=0 if args.quiet else 1,
        announce=announce,
    )
    _print_last_evaluation(trainer.history)
    if args.export:
        import os

        from tfrl.export import export

        path = export(trainer.agent, os.path.join("saved_models", args.export))
        print(f"Exported to {path}")
    return 0


def _print_last_evaluation(history) -> None:
    if history.eval_returns:
        step, value = history.eval_steps[-1], history.eval_returns[-1]
        print(f"Last evaluation at {step:,} env steps: mean return {value:.1f}")


def _run_distributed(args: argparse.Namespace, run_config) -> int:
    from tfrl.distributed.launcher import launch
    from tfrl.errors import ConfigError

    if args.num_envs is not None:
        raise ConfigError(
            f"--num-envs {args.num_envs} does not apply to --distributed: each actor steps "
            "one env. Scale collection with --actors N instead, or drop --distributed."
        )
    result = launch(
        run_config,
        actors=args.actors,
        output_dir=args.output,
        resume=args.resume,
        export=args.export,
        replay_port=args.replay_port,
        max_restarts=args.max_restarts,
        verbose=0 if args.quiet else 1,
    )
    _print_last_evaluation(result.history)
    if result.export_path:
        print(f"Exported to {result.export_path}")
    return 0
