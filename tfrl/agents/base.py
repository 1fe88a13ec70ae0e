"""What every tfrl agent adds to its TF-Agents base class."""

from __future__ import annotations

from typing import Any

import tensorflow as tf
from tf_agents.specs import tensor_spec

from tfrl.agents.config import AgentConfig
from tfrl.errors import IncompatibleAgentError

__all__ = ["TfrlAgent", "is_discrete", "num_actions", "require_discrete"]


class TfrlAgent:
    """Mixin for tfrl's agents (each also a real TF-Agents `TFAgent`).

    Attributes:
        config: the agent's hyper-parameters (an `AgentConfig` dataclass).
        env_step_counter: env steps collected so far; the Trainer advances it
            and exploration schedules read it. Saved in checkpoints.
    """

    name_in_registry: str = ""
    config_class: type[AgentConfig] = AgentConfig
    object_args: tuple[str, ...] = ()
    config: AgentConfig

    def _init_tfrl(self, config: AgentConfig) -> None:
        self.config = config
        self.env_step_counter = tf.Variable(
            0, dtype=tf.int64, trainable=False, name="env_step_counter"
        )

    @staticmethod
    def _new_train_step_counter() -> tf.Variable:
        """The train step counter every tfrl agent hands to its TF-Agents base."""
        return tf.Variable(0, dtype=tf.int64, trainable=False, name="train_step_counter")

    def _epsilon(self) -> tf.Tensor:
        """ε decaying linearly from `config.epsilon_start` to `config.epsilon_end`
        over `config.exploration_steps` env steps (for agents whose config has them)."""
        c = self.config
        fraction = tf.cast(self.env_step_counter, tf.float32) / float(max(c.exploration_steps, 1))
        fraction = tf.minimum(fraction, 1.0)
        return c.epsilon_start + fraction * (c.epsilon_end - c.epsilon_start)

    @property
    def on_policy(self) -> bool:
        """True when the agent trains only on data from its current policy."""
        return type(self.config).on_policy


def is_discrete(action_spec: Any) -> bool:
    """One integer action in [0, n)."""
    return (
        tensor_spec.is_discrete(action_spec)
        and tensor_spec.is_bounded(action_spec)
        and action_spec.shape.rank == 0
        and int(action_spec.minimum) == 0
    )


def num_actions(action_spec: Any) -> int:
    return int(action_spec.maximum) - int(action_spec.minimum) + 1


def require_discrete(action_spec: Any, agent: str, alternatives: str) -> None:
    """Raises `IncompatibleAgentError` unless the action spec is one discrete choice."""
    if isinstance(action_spec, (dict, list, tuple)) or not is_discrete(action_spec):
        raise IncompatibleAgentError(
            f"{agent!r} needs a discrete action space (gymnasium Discrete: one integer "
            f"action from 0 to n-1), but this environment's action spec is {action_spec}. "
            f"Agents that fit it: {fitting_agents(action_spec, alternatives)}."
        )


def is_slate(action_spec: Any) -> bool:
    """A vector of integer ids (gymnasium MultiDiscrete), e.g. a recommended slate."""
    return (
        not isinstance(action_spec, (dict, list, tuple))
        and action_spec.dtype.is_integer
        and action_spec.shape.rank == 1
    )


def fitting_agents(action_spec: Any, otherwise: str) -> str:
    """What to suggest for an action spec an agent refused: slates go to 'slateq'."""
    if is_slate(action_spec):
        return (
            "'slateq' (a slate of distinct candidate ids, as tfrl/Recommendation-v0's); "
            "for other MultiDiscrete actions, wrap the env so its action space is Discrete"
        )
    return otherwise


def require_single_observation(observation_spec: Any, agent: str) -> None:
    if isinstance(observation_spec, (dict, list, tuple)):
        raise IncompatibleAgentError(
            f"{agent!r} with its default network needs one observation array, but the "
            f"observation spec is nested: {observation_spec}. Flatten it (gymnasium's "
            "FlattenObservation wrapper) or pass your own network that accepts the nest."
        )
