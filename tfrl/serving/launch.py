"""`serve()`: run a server from TF Serving-style arguments, until interrupted."""

from __future__ import annotations

import logging
import os
from typing import Any

from tfrl.errors import ConfigError
from tfrl.serving.config import ModelConfig, load_model_config_file
from tfrl.serving.server import Server, ServerOptions

__all__ = ["model_configs", "serve"]

logger = logging.getLogger(__name__)


def _warn_on_version_directories(models: list[ModelConfig]) -> list[ModelConfig]:
    """Warns (one line each) about base paths that are a version directory themselves:
    such a model never gets a version, and every request to it is a 404."""
    for m in models:
        if os.path.isfile(os.path.join(m.base_path, "saved_model.pb")):
            parent = os.path.dirname(os.path.normpath(m.base_path)) or "."
            logger.warning(
                "Model %r: base path %s looks like a version directory (it holds "
                "saved_model.pb); pass its parent %s",
                m.name,
                m.base_path,
                parent,
            )
    return models


def model_configs(
    model_name: str | None = None,
    model_base_path: str | None = None,
    model_config_file: str | None = None,
) -> list[ModelConfig]:
    """Models from a `models.config` file, or from one name/base-path pair.

    Like TF Serving: `model_config_file` excludes the other two; with only
    `model_base_path`, the name defaults to "default".
    """
    if model_config_file:
        if model_base_path or model_name:
            raise ConfigError(
                "Pass either model_config_file or model_name/model_base_path, not both."
            )
        return _warn_on_version_directories(load_model_config_file(model_config_file))
    if not model_base_path:
        raise ConfigError(
            "Nothing to serve: pass model_base_path (e.g. saved_models/cartpole_dqn) or "
            "model_config_file (a TF Serving models.config)."
        )
    if not os.path.isdir(model_base_path):
        raise ConfigError(
            f"model_base_path {model_base_path!r} is not a directory; export a model there "
            "first (tfrl.export(agent, path))."
        )
    return _warn_on_version_directories([ModelConfig(model_name or "default", model_base_path)])


def serve(
    model_base_path: str | None = None,
    *,
    model_name: str | None = None,
    model_config_file: str | None = None,
    **options: Any,
) -> None:
    """Serves models with TF Serving's REST (and, with `grpc_port`, gRPC) API until
    interrupted (blocking).

    Args:
        model_base_path: a model's directory of integer versions.
        model_name: its name in URLs. Default "default", as TF Serving.
        model_config_file: a TF Serving `models.config` (instead of the above).
        **options: `ServerOptions` fields (host, port, grpc_port, poll_interval,
            metrics_path, ...).

    Example:
        >>> tfrl.serving.serve("saved_models/cartpole_dqn", model_name="cartpole_dqn")
    """
    models = model_configs(model_name, model_base_path, model_config_file)
    Server(models, ServerOptions(**options)).serve_forever()
