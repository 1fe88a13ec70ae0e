"""Training runs: one config, a directory that holds everything, `tfrl.train`.

A run directory (`output_dir`) contains:

    run.json          the RunConfig (env, agent, hyper-parameters, budget)
    checkpoints/      atomic, resumable checkpoints (see tfrl.training.checkpoint)
    log.csv           one row per iteration
    tensorboard/      TensorBoard scalars

`tfrl train` and `tfrl.train` write it; `load_run` rebuilds the agent from it
(for `tfrl evaluate`, `tfrl export`, resuming).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Any

from tfrl.atomic import atomic_write_text
from tfrl.errors import CheckpointError, ConfigError, check_names
from tfrl.training.callbacks import Callback

__all__ = ["RunConfig", "build_trainer", "load_run", "load_yaml", "train"]

RUN_FILE = "run.json"

# PyYAML follows YAML 1.1, where `3e-4` (no dot) is a string; read it as the float users mean.
_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


def load_yaml(text: str) -> Any:
    """Parses YAML (or JSON) text; numbers like `3e-4` are floats."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
    return yaml.load(text, Loader=Loader)


@dataclasses.dataclass
class RunConfig:
    """Everything that defines a training run; the CLI reads the same fields.

    Attributes:
        env_id: gymnasium id. Default "CartPole-v1".
        agent: agent name (`tfrl.agents.names()`). Default "dqn".
        total_env_steps: env steps to train for. Default 100,000.
        num_envs: parallel envs stepped as one batch. Default 8.
        seed: seeds envs, exploration and evaluation. Default 0.
        eval_every: env steps between evaluations. Default 2,000.
        eval_episodes: episodes per evaluation. Default 20.
        target_return: stop once an evaluation's mean return reaches it. Default None.
        checkpoint_every: env steps between checkpoints. Default 10,000.
        hparams: agent hyper-parameters (fields of the agent's config).
        env_kwargs: keyword arguments for `gymnasium.make`.
    """

    env_id: str = "CartPole-v1"
    agent: str = "dqn"
    total_env_steps: int = 100_000
    num_envs: int = 8
    seed: int | None = 0
    eval_every: int | None = 2_000
    eval_episodes: int = 20
    target_return: float | None = None
    checkpoint_every: int = 10_000
    hparams: dict[str, Any] = dataclasses.field(default_factory=dict)
    env_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> RunConfig:
        """Builds a RunConfig, naming unknown keys and the nearest real one."""
        fields = sorted(f.name for f in dataclasses.fields(cls))
        check_names(
            data,
            fields,
            f"{source} has an unknown field",
            f"Fields: {', '.join(fields)}. Agent hyper-parameters go under 'hparams'.",
        )
        return cls(**data)

    @classmethod
    def from_file(cls, path: str) -> RunConfig:
        """Reads a YAML or JSON file of RunConfig fields."""
        import yaml

        try:
            with open(path) as f:
                data = load_yaml(f.read()) or {}
        except OSError as e:
            raise ConfigError(f"Cannot read config file {path}: {e.strerror}.") from e
        except yaml.YAMLError as e:
            raise ConfigError(f"Config file {path} is not valid YAML/JSON: {e}") from e
        if not isinstance(data, dict):
            raise ConfigError(f"Config file {path} must hold a mapping of RunConfig fields.")
        return cls.from_dict(data, source=path)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self, names: dict[str, str] | None = None) -> None:
        """Raises `ConfigError` for a bad budget, schedule or seed, before anything runs.

        Args:
            names: how to call each field in the message (the CLI passes its
                flags, e.g. {"total_env_steps": "--steps"}). Default: field names.
        """
        names = names or {}

        def whole(field: str, minimum: int = 1) -> None:
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(
                    f"{names.get(field, field)}={value!r} must be a whole number ≥ {minimum}."
                )

        for field in ("total_env_steps", "num_envs", "eval_episodes", "checkpoint_every"):
            whole(field)
        if self.seed is not None:
            whole("seed", minimum=0)
        if self.eval_every is not None:
            whole("eval_every")


class _RunFile(Callback):
    """Writes run.json when training starts: after every check and restore has passed."""

    def __init__(self, output_dir: str, run: RunConfig):
        self.path = os.path.join(output_dir, RUN_FILE)
        self.run = run

    def on_train_begin(self, logs=None):
        atomic_write_text(self.path, json.dumps(self.run.to_dict(), indent=2))


