"""gymnasium spaces → TF-Agents array specs."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from tf_agents.specs import array_spec

from tfrl.errors import SpecError

__all__ = ["spec_from_space", "to_spec_dtype"]

_WAY_OUT = (
    "Wrap the env with a gymnasium wrapper that turns it into a Box, Discrete, "
    "MultiDiscrete, MultiBinary or a Dict of those (e.g. "
    "gymnasium.wrappers.FlattenObservation), then pass the wrapped env to tfrl.envs.make()."
)


def spec_from_space(space: gym.Space, name: str) -> Any:
    """Returns the `BoundedArraySpec` (or dict of them) matching a gymnasium space.

    Args:
        space: a `Discrete`, `Box`, `MultiDiscrete`, `MultiBinary` or `Dict` space.
        name: the spec's name (`observation` or `action`).

    Raises:
        SpecError: the space (or one inside a Dict) has no TF-Agents counterpart.
    """
    if isinstance(space, gym.spaces.Discrete):
        if int(space.start) != 0:
            raise SpecError(
                f"{name} space {space} starts at {int(space.start)}; TF-Agents needs actions "
                "numbered from 0. Wrap the env so the space starts at 0."
            )
        return array_spec.BoundedArraySpec(
            (), np.int64, minimum=0, maximum=int(space.n) - 1, name=name
        )
    if isinstance(space, gym.spaces.Box):
        low = np.broadcast_to(space.low, space.shape)
        high = np.broadcast_to(space.high, space.shape)
        return array_spec.BoundedArraySpec(
            space.shape, space.dtype, minimum=low, maximum=high, name=name
        )
    if isinstance(space, gym.spaces.MultiDiscrete):
        if np.any(np.asarray(space.start) != 0):
            raise SpecError(f"{name} space {space} must start at 0. Wrap the env to shift it.")
        return array_spec.BoundedArraySpec(
            space.shape, np.int64, minimum=0, maximum=np.asarray(space.nvec) - 1, name=name
        )
    if isinstance(space, gym.spaces.MultiBinary):
        return array_spec.BoundedArraySpec(space.shape, np.int8, minimum=0, maximum=1, name=name)
    if isinstance(space, gym.spaces.Dict):
        return {key: spec_from_space(sub, f"{name}/{key}") for key, sub in space.spaces.items()}
    raise SpecError(
        f"The {name} space {type(space).__name__} ({space}) has no TF-Agents spec. {_WAY_OUT}"
    )


def to_spec_dtype(value: Any, spec: Any) -> Any:
    """Casts a (nested) numpy value to its spec's dtype."""
    if isinstance(spec, dict):
        return {key: to_spec_dtype(value[key], sub) for key, sub in spec.items()}
    return np.asarray(value, dtype=spec.dtype)
