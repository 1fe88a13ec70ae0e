"""Save and restore the random state of gymnasium envs inside TF-Agents envs.

Checkpoints store these so a resumed run draws the same env randomness
(initial states, noise) it would have drawn had it not stopped. An episode
in progress is not restored: env copies start new episodes on resume.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["get_rng_states", "set_rng_states"]


def _gym_envs(env: Any) -> list[Any] | None:
    """The single gymnasium envs under a tfrl TF/Py environment, in batch order."""
    py_env = getattr(env, "pyenv", env)
    found = []
    for candidate in getattr(py_env, "envs", [py_env]):
        gym_env = getattr(candidate, "gym_env", None)
        if gym_env is None:
            return None
        sub_envs = getattr(gym_env, "envs", None)  # SyncVectorEnv; AsyncVectorEnv has none
        if sub_envs is None and hasattr(gym_env, "num_envs"):
            return None
        found += list(sub_envs) if sub_envs is not None else [gym_env]
    return found


def get_rng_states(env: Any) -> list[dict] | None:
    """The numpy bit-generator state of each env copy, or None if not reachable."""
    envs = _gym_envs(env)
    if envs is None:
        return None
    return [e.unwrapped.np_random.bit_generator.state for e in envs]


def set_rng_states(env: Any, states: list[dict]) -> bool:
    """Restores states from `get_rng_states`; False if the env does not match."""
    envs = _gym_envs(env)
    if envs is None or len(envs) != len(states):
        return False
    for e, state in zip(envs, states):
        generator = np.random.Generator(getattr(np.random, state["bit_generator"])())
        generator.bit_generator.state = state
        e.unwrapped.np_random = generator
    py_env = getattr(env, "pyenv", env)
    for candidate in [py_env, *getattr(py_env, "envs", [])]:
        if hasattr(candidate, "_seed"):
            candidate._seed = None  # the restored stream replaces the construction seed
    return True
