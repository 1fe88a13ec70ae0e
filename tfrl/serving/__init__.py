"""A server with TensorFlow Serving's REST and gRPC APIs.

    from tfrl.serving import ModelConfig, Server
    with Server([ModelConfig("cartpole_dqn", "saved_models/cartpole_dqn")], port=0) as server:
        ...  # POST f"{server.url}/v1/models/cartpole_dqn:predict"

or from the shell:

    tfrl serve --model_name=cartpole_dqn --model_base_path=saved_models/cartpole_dqn
"""

from __future__ import annotations

import importlib
from typing import Any

# Imported on first use, so that a codec worker (which imports only
# tfrl.serving.codec and .workers) never imports TensorFlow.
_LAZY = {
    "BatchingOptions": "tfrl.serving.batching",
    "ModelConfig": "tfrl.serving.config",
    "load_model_config_file": "tfrl.serving.config",
    "model_configs": "tfrl.serving.launch",
    "serve": "tfrl.serving.launch",
    "Server": "tfrl.serving.server",
    "ServerOptions": "tfrl.serving.server",
    "Code": "tfrl.serving.status",
    "ServerStartError": "tfrl.serving.status",
    "ServingError": "tfrl.serving.status",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tfrl.serving' has no attribute {name!r}")


__all__ = [
    "BatchingOptions",
    "Code",
    "ModelConfig",
    "Server",
    "ServerOptions",
    "ServerStartError",
    "ServingError",
    "load_model_config_file",
    "model_configs",
    "serve",
]
