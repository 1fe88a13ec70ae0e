"""Which environment ids exist: gymnasium's registry plus tfrl's own."""

from __future__ import annotations

import importlib

import gymnasium as gym

from tfrl.errors import UnknownNameError, did_you_mean

__all__ = ["NAMESPACE", "check_id", "list_ids"]

NAMESPACE = "tfrl"
_loaded = False


def _load_tfrl_environments() -> None:
    """Imports the `environments` package, which registers `tfrl/...` ids."""
    global _loaded
    if not _loaded:
        importlib.import_module("environments")
        _loaded = True


def list_ids(namespace: str | None = None) -> list[str]:
    """Returns the registered environment ids, sorted.

    Args:
        namespace: only ids in this namespace (e.g. "tfrl"). Default: all.
    """
    _load_tfrl_environments()
    ids = sorted(gym.registry)
    if namespace is not None:
        ids = [i for i in ids if gym.registry[i].namespace == namespace]
    return ids


def check_id(env_id: str) -> None:
    """Raises `UnknownNameError` with a suggestion if `env_id` is not registered."""
    if not isinstance(env_id, str):
        raise UnknownNameError(
            f"make() received env_id={env_id!r}; expected a registered id such as "
            "'CartPole-v1' or a gymnasium.Env instance."
        )
    _load_tfrl_environments()
    if env_id not in gym.registry:
        raise UnknownNameError(
            f"make() received env_id={env_id!r}, which is not registered."
            f"{did_you_mean(env_id, gym.registry)} `tfrl envs` lists all ids."
        )
