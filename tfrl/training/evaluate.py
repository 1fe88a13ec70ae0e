"""`tfrl.evaluate`: the mean return of a policy over whole episodes."""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import numpy as np
import tensorflow as tf
from tf_agents.environments import tf_environment
from tf_agents.utils import common

from tfrl.errors import ConfigError, check_whole_number

__all__ = ["EvalResult", "check_specs_match", "evaluate", "make_eval_env"]


@dataclasses.dataclass
class EvalResult:
    """Returns of whole evaluation episodes.

    Attributes:
        returns: the undiscounted return of each episode.
        lengths: the number of steps of each episode.
    """

    returns: list[float]
    lengths: list[int]

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))

    def __str__(self) -> str:
        return f"{self.mean:.2f} ± {self.std:.2f} over {len(self.returns)} episodes"


def check_specs_match(time_step_spec: Any, action_spec: Any, env: Any, what: str) -> None:
    """Raises `ConfigError` unless `env` has the observation and action specs given."""
    for kind, expected, actual in (
        ("observation", time_step_spec.observation, env.time_step_spec().observation),
        ("action", action_spec, env.action_spec()),
    ):
        try:
            tf.nest.assert_same_structure(expected, actual)
            same = all(
                e.shape == a.shape and e.dtype == a.dtype
                for e, a in zip(tf.nest.flatten(expected), tf.nest.flatten(actual))
            )
        except (TypeError, ValueError):
            same = False
        if not same:
            raise ConfigError(
                f"{what} was built for {kind} spec {_describe(expected)}, but the env has "
                f"{_describe(actual)}. "
                "Build it from this env (tfrl.agents.make(name, env)) or use the env it was "
                "built for."
            )


def _describe(spec: Any) -> str:
    """`shape (4,) float32` for a spec, or a dict/list of those for a nest."""
    described = tf.nest.map_structure(lambda s: f"shape {tuple(s.shape)} {s.dtype.name}", spec)
    return str(described)


def make_eval_env(env_id: str | Any, episodes: int, seed: int | None, **env_kwargs: Any):
    """A vector env with one copy per episode, so a whole evaluation is one batch."""
    from tfrl.envs import make

    return make(env_id, num_envs=episodes, seed=seed, **env_kwargs)


@functools.lru_cache(maxsize=8)
def _episode_loop(env: tf_environment.TFEnvironment, policy: Any, max_steps: int):
    """Builds a compiled loop that plays one episode in every batch slot.

    Cached, so repeated evaluations (every `eval_every` steps) reuse one trace.
    """
    batch = env.batch_size or 1

    def run(time_step):
        policy_state = policy.get_initial_state(batch)
        returns = tf.zeros([batch], tf.float32)
        lengths = tf.zeros([batch], tf.int32)
        done = tf.zeros([batch], tf.bool)

        def cond(t, time_step, policy_state, returns, lengths, done):
            return tf.logical_and(t < max_steps, tf.logical_not(tf.reduce_all(done)))

        def body(t, time_step, policy_state, returns, lengths, done):
            action_step = policy.action(time_step, policy_state)
            next_step = env.step(action_step.action)
            live = tf.logical_not(done)
            returns += tf.where(live, next_step.reward, 0.0)
            lengths += tf.cast(live, tf.int32)
            done = tf.logical_or(done, next_step.is_last())
            return t + 1, next_step, action_step.state, returns, lengths, done

        loop_vars = (tf.constant(0), time_step, policy_state, returns, lengths, done)
        _, _, _, returns, lengths, done = tf.while_loop(cond, body, loop_vars)
        return returns, lengths, done

    return common.function(run)


def evaluate(
    policy: Any,
    env: Any,
    episodes: int = 20,
    *,
    seed: int | None = None,
    max_steps: int = 100_000,
) -> EvalResult:
    """Plays `episodes` whole episodes with `policy` and returns their returns.

    >>> result = tfrl.evaluate(agent.policy, "CartPole-v1", episodes=20, seed=100)
    >>> result.mean, result.std

    Args:
        policy: a TF-Agents policy, an agent (its greedy `policy` is used) or a
            policy export loaded with `tfrl.load`.
        env: a gymnasium id (a vector env with one copy per episode is made,
            seeded with `seed`) or a batched TF-Agents environment (it is reset;
            rounds of `batch_size` episodes run until `episodes` are done).
        episodes: how many episodes. Default 20.
        seed: seeds the env made from an id. Default None.
        max_steps: a bound on steps per episode, for envs that never end.

    Returns:
        An `EvalResult` with `.mean`, `.std`, `.returns` and `.lengths`.
    """
    check_whole_number("episodes", episodes)
    policy = getattr(policy, "policy", policy)
    # A TFPolicy, or a policy SavedModel loaded with tfrl.load / tf.saved_model.load.
    if not (callable(getattr(policy, "action", None)) and hasattr(policy, "get_initial_state")):
        raise ConfigError(
            "evaluate() needs a TF-Agents policy, an agent or a loaded policy export, "
            f"got {type(policy).__name__}."
        )
    if not isinstance(env, tf_environment.TFEnvironment):
        env = make_eval_env(env, episodes, seed)
    if hasattr(policy, "time_step_spec") and hasattr(policy, "action_spec"):
        check_specs_match(policy.time_step_spec, policy.action_spec, env, "The policy")
    loop = _episode_loop(env, policy, max_steps)
    returns: list[float] = []
    lengths: list[int] = []
    for _ in range(math.ceil(episodes / (env.batch_size or 1))):
        r, n, done = loop(env.reset())
        if not bool(tf.reduce_all(done)):
            raise ConfigError(
                f"An evaluation episode did not end within max_steps={max_steps}; "
                "raise max_steps or add a time limit (gymnasium's TimeLimit) to the env."
            )
        returns += r.numpy().tolist()
        lengths += n.numpy().tolist()
    return EvalResult(returns[:episodes], lengths[:episodes])
