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


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return s.getsockname()[1]


def test_a_role_without_a_replay_server_gives_up_after_the_connect_timeout(capsys):
    from tfrl.distributed.spec import ReplayConnectionError, connect

    address = f"127.0.0.1:{_free_port()}"
    with pytest.raises(ReplayConnectionError, match=f"{address}.*--connect-timeout"):
        connect(address, "actor-0", timeout=1.5)
    assert f"actor-0: connecting to the replay server at {address}" in capsys.readouterr().out


def test_sigterm_stops_a_role_waiting_for_its_replay_server():
    import signal
    import subprocess
    import sys
    import time

    code = (
        "from tfrl.distributed.process import interrupt_on_sigterm\n"
        "from tfrl.distributed.spec import connect\n"
        "interrupt_on_sigterm()\n"
        "try:\n"
        f"    connect('127.0.0.1:{_free_port()}', 'learner', timeout=300)\n"
        "except KeyboardInterrupt:\n"
        "    print('stopped', flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        line = proc.stdout.readline()  # printed once reverb is imported and the wait began
        assert "learner: connecting" in line
        assert time.monotonic() < deadline
        time.sleep(1)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert "stopped" in out
