"""Networks for agents: default MLPs and adapters for your own Keras models."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf
from tf_agents.networks import network, sequential

from tfrl.errors import IncompatibleAgentError

__all__ = ["as_network", "check_copyable", "check_output_shape", "mlp_layers"]


def mlp_layers(
    observation_spec: Any, hidden_units: tuple[int, ...], activation: str = "relu"
) -> list[tf.keras.layers.Layer]:
    """Hidden Dense layers (with a Flatten first for non-vector observations)."""
    layers: list[tf.keras.layers.Layer] = []
    if len(observation_spec.shape) != 1:
        layers.append(tf.keras.layers.Flatten())
    layers += [tf.keras.layers.Dense(units, activation=activation) for units in hidden_units]
    return layers


def as_network(model: Any, input_spec: Any, role: str) -> network.Network:
    """Wraps a Keras model (Sequential, functional or a layer) as a TF-Agents network.

    A TF-Agents `Network` is returned unchanged.
    """
    if isinstance(model, network.Network):
        return model
    if isinstance(model, tf.keras.layers.Layer):
        return sequential.Sequential([model], input_spec=input_spec, name=role)
    raise IncompatibleAgentError(
        f"{role}={model!r} is not a Keras model or TF-Agents network. Pass a "
        "tf.keras.Sequential / functional Model, or leave it out to use the default MLP."
    )


def check_output_shape(net: network.Network, input_spec: Any, expected: tuple, role: str) -> None:
    """Builds `net` and raises a clear error if its output is not `expected`."""
    try:
        output_spec = net.create_variables(input_spec)
    except (ValueError, TypeError, tf.errors.InvalidArgumentError) as e:
        raise IncompatibleAgentError(
            f"{role} could not be built on observations of spec {input_spec}: {e}. "
            "Its first layer must accept that shape."
        ) from e
    shape = tuple(output_spec.shape) if output_spec is not None else None
    if shape is not None and shape != tuple(expected):
        raise IncompatibleAgentError(
            f"{role} outputs shape {shape}, but this environment needs {tuple(expected)}. "
            f"End the model with tf.keras.layers.Dense({expected[-1]})."
        )


def check_copyable(net: network.Network, input_spec: Any, role: str, why: str) -> None:
    """Raises a clear error when `net` cannot be copied (as for a target network).

    TF-Agents copies a Keras model layer by layer through Keras' own
    serialization: a subclassed `tf.keras.Model` needs its class to be found
    (registered, or importable) and a `get_config` that returns its
    constructor arguments when it defines one. The copy, given the same
    weights, must compute the same function; otherwise the agent would
    silently learn against another network.
    """
    fix = (
        "A subclassed tf.keras.Model copies when its class is decorated with "
        "@tf.keras.saving.register_keras_serializable() (and a get_config() of its own, if "
        "it has one, returns all its constructor arguments); or build the model with "
        "tf.keras.Sequential or the functional API"
    )
    try:
        twin = net.copy(name=f"{role}_copy_check")
        twin.create_variables(input_spec)
    except (AttributeError, TypeError, ValueError, NotImplementedError, KeyError) as e:
        reason = str(e).strip().rstrip(".")
        raise IncompatibleAgentError(f"{role} cannot be copied, and {why}: {reason}. {fix}.") from e
    if tf.nest.flatten(net.state_spec):
        return  # recurrent TF-Agents networks copy by their own constructor arguments
    for source, target in zip(net.variables, twin.variables):
        target.assign(source)
    sample = tf.nest.map_structure(_sample_like, input_spec)
    same = len(net.variables) == len(twin.variables) and np.allclose(
        net(sample, training=False)[0], twin(sample, training=False)[0], atol=1e-5
    )
    if not same:
        raise IncompatibleAgentError(
            f"{role} copies as a different function (same weights, other outputs), and {why}: "
            f"its get_config() leaves out some constructor arguments. {fix}."
        )


def _sample_like(spec: Any) -> tf.Tensor:
    """A batch of 4 observations of `spec` (normal floats, zeros otherwise), seeded."""
    shape = (4, *spec.shape)
    if spec.dtype.is_floating:
        return tf.cast(tf.random.stateless_normal(shape, seed=(0, 0)), spec.dtype)
    return tf.zeros(shape, spec.dtype)
