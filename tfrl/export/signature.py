"""The `serving_default` signature: a batch of observations in, actions out.

TensorFlow Serving calls `serving_default` when a request names no signature.
TF-Agents' own `action` signature needs a whole `TimeStep` (step type, reward,
discount, observation); this one needs only the observations, and adds what
the policy scores actions with:

- `q_values` for Q-value policies (the DQN family: a `QPolicy`, usually
  wrapped in the agent's `GreedyPolicy`);
- `logits` for policies whose action distribution is a `Categorical`
  (PPO, REINFORCE and other categorical actor policies).

A domain policy may define its own: a policy with a `serving_signature()`
method (e.g. `tfrl.agents.slateq.SlateQPolicy`: user and candidate features
in, `slate` and `scores` out) is exported with the concrete function it
returns, which must still output `action`.

Observations: one array gives one input named `observation` of shape
`[None, *observation_shape]`. A flat dict of arrays gives one input per key
(named by the key). Deeper nests, tuples and stateful (recurrent) policies
raise `ExportError`, since a stateless batch-of-observations call cannot
serve them; their `action` signature still can.
"""

from __future__ import annotations

import re
from typing import Any

import tensorflow as tf
import tensorflow_probability as tfp
from tf_agents.policies import greedy_policy, q_policy, tf_policy
from tf_agents.trajectories import time_step as ts

from tfrl.errors import ExportError

__all__ = ["SERVING_DEFAULT", "input_specs", "score_kind", "serving_function"]

SERVING_DEFAULT = "serving_default"
_INPUT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*$")


def input_specs(policy: tf_policy.TFPolicy) -> dict[str, tf.TensorSpec]:
    """The named, batched inputs of `serving_default` for `policy`."""
    obs_spec = policy.time_step_spec.observation
    if isinstance(obs_spec, tf.TypeSpec):
        return {"observation": _batched("observation", obs_spec)}
    if isinstance(obs_spec, dict) and all(isinstance(s, tf.TypeSpec) for s in obs_spec.values()):
        bad = [k for k in obs_spec if not (isinstance(k, str) and _INPUT_NAME.match(k))]
        if bad:
            raise ExportError(
                f"Observation keys {bad} cannot name serving_default inputs: use keys that "
                "start with a letter and hold only letters, digits, '_', '.' or '-'."
            )
        return {k: _batched(k, s) for k, s in sorted(obs_spec.items())}
    raise ExportError(
        "serving_default supports one observation array or a flat dict of arrays, but "
        f"this policy's observation spec is {obs_spec}. Flatten the observation "
        "(e.g. gymnasium's FlattenObservation wrapper) before training, or call the "
        "export's TF-Agents `action` signature instead."
    )


def _batched(name: str, spec: tf.TypeSpec) -> tf.TensorSpec:
    if not isinstance(spec, tf.TensorSpec):
        raise ExportError(
            f"Observation {name!r} has spec {spec}; serving_default needs dense tensors."
        )
    return tf.TensorSpec([None, *spec.shape.as_list()], spec.dtype, name=name)


def score_kind(policy: tf_policy.TFPolicy) -> str | None:
    """'q_values', 'logits' or None: what `serving_default` returns beside `action`."""
    inner = policy.wrapped_policy if isinstance(policy, greedy_policy.GreedyPolicy) else policy
    if isinstance(inner, q_policy.QPolicy):
        return "q_values"
    return "logits" if _categorical(inner) is not None else None


def _categorical(policy: tf_policy.TFPolicy) -> Any:
    """The policy's action distribution on a zero observation, if Categorical."""
    if not isinstance(policy.action_spec, tf.TypeSpec):
        return None
    sample = tf.nest.map_structure(
        lambda s: tf.zeros([1, *s.shape.as_list()], s.dtype), policy.time_step_spec
    )
    try:
        distribution = policy.distribution(sample).action
    except (NotImplementedError, TypeError, ValueError):
        return None
    return distribution if isinstance(distribution, tfp.distributions.Categorical) else None


def _time_step(policy: tf_policy.TFPolicy, observation: Any, batch: tf.Tensor) -> ts.TimeStep:
    """A FIRST time step for a batch of observations (rewards 0, discounts 1)."""
    spec = policy.time_step_spec

    def filled(s: tf.TensorSpec, value: float) -> tf.Tensor:
        return tf.fill(
            tf.concat([[batch], tf.constant(s.shape.as_list(), tf.int32)], 0),
            tf.constant(value, s.dtype),
        )

    return ts.TimeStep(
        step_type=filled(spec.step_type, int(ts.StepType.FIRST)),
        reward=tf.nest.map_structure(lambda s: filled(s, 0), spec.reward),
        discount=filled(spec.discount, 1),
        observation=observation,
    )


def serving_function(policy: tf_policy.TFPolicy) -> tf.types.experimental.ConcreteFunction:
    """Builds the concrete `serving_default` function for a stateless policy.

    Raises:
        ExportError: the policy keeps state between steps, has a nested action
            spec, or has observations `input_specs` cannot name.
    """
    domain_signature = getattr(policy, "serving_signature", None)
    if callable(domain_signature):
        return domain_signature()
    if tf.nest.flatten(policy.policy_state_spec):
        raise ExportError(
            f"{type(policy).__name__} is stateful (policy_state_spec="
            f"{policy.policy_state_spec}); serving_default takes observations only. Export a "
            "feed-forward policy, or call the export's `get_initial_state` and `action` "
            "signatures, which carry the state."
        )
    if not isinstance(policy.action_spec, tf.TypeSpec):
        raise ExportError(
            f"serving_default returns one `action` tensor, but the action spec is nested: "
            f"{policy.action_spec}. Use the export's TF-Agents `action` signature instead."
        )
    specs = input_specs(policy)
    names = list(specs)
    kind = score_kind(policy)
    inner = policy.wrapped_policy if isinstance(policy, greedy_policy.GreedyPolicy) else policy
    is_dict = not isinstance(policy.time_step_spec.observation, tf.TypeSpec)

    @tf.function(input_signature=[specs[n] for n in names], autograph=False)
    def serve(*inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        observation = dict(zip(names, inputs)) if is_dict else inputs[0]
        batch = tf.shape(inputs[0])[0]
        time_step = _time_step(policy, observation, batch)
        outputs = {"action": tf.identity(policy.action(time_step).action, name="action")}
        if kind is not None:
            scores = inner.distribution(time_step).action.logits_parameter()
            outputs[kind] = tf.identity(scores, name=kind)
        return outputs

    return serve.get_concrete_function()
