"""`export()`: a policy as the next TF Serving version of a model, atomically."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import tensorflow as tf
from tf_agents.agents import tf_agent
from tf_agents.policies import policy_saver, tf_policy

from tfrl.atomic import atomic_directory
from tfrl.errors import ExportError
from tfrl.export.signature import SERVING_DEFAULT, serving_function
from tfrl.export.versions import next_version

__all__ = ["EXPORT_INFO", "export", "load", "read_export_info", "version_directory"]

logger = logging.getLogger(__name__)

# What tfrl records about an export, beside the SavedModel (TF Serving ignores
# assets.extra/): {"serving_default": "agent"} when serving_default is the
# observations-in, `action`-out signature, "domain" when a domain passed its own.
EXPORT_INFO = os.path.join("assets.extra", "tfrl_export.json")


def export(
    agent_or_policy: tf_agent.TFAgent | tf_policy.TFPolicy,
    base_path: str,
    *,
    version: int | None = None,
    serving_default: Any = None,
    metadata: dict | None = None,
) -> str:
    """Writes a policy as `base_path/<version>/`, a SavedModel TF Serving loads as is.

    The SavedModel carries TF-Agents' signatures (`action`, `get_initial_state`,
    `get_train_step`, `get_metadata`) and `serving_default`: a batch of
    observations in, `action` plus `q_values` (DQN family) or `logits`
    (categorical actor policies) out. The version appears whole or not at all:
    it is written to a hidden temporary directory that TF Serving ignores and
    renamed when complete.

    Domain models export the same way: an object with a
    `serving_signatures()` method (a `tf.Module`, e.g. `tfrl.text.TextGenerator`,
    whose `serving_default` takes prompt strings and returns text) is saved
    with those signatures.

    Args:
        agent_or_policy: a TF-Agents `TFAgent` (its greedy `agent.policy` is
            exported, with its train step), any `TFPolicy`, or a domain module
            with `serving_signatures()`.
        base_path: the model's directory, e.g. "saved_models/cartpole_dqn".
        version: the version number; default None takes one more than the
            highest existing version (1 for a new model).
        serving_default: a concrete function to serve instead of the
            observations-in one (a domain's signature, e.g.
            `tfrl.export.classifier_function`). Default None.
        metadata: JSON-serialisable facts a loader needs beside the graph (e.g.
            `RLController`'s learning-rate band), kept in the version's
            `assets.extra/tfrl_export.json` (`read_export_info(path)["metadata"]`).
            Default None.

    Returns:
        The path of the new version directory.

    Raises:
        ExportError: bad argument, existing version, or a policy
            `serving_default` cannot serve (see `tfrl.export.signature`).

    Example:
        >>> path = tfrl.export(agent, "saved_models/cartpole_dqn")  # .../cartpole_dqn/1
    """
    _check_metadata(metadata)
    if callable(getattr(agent_or_policy, "serving_signatures", None)):
        return _export_module(agent_or_policy, base_path, version, metadata)
    if isinstance(agent_or_policy, tf_agent.TFAgent):
        policy = agent_or_policy.policy
        train_step = agent_or_policy.train_step_counter
    elif isinstance(agent_or_policy, tf_policy.TFPolicy):
        policy, train_step = agent_or_policy, None
    else:
        raise ExportError(
            f"export() received a {type(agent_or_policy).__name__}; pass a TF-Agents TFAgent "
            "(e.g. from tfrl.agents.make) or a TFPolicy (e.g. agent.policy)."
        )
    if not isinstance(train_step, (tf.Variable, type(None))):
        train_step = None
    path = _version_path(base_path, version)
    serving = serving_default if serving_default is not None else serving_function(policy)
    saver = policy_saver.PolicySaver(policy, batch_size=None, train_step=train_step)
    saver.signatures[SERVING_DEFAULT] = serving
    _write(path, saver.save, "agent" if serving_default is None else "domain", metadata)
    logger.info("Exported %s to %s", type(policy).__name__, path)
    return path


def _version_path(base_path: str, version: int | None) -> str:
    if version is None:
        version = next_version(base_path)
    elif isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ExportError(
            f"export() received version={version!r}; pass a positive integer, or None for "
            "the next free version."
        )
    path = os.path.join(os.path.abspath(base_path), str(version))
    if os.path.exists(path):
        raise ExportError(
            f"{path} already exists; pass version=None to write the next free version "
            f"({next_version(base_path)}), or remove it first."
        )
    return path


def _check_metadata(metadata: dict | None) -> None:
    if metadata is None:
        return
    try:
        if not isinstance(metadata, dict):
            raise TypeError(f"a {type(metadata).__name__}")
        json.dumps(metadata)
    except (TypeError, ValueError) as e:
        raise ExportError(
            f"export() received metadata={metadata!r}, which is not a JSON-serialisable dict "
            f"({e}); pass a dict of numbers, strings, lists and dicts."
        ) from e


def _write(path: str, save: Any, kind: str, metadata: dict | None = None) -> None:
    """Runs `save(tmp_dir)`, records what `serving_default` is (`kind`: "agent", which
    answers with an `action`, or "domain") and any `metadata`, and renames the
    directory to `path`."""
    info: dict[str, Any] = {"serving_default": kind}
    if metadata is not None:
        info["metadata"] = metadata
    try:
        with atomic_directory(path) as tmp:
            save(tmp)
            os.makedirs(os.path.join(tmp, os.path.dirname(EXPORT_INFO)), exist_ok=True)
            with open(os.path.join(tmp, EXPORT_INFO), "w") as f:
                json.dump(info, f)
    except FileExistsError as e:
        raise ExportError(
            f"{path} appeared while exporting (another export wrote it); retry with version=None."
        ) from e
    except OSError as e:
        if os.path.exists(path):
            raise ExportError(f"{path} appeared while exporting; retry with version=None.") from e
        raise


def _export_module(
    module: tf.Module, base_path: str, version: int | None, metadata: dict | None = None
) -> str:
    """A domain export: a `tf.Module` whose `serving_signatures()` include serving_default.

    E.g. `tfrl.text.TextGenerator`: prompt strings in, generated text out.
    """
    path = _version_path(base_path, version)
    signatures = module.serving_signatures()
    if SERVING_DEFAULT not in signatures:
        raise ExportError(
            f"{type(module).__name__}.serving_signatures() has no {SERVING_DEFAULT!r}; "
            "TF Serving calls it when a request names no signature."
        )
    _write(
        path,
        lambda tmp: tf.saved_model.save(module, tmp, signatures=signatures),
        "domain",
        metadata,
    )
    logger.info("Exported %s to %s", type(module).__name__, path)
    return path


def load(path: str) -> Any:
    """Loads an export with `tf.saved_model.load` (TF2 eager API).

    Args:
        path: a version directory (`base/<N>`), or a model's base directory, in
            which case its latest version is loaded.

    Returns:
        The loaded SavedModel: call `.signatures["serving_default"](observation=...)`,
        or TF-Agents' `.action(time_step)`.

    Raises:
        ExportError: no SavedModel there.
    """
    path = version_directory(path)
    try:
        return tf.saved_model.load(path)
    except Exception as e:
        raise ExportError(f"tf.saved_model.load cannot load {path}: {e}") from e


def version_directory(path: str) -> str:
    """`path` itself if it holds a SavedModel, else its latest version directory.

    Raises:
        ExportError: neither.
    """
    from tfrl.export.versions import SAVED_MODEL_FILES, list_versions

    path = os.path.abspath(path)
    if not any(os.path.isfile(os.path.join(path, f)) for f in SAVED_MODEL_FILES):
        versions = list_versions(path)
        if not versions:
            raise ExportError(
                f"{path} holds neither saved_model.pb nor integer version directories; "
                "pass a path written by tfrl.export()."
            )
        path = os.path.join(path, str(versions[-1]))
    return path


def read_export_info(path: str) -> dict:
    """What `export()` recorded about the version directory `path`; {} if not a tfrl export."""
    try:
        with open(os.path.join(path, EXPORT_INFO)) as f:
            info = json.load(f)
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}
