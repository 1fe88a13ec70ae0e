"""The run-directory lock and the replay address check (no processes, no TensorFlow)."""

import os

import pytest

from tfrl.distributed.lock import RunLock, RunLockedError
from tfrl.distributed.spec import parse_address
from tfrl.errors import ConfigError


def test_a_second_lock_on_a_run_directory_is_refused_naming_the_holder(tmp_path):
    second = RunLock(str(tmp_path))
    with RunLock(str(tmp_path)), pytest.raises(RunLockedError, match=f"PID {os.getpid()}"):
        second.acquire()
    with RunLock(str(tmp_path)):  # released on exit: the directory can be taken again
        pass


@pytest.mark.parametrize("address", ["8520", "localhost", "host:port", "host:0", ":8520"])
def test_replay_addresses_must_be_host_and_port(address):
    with pytest.raises(ConfigError, match="HOST:PORT"):
        parse_address(address)
    assert parse_address("10.0.0.1:8520") == "10.0.0.1:8520"
