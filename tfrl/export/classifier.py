"""Classifier exports: `serving_default` takes images and returns labels with per-class scores.

A policy that labels images (e.g. a DQN trained on `tfrl/ImageClassification-v0`,
whose action is the label) exports like any other, with TF-Agents' policy
signatures, but its `serving_default` speaks a classifier's language:

    inputs:  images       float32 [batch, height, width, channels]
    outputs: labels       int64   [batch]           the best-scoring label
             scores       float32 [batch, classes]  Q-values (DQN) or logits
             label_names  string  [batch]           the name of each label

path = tfrl.export.export_classifier(agent, "saved_models/image_classifier",
                                     class_names=["other", "2"])
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf
from tf_agents.agents import tf_agent
from tf_agents.policies import greedy_policy, tf_policy

from tfrl.errors import ExportError
from tfrl.export.exporter import export
from tfrl.export.signature import _time_step, score_kind

__all__ = ["IMAGES", "classifier_function", "export_classifier"]

IMAGES = "images"


def classifier_function(
    policy: tf_policy.TFPolicy, class_names: Sequence[str] | None = None
) -> tf.types.experimental.ConcreteFunction:
    """The concrete `serving_default` of a classifier export for `policy`.

    Args:
        policy: a stateless policy over image observations whose discrete
            action is the label and that scores actions (`q_values` or `logits`).
        class_names: a name per label; default the label numbers as strings.

    Raises:
        ExportError: the observations are not images, the action is not one
            discrete label, the policy does not score its actions, or the names
            do not match the labels.
    """
    obs_spec = policy.time_step_spec.observation
    if not isinstance(obs_spec, tf.TensorSpec) or obs_spec.shape.rank not in (2, 3):
        raise ExportError(
            f"A classifier export needs image observations [height, width(, channels)], but "
            f"the policy's observation spec is {obs_spec}. Use tfrl.export() instead."
        )
    action_spec = policy.action_spec
    if not isinstance(action_spec, tf.TensorSpec) or action_spec.shape.rank != 0:
        raise ExportError(
            f"A classifier export needs one discrete label per image; the action spec is "
            f"{action_spec}."
        )
    num_labels = int(action_spec.maximum) - int(action_spec.minimum) + 1
    if score_kind(policy) is None:
        raise ExportError(
            f"{type(policy).__name__} does not score its actions (no Q-values or logits), so "
            "it cannot return per-class scores; export a DQN or categorical policy."
        )
    names = [str(i) for i in range(num_labels)] if class_names is None else list(class_names)
    if len(names) != num_labels:
        raise ExportError(
            f"class_names has {len(names)} names but the policy has {num_labels} labels; give "
            "one name per label."
        )
    if tf.nest.flatten(policy.policy_state_spec):
        raise ExportError(f"{type(policy).__name__} is stateful; a classifier must not be.")
    inner = policy.wrapped_policy if isinstance(policy, greedy_policy.GreedyPolicy) else policy
    name_table = tf.constant(names)
    offset = int(action_spec.minimum)
    spec = tf.TensorSpec([None, *obs_spec.shape.as_list()], obs_spec.dtype, name=IMAGES)

    @tf.function(input_signature=[spec], autograph=False)
    def serve(images: tf.Tensor) -> dict[str, tf.Tensor]:
        time_step = _time_step(policy, images, tf.shape(images)[0])
        scores = inner.distribution(time_step).action.logits_parameter()
        labels = tf.argmax(scores, axis=-1, output_type=tf.int64) + offset
        return {
            "labels": tf.identity(labels, name="labels"),
            "scores": tf.identity(tf.cast(scores, tf.float32), name="scores"),
            "label_names": tf.gather(name_table, labels - offset, name="label_names"),
        }

    return serve.get_concrete_function()


def export_classifier(
    agent_or_policy: tf_agent.TFAgent | tf_policy.TFPolicy,
    base_path: str,
    *,
    class_names: Sequence[str] | None = None,
    version: int | None = None,
) -> str:
    """Exports an image-labelling policy as `base_path/<version>/` with a classifier signature.

    Same layout, atomicity and TF-Agents signatures as `tfrl.export`; only
    `serving_default` differs (see this module's docstring).

    Example:
        >>> path = tfrl.export.export_classifier(agent, "saved_models/image_classifier")
    """
    if isinstance(agent_or_policy, tf_agent.TFAgent):
        policy = agent_or_policy.policy
    elif isinstance(agent_or_policy, tf_policy.TFPolicy):
        policy = agent_or_policy
    else:
        raise ExportError(
            f"export_classifier() received a {type(agent_or_policy).__name__}; pass a "
            "TF-Agents TFAgent or TFPolicy."
        )
    serving = classifier_function(policy, class_names)
    return export(agent_or_policy, base_path, version=version, serving_default=serving)
