"""A launcher killed with SIGKILL, or stopped by Ctrl-C (SIGINT to its group), leaves no role.

No learning: each test waits until the learner is running, stops the launcher,
then checks that every PID the launcher started is gone within a bounded time.
"""

import os
import signal
import subprocess

import pytest

from tests.cli.commands import ROOT, TFRL
from tests.distributed.test_launcher import _alive, _kill_all, _status, _wait

pytest.importorskip("reverb")

# The promise is "no process left", not a deadline: an actor blocked in a Reverb write can take
# 25-30 s to notice SIGINT on a loaded 2-core machine (measured by a README follower), so the
# bound leaves room for that.
GONE_WITHIN = 90  # seconds


def _start(output):
    """`tfrl train --distributed` in its own session (process group), so a test can signal it."""
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    command = [TFRL, "train", "CartPole-v1", "--agent", "dqn", "--distributed"]
    command += ["--output", output, "--actors", "1", "--steps", "1000000"]
    command += ["--eval-every", "1000000", "--hparam", "hidden_units=[8]"]
    return subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


def _running_roles(launcher, output):
    """Waits until the learner runs; returns every PID the launcher started."""
    _wait(lambda: _status(output, "learner"), 240, "the learner to start")
    started = _status(output, "launcher")["started"]
    assert len(started) == 3 and all(_alive(pid) for pid in started)  # replay, learner, actor
    assert launcher.poll() is None
    return started


def test_sigkilled_launcher_takes_its_roles_with_it(tmp_path):
    output = str(tmp_path / "run")
    launcher = _start(output)
    try:
        started = _running_roles(launcher, output)
        launcher.kill()  # SIGKILL: no finally runs; only PR_SET_PDEATHSIG can stop the roles
        launcher.wait(timeout=30)
        _wait(
            lambda: not [pid for pid in started if _alive(pid)],
            GONE_WITHIN,
            f"roles {started} to die with the launcher",
        )
    finally:
        _kill_all(launcher, output)


def test_ctrl_c_stops_the_launcher_and_every_role(tmp_path):
    output = str(tmp_path / "run")
    launcher = _start(output)
    try:
        started = _running_roles(launcher, output)
        os.killpg(launcher.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
        _, err = launcher.communicate(timeout=GONE_WITHIN)
        assert launcher.returncode != 0
        assert "Traceback" not in err, err
        _wait(
            lambda: not [pid for pid in started if _alive(pid)],
            GONE_WITHIN,
            f"roles {started} to stop",
        )
    finally:
        _kill_all(launcher, output)
