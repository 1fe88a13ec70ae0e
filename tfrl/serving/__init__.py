"""A server with TensorFlow Serving's REST and gRPC APIs.

    from tfrl.serving import ModelConfig, Server
    with Server([ModelConfig("cartpole_dqn", "saved_models/cartpole_dqn")], port=0) as server:
        ...  # POST f"{server.url}/v1/models/cartpole_dqn:predict"

or from the shell:

    tfrl serve --model_name=cartpole_dqn --model_base_path=saved_models/cartpole_dqn
"""

from tfrl.serving.batching import BatchingOptions
from tfrl.serving.config import ModelConfig, load_model_config_file
from tfrl.serving.launch import model_configs, serve
from tfrl.serving.server import Server, ServerOptions
from tfrl.serving.status import Code, ServerStartError, ServingError

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