def _callbacks_for(run: RunConfig, output_dir: str | None, resume: bool, verbose: int) -> list:
    from tfrl.training import callbacks

    cbs: list = []
    if run.target_return is not None:
        cbs.append(callbacks.EarlyStopping(run.target_return, verbose=verbose))
    if output_dir is not None:
        cbs += [
            callbacks.Checkpoint(os.path.join(output_dir, "checkpoints"), run.checkpoint_every),
            _RunFile(output_dir, run),
            callbacks.CSVLogger(os.path.join(output_dir, "log.csv"), append=resume),
            callbacks.TensorBoard(os.path.join(output_dir, "tensorboard")),
        ]
    return cbs


def build_trainer(run: RunConfig, **objects: Any):
    """The env, agent and Trainer a RunConfig describes, seeded before anything is built."""
    from tfrl import agents, envs
    from tfrl.training.seeding import set_seed
    from tfrl.training.trainer import Trainer

    if run.seed is not None:
        set_seed(run.seed)
    # The tuned row for (agent, env) first, the run's own hparams on top (tfrl.agents.hparams).
    preset = run.env_kwargs.get("preset")
    hparams = agents.hparams.resolve(run.agent, run.env_id, run.hparams, preset).hparams
    env = envs.make(run.env_id, num_envs=run.num_envs, seed=run.seed, **run.env_kwargs)
    agent = agents.make(run.agent, env, **hparams, **objects)
    return Trainer(agent, env, seed=run.seed)


def check_run_dir(output_dir: str, run: RunConfig, resume: bool) -> None:
    """Refuses a run directory that cannot take this run; reads only, writes nothing.

    A new run needs a directory without a run or checkpoints; a resumed one
    needs the run's own run.json and the same configuration.
    """
    if resume:
        saved = read_run_config(output_dir)
        changed = {
            k: (v, getattr(run, k))
            for k, v in saved.to_dict().items()
            if k not in ("total_env_steps", "target_return") and getattr(run, k) != v
        }
        if changed:
            detail = ", ".join(f"{k}: {old!r} → {new!r}" for k, (old, new) in changed.items())
            raise ConfigError(
                f"Resuming {output_dir} with a different configuration ({detail}). Resume with "
                "the run's own settings (tfrl train --resume --output DIR needs nothing else), "
                "or start a new run in another directory."
            )
        if not os.path.exists(os.path.join(output_dir, "checkpoints", "latest")):
            raise CheckpointError(
                f"No checkpoint to resume from in {output_dir}: the run stopped before its "
                "first checkpoint. Start it again without --resume in a new directory."
            )
        return
    if os.path.exists(os.path.join(output_dir, RUN_FILE)):
        raise CheckpointError(
            f"{output_dir} already holds a run. Pass resume=True (tfrl train --resume) to "
            "continue it, or choose a new output directory."
        )
    if os.path.exists(os.path.join(output_dir, "checkpoints", "latest")):
        raise CheckpointError(
            f"{output_dir} already holds checkpoints (but no {RUN_FILE}, so they cannot be "
            "resumed from here). Choose a new output directory."
        )


def read_run_config(output_dir: str) -> RunConfig:
    """The RunConfig saved in a run directory."""
    path = os.path.join(output_dir, RUN_FILE)
    if not os.path.exists(path):
        raise CheckpointError(
            f"{output_dir} is not a tfrl run directory (no {RUN_FILE}). Pass the --output "
            "directory of a `tfrl train` run."
        )
    with open(path) as f:
        return RunConfig.from_dict(json.load(f), source=path)


