"""The launcher probes the replay port where Reverb listens: every interface, not only --host."""

import socket

import pytest

from tfrl.distributed import launcher
from tfrl.ports import ServerStartError
from tfrl.training.run import RunConfig


def test_a_port_held_on_another_local_address_is_refused_before_anything_starts(tmp_path):
    # 127.0.0.1 is free on this port, but Reverb would also need it on 127.0.0.2.
    holder = socket.create_server(("127.0.0.2", 0))
    port = holder.getsockname()[1]
    output = tmp_path / "run"
    try:
        with pytest.raises(ServerStartError, match=f"{port}.*--replay-port"):
            launcher.launch(
                RunConfig(agent="dqn"), output_dir=str(output), replay_port=port, verbose=0
            )
    finally:
        holder.close()
    assert not output.exists()


def test_a_free_port_is_free_on_every_interface():
    port = launcher._free_port()
    socket.create_server(("0.0.0.0", port)).close()
