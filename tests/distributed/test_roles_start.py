"""Hand-started roles fail fast and in one line when their port or server is not there."""

import socket

import pytest

from tfrl.distributed import replay_server
from tfrl.ports import ServerStartError
from tfrl.training.run import RunConfig


def test_replay_server_on_a_port_in_use_fails_in_one_line_naming_the_flag(tmp_path):
    holder = socket.create_server(("0.0.0.0", 0))
    port = holder.getsockname()[1]
    try:
        with pytest.raises(ServerStartError, match=f"port {port} is in use.*--port"):
            replay_server.serve(RunConfig(agent="dqn"), str(tmp_path / "run"), port)
    finally:
        holder.close()
    assert not (tmp_path / "run").exists()