def train(
    env_id: str = "CartPole-v1",
    agent: str = "dqn",
    total_env_steps: int = 100_000,
    *,
    num_envs: int = 8,
    seed: int | None = 0,
    target_return: float | None = None,
    output_dir: str | None = None,
    resume: bool = False,
    callbacks: list | None = None,
    verbose: int = 1,
    distributed: bool = False,
    actors: int = 2,
    **hparams: Any,
):
    """Trains an agent on a gymnasium env in one call and returns the Trainer.

    >>> trainer = tfrl.train("CartPole-v1", agent="dqn", target_return=475)
    >>> trainer.history.eval_returns[-1]
    >>> tfrl.export(trainer.agent, "saved_models/cartpole_dqn")

    Args:
        env_id: gymnasium id. Default "CartPole-v1".
        agent: "dqn", "ddqn", "reinforce", "ppo" or "softmax". Default "dqn".
        total_env_steps: env steps to train for. Default 100,000.
        num_envs: parallel envs. Default 8.
        seed: seed for envs and TensorFlow. Default 0. Like `tfrl.set_seed`, it
            seeds Python's, NumPy's and TensorFlow's global random state and
            turns on TF op determinism, for the whole process.
        target_return: stop early at this evaluation mean return. Default None.
        output_dir: if given, a run directory with checkpoints, CSV and
            TensorBoard logs; needed for `resume`. Default None.
        resume: continue the run in `output_dir` from its latest checkpoint.
        callbacks: more `tfrl.callbacks`.
        verbose: 0 silent, 1 progress bar.
        distributed: run a Reverb replay server, `actors` actor processes and a
            learner process instead (dqn, ddqn; see `tfrl.distributed.launch`);
            returns a `DistributedResult` (`.history`, `.output_dir`). Default False.
        actors: actor processes when `distributed`. Default 2.
        **hparams: the agent's hyper-parameters (e.g. `learning_rate=1e-3`) and
            Keras objects (`q_network=`, `optimizer=`, ...). They override the
            tuned row for (agent, env_id) (`tfrl hparams ENV --agent X` shows it).

    Returns:
        The fitted `tfrl.Trainer` (`.agent`, `.history`, `.evaluate()`).
    """
    objects = {
        k: hparams.pop(k)
        for k in ("q_network", "actor_network", "value_network", "optimizer")
        if k in hparams
    }
    run = RunConfig(
        env_id=env_id,
        agent=agent,
        total_env_steps=total_env_steps,
        num_envs=num_envs,
        seed=seed,
        target_return=target_return,
        hparams=hparams,
    )
    if distributed:
        if objects or callbacks:
            raise ConfigError(
                "distributed=True builds the agent in each process from hyper-parameters: "
                "pass no Keras objects or callbacks (use hparams such as hidden_units=)."
            )
        from tfrl.distributed.launcher import launch

        return launch(run, actors=actors, output_dir=output_dir, resume=resume, verbose=verbose)
    return train_run(
        run, output_dir=output_dir, resume=resume, callbacks=callbacks, verbose=verbose, **objects
    )


def train_run(
    run: RunConfig,
    *,
    output_dir: str | None = None,
    resume: bool = False,
    callbacks: list | None = None,
    verbose: int = 1,
    announce: Any = None,
    **objects: Any,
):
    """Trains what a RunConfig describes (the CLI's path); returns the Trainer.

    Everything is validated (config, env, agent, hyper-parameters, the run
    directory) before anything is written; then `announce(run)`, if given,
    is called (the CLI prints its banner there).
    """
    if resume and output_dir is None:
        raise ConfigError("resume=True needs output_dir= (the run directory to continue).")
    run.validate()
    if output_dir is not None:
        check_run_dir(output_dir, run, resume)
    trainer = build_trainer(run, **objects)
    if announce is not None:
        announce(run)
    trainer.fit(
        run.total_env_steps,
        eval_every=run.eval_every,
        eval_episodes=run.eval_episodes,
        callbacks=_callbacks_for(run, output_dir, resume, verbose) + list(callbacks or []),
        resume=resume,
        verbose=verbose,
    )
    return trainer


def load_run(output_dir: str, checkpoint: str | int = "best"):
    """Rebuilds a run's Trainer and restores one of its checkpoints.

    >>> trainer = load_run("runs/cartpole")                 # the best-evaluated one
    >>> trainer = load_run("runs/cartpole", checkpoint=8192)

    Args:
        output_dir: a `tfrl train --output` / `tfrl.train(output_dir=)` directory,
            distributed runs included (their learner's checkpoints).
        checkpoint: "best" (the highest evaluation mean; the latest when no
            checkpoint has an evaluation), "latest", or an env step N
            (`ckpt-N`). Default "best".

    Returns:
        The Trainer; `trainer.checkpoint` is the restored path and
        `trainer.checkpoint_reason` says why it was chosen.
    """
    if not (checkpoint in ("best", "latest") or (isinstance(checkpoint, int) and checkpoint >= 0)):
        raise ConfigError(
            f"checkpoint={checkpoint!r} must be 'best', 'latest' or an env step (a whole number)."
        )
    run = read_run_config(output_dir)
    trainer = build_trainer(run)
    directory = os.path.join(output_dir, "checkpoints")
    manager = trainer.checkpoint_manager(directory)
    path, reason = manager.select(checkpoint)
    if manager.read_state(path).get("distributed"):
        # A distributed learner saves the agent alone: its replay lives in Reverb.
        from tfrl.training.checkpoint import CheckpointManager

        manager = CheckpointManager(directory, {"agent": trainer.agent})
    trainer.load_state(manager.restore(path))
    trainer.checkpoint, trainer.checkpoint_reason = path, reason
    return trainer
