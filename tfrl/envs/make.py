"""`tfrl.envs.make`: a gymnasium id (or Env) in, a TF-Agents environment out."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from tf_agents.environments import py_environment, tf_py_environment

from tfrl.envs.gymnasium_env import GymnasiumEnvironment, VectorGymnasiumEnvironment
from tfrl.envs.registry import NAMESPACE, check_id
from tfrl.errors import ConfigError, check_whole_number

__all__ = ["made_from", "make", "make_py"]

_VECTORIZATION = ("auto", "sync", "async")


def _check_args(num_envs: Any, seed: Any, vectorization: str) -> None:
    check_whole_number("num_envs", num_envs, hint=" For example num_envs=8.")
    if seed is not None:
        check_whole_number("seed", seed, minimum=0, hint=" Or pass seed=None.")
    if vectorization not in _VECTORIZATION:
        raise ConfigError(
            f"vectorization={vectorization!r} is not one of {_VECTORIZATION}. "
            "'auto' uses a tfrl env's own vectorized form if it has one, else 'sync', which "
            "steps the copies in this process (best for fast envs like CartPole)."
        )


def make_py(
    env: str | gym.Env,
    num_envs: int = 1,
    seed: int | None = None,
    *,
    vectorization: str = "auto",
    **env_kwargs: Any,
) -> py_environment.PyEnvironment:
    """Like `make`, but returns the Python (numpy) environment.

    With `num_envs == 1` the result is unbatched; otherwise it is one batched
    environment over gymnasium's vector API.
    """
    _check_args(num_envs, seed, vectorization)
    if isinstance(env, gym.Env):
        if num_envs != 1:
            raise ConfigError(
                f"num_envs={num_envs} needs an env id, not an Env instance: pass the id "
                "(e.g. make('CartPole-v1', num_envs=8)) or a gymnasium.vector.VectorEnv."
            )
        return GymnasiumEnvironment(env, seed=seed)
    if isinstance(env, gym.vector.VectorEnv):
        return VectorGymnasiumEnvironment(env, seed=seed)
    check_id(env)
    if num_envs == 1:
        py_env = GymnasiumEnvironment(gym.make(env, **env_kwargs), seed=seed)
    else:
        mode = "sync" if vectorization == "auto" else vectorization
        spec = gym.spec(env)
        if vectorization == "auto" and spec.namespace == NAMESPACE and spec.vector_entry_point:
            # tfrl's own natively vectorized envs; gymnasium's (e.g. CartPole's) keep "sync",
            # whose copies' RNG states checkpoints carry.
            mode = "vector_entry_point"
        vector_env = gym.make_vec(env, num_envs=num_envs, vectorization_mode=mode, **env_kwargs)
        py_env = VectorGymnasiumEnvironment(vector_env, seed=seed)
    py_env.made_from = (env, dict(env_kwargs))
    return py_env


def made_from(env: Any) -> tuple[str, dict[str, Any]] | None:
    """The (env id, kwargs) a `make`/`make_py` environment was built from, else None.

    Lets the Trainer build separate evaluation copies of the training env.
    """
    py_env = getattr(env, "pyenv", env)
    for candidate in [py_env, *getattr(py_env, "envs", [])]:
        source = getattr(candidate, "made_from", None)
        if source is not None:
            return source
    return None


def make(
    env: str | gym.Env,
    num_envs: int = 1,
    seed: int | None = None,
    *,
    vectorization: str = "auto",
    **env_kwargs: Any,
) -> tf_py_environment.TFPyEnvironment:
    """Makes a batched TF-Agents environment from a gymnasium id or Env.

    >>> env = tfrl.envs.make("CartPole-v1", num_envs=8, seed=0)
    >>> env.batch_size
    8

    Args:
        env: a registered id ("CartPole-v1", "tfrl/MultiArmedBandit-v0", ...), a
            `gymnasium.Env` or a `gymnasium.vector.VectorEnv`.
        num_envs: copies stepped together as one batch (gymnasium's vector API).
            Default 1.
        seed: seeds the first reset; copy `i` of a vector env gets `seed + i`.
            Default None (unseeded).
        vectorization: "auto" (default: the env's natively vectorized form when it
            registers one, e.g. tfrl/Recommendation-v0, else "sync"), "sync"
            (copies stepped in-process) or "async" (subprocesses).
        **env_kwargs: passed to `gymnasium.make` / `gymnasium.make_vec`.

    Returns:
        A `TFPyEnvironment` whose `batch_size` is `num_envs`.
    """
    py_env = make_py(env, num_envs, seed, vectorization=vectorization, **env_kwargs)
    return tf_py_environment.TFPyEnvironment(py_env)
