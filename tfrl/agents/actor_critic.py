"""Actor and value networks for the policy-gradient agents (REINFORCE, PPO).

An actor maps observations to an action distribution, a value network to one
number per observation. Either can be the default TF-Agents MLP, your Keras
model (wrapped here), or a TF-Agents network (used as it is).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tensorflow_probability as tfp
from tf_agents.networks import actor_distribution_network, network, sequential, value_network

from tfrl.agents.base import fitting_agents, is_discrete, num_actions, require_single_observation
from tfrl.agents.networks import as_network, check_output_shape
from tfrl.errors import IncompatibleAgentError

__all__ = ["GaussianHead", "actor_network_for", "value_network_for"]


def _check_action_spec(action_spec: Any, agent: str) -> None:
    if isinstance(action_spec, (dict, list, tuple)):
        raise IncompatibleAgentError(
            f"{agent!r} with its default networks needs one action array, but the action "
            f"spec is nested: {action_spec}. Flatten the action space or pass an "
            "actor_network that emits the nest of distributions."
        )
    if action_spec.dtype.is_integer and not is_discrete(action_spec):
        raise IncompatibleAgentError(
            f"{agent!r} supports one Discrete action or a Box of floats, but this "
            f"environment's action spec is {action_spec}. Agents that fit it: "
            + fitting_agents(action_spec, "none; wrap the env so its action space is Discrete")
            + "."
        )


class GaussianHead(tf.keras.layers.Layer):
    """Turns a mean of the action's shape into a diagonal Normal distribution.

    The log standard deviation is one trainable vector (independent of the
    observation), initialised to 0 (std 1), as in PPO's continuous-control
    setup (Schulman et al., 2017).
    """

    def __init__(self, action_shape: tuple[int, ...], **kwargs: Any):
        super().__init__(**kwargs)
        self.action_shape = tuple(action_shape)

    def build(self, input_shape: Any) -> None:
        self.log_std = self.add_weight(name="log_std", shape=self.action_shape, initializer="zeros")
        super().build(input_shape)

    def call(self, mean: tf.Tensor) -> tfp.distributions.Distribution:
        normal = tfp.distributions.Normal(loc=mean, scale=tf.exp(self.log_std))
        return tfp.distributions.Independent(
            normal, reinterpreted_batch_ndims=len(self.action_shape)
        )


def _categorical(action_spec: Any) -> tf.keras.layers.Layer:
    dtype = action_spec.dtype
    return tf.keras.layers.Lambda(
        lambda logits: tfp.distributions.Categorical(logits=logits, dtype=dtype), name="categorical"
    )


def actor_network_for(
    time_step_spec: Any,
    action_spec: Any,
    actor_network: Any,
    hidden_units: tuple[int, ...],
    agent: str,
    activation: Any = tf.keras.activations.relu,
) -> network.Network:
    """The actor: default MLP, a Keras model (logits or mean) or a TF-Agents network.

    A Keras model must output one logit per action for a Discrete action
    space, or the action's mean (same shape as the action) for a Box; a
    `GaussianHead` adds the learned standard deviation.
    """
    _check_action_spec(action_spec, agent)
    observation_spec = time_step_spec.observation
    if actor_network is None:
        require_single_observation(observation_spec, agent)
        return actor_distribution_network.ActorDistributionNetwork(
            observation_spec, action_spec, fc_layer_params=hidden_units, activation_fn=activation
        )
    if isinstance(actor_network, network.Network):
        return actor_network
    body = as_network(actor_network, observation_spec, "actor_network")
    if is_discrete(action_spec):
        check_output_shape(body, observation_spec, (num_actions(action_spec),), "actor_network")
        head = _categorical(action_spec)
    else:
        shape = tuple(action_spec.shape)
        check_output_shape(body, observation_spec, shape, "actor_network")
        head = GaussianHead(shape)
    return sequential.Sequential([body, head], input_spec=observation_spec, name="actor_network")


def value_network_for(
    time_step_spec: Any,
    value_net: Any,
    hidden_units: tuple[int, ...],
    agent: str,
    activation: Any = tf.keras.activations.relu,
) -> network.Network:
    """The state-value network: default MLP, a Keras model ending in `Dense(1)`, or
    a TF-Agents network returning shape `[batch]`."""
    observation_spec = time_step_spec.observation
    if value_net is None:
        require_single_observation(observation_spec, agent)
        return value_network.ValueNetwork(
            observation_spec, fc_layer_params=hidden_units, activation_fn=activation
        )
    if isinstance(value_net, network.Network):
        return value_net
    body = as_network(value_net, observation_spec, "value_network")
    check_output_shape(body, observation_spec, (1,), "value_network")
    squeeze = tf.keras.layers.Lambda(lambda v: tf.squeeze(v, -1), name="squeeze_value")
    return sequential.Sequential([body, squeeze], input_spec=observation_spec, name="value_network")
