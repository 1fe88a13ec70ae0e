"""Hyper-parameter dataclasses shared by every agent."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, TypeVar

from tfrl.errors import ConfigError, check_names

__all__ = ["AgentConfig", "config_from_kwargs"]

C = TypeVar("C", bound="AgentConfig")


@dataclasses.dataclass
class AgentConfig:
    """Fields every agent has: how the Trainer collects and trains.

    Attributes:
        learning_rate: optimizer step size.
        gamma: discount factor of future rewards.
        hidden_units: sizes of the default networks' hidden layers.
        collect_env_steps: env steps (summed over parallel envs) collected per
            training iteration.
        train_steps: `agent.train` calls per iteration.
        batch_size: transitions per gradient step (off-policy agents).
        replay_capacity: transitions the replay buffer holds (off-policy agents).
        learning_starts: env steps collected before the first train step.
    """

    on_policy: ClassVar[bool] = False

    learning_rate: float = 1e-3
    gamma: float = 0.99
    hidden_units: tuple[int, ...] = (64, 64)
    collect_env_steps: int = 256
    train_steps: int = 1
    batch_size: int = 64
    replay_capacity: int = 100_000
    learning_starts: int = 0

    def __post_init__(self) -> None:
        self.hidden_units = _layer_sizes(self.hidden_units)
        _positive(self, "learning_rate", "collect_env_steps", "train_steps", "batch_size")
        _positive(self, "replay_capacity")
        if not 0.0 <= self.gamma <= 1.0:
            raise ConfigError(f"gamma={self.gamma} must be in [0, 1]; 0.99 is typical.")
        if self.learning_starts < 0:
            raise ConfigError(f"learning_starts={self.learning_starts} must be ≥ 0.")
        if any(u < 1 for u in self.hidden_units):
            raise ConfigError(f"hidden_units={self.hidden_units} must all be ≥ 1.")

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain values (JSON/YAML friendly)."""
        out = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def _layer_sizes(value: Any) -> tuple[int, ...]:
    """`(64, 64)`, `[64, 64]` or `64` → `(64, 64)` / `(64,)`; anything else is refused."""
    sizes = (value,) if isinstance(value, int) else value
    try:
        sizes = tuple(sizes)
        if not all(isinstance(u, int) and not isinstance(u, bool) for u in sizes):
            raise TypeError
    except TypeError:
        raise ConfigError(
            f"hidden_units={value!r} must be a list of layer sizes, e.g. [64, 64]."
        ) from None
    return sizes


def _positive(config: AgentConfig, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if not value > 0:
            raise ConfigError(f"{name}={value!r} must be > 0.")


def config_from_kwargs(cls: type[C], agent: str, kwargs: dict[str, Any]) -> C:
    """Builds `cls(**kwargs)`, naming any unknown field and the nearest real one."""
    fields = sorted(f.name for f in dataclasses.fields(cls))
    check_names(
        kwargs,
        fields,
        f"{agent!r} has no hyper-parameter",
        f"Its hyper-parameters are: {', '.join(fields)}.",
    )
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"Bad hyper-parameters for {agent!r}: {e}") from e
