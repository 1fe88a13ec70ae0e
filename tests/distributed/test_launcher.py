"""Distributed training end to end on loopback: learning, supervision, resume, lock, refusal.

Each test launches real processes (`tfrl train --distributed`); every process
is killed in a `finally`, and every wait is bounded.
"""

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from tests.cli.commands import ROOT, TFRL

SMALL = ["--hparam", "hidden_units=[64, 64]", "--eval-episodes", "10"]


def _launch(output, *args):
    """`tfrl train --distributed`; a new run trains DQN on CartPole-v1, --resume its own."""
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    run = [] if "--resume" in args else ["CartPole-v1", "--agent", "dqn"]
    return subprocess.Popen(
        [TFRL, "train", *run, "--distributed", "--output", output, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _status(output, role):
    try:
        with open(os.path.join(output, "status", f"{role}.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _wait(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _alive(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _kill_all(launcher, output):
    """Kills the launcher and anything it started that is still alive."""
    if launcher.poll() is None:
        launcher.kill()
    launcher.communicate(timeout=30)
    for pid in (_status(output, "launcher") or {}).get("started", []):
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _saved_state(output):
    with open(os.path.join(output, "checkpoints", "latest")) as f:
        latest = f.read().strip()
    with open(os.path.join(output, "checkpoints", latest, "trainer_state.json")) as f:
        return json.load(f)


@pytest.mark.slow
def test_two_actors_survive_kills_resume_and_learn_cartpole(tmp_path):
    """One run for every supervision promise, then its --resume to a return threshold.

    Run 1 (2 actors): a second launcher is refused; a SIGKILLed actor is restarted
    while the learner trains on; a SIGKILLed learner stops the run with a --resume
    hint and leaves no process behind. Run 2 (--resume): the learner continues from
    its checkpoint and trains to the threshold; again no process is left.
    """
    output = str(tmp_path / "run")
    launcher = _launch(
        output, "--actors", "2", "--steps", "30000", "--target-return", "10000",
        "--checkpoint-every", "500", "--eval-every", "1000", *SMALL,
    )  # fmt: skip
    try:
        first = _wait(
            lambda: (_status(output, "actor-0") or {}).get("pid"), 240, "actor-0 to collect"
        )
        # A second launcher on the same directory is refused, naming the holder's PID.
        second = _launch(output, "--actors", "1", "--steps", "1000")
        try:
            _, err = second.communicate(timeout=120)
        finally:
            second.kill()
        assert second.returncode == 2
        assert "in use by another distributed run" in err
        assert f"PID {launcher.pid}" in err

        os.kill(first, signal.SIGKILL)
        restarted = _wait(
            lambda: (
                (_status(output, "launcher") or {}).get("pids", {}).get("actor-0") != first
                and (_status(output, "launcher") or {})["pids"].get("actor-0")
            ),
            30,
            "actor-0 to be restarted",
        )
        assert restarted != first
        # The learner keeps training while actor-0 is down and after.
        steps = (_status(output, "learner") or {}).get("train_steps", 0)
        _wait(
            lambda: (_status(output, "learner") or {}).get("train_steps", 0) > steps,
            120,
            "the learner to train on",
        )
        _wait(
            lambda: (_status(output, "actor-0") or {}).get("pid") == restarted,
            120,
            "the restarted actor to collect",
        )
        checkpoint = _wait(
            lambda: (_status(output, "learner") or {}).get("checkpoint_step"),
            120,
            "a learner checkpoint",
        )
        os.kill(_status(output, "learner")["pid"], signal.SIGKILL)
        out, err = launcher.communicate(timeout=60)
        assert launcher.returncode == 2
        assert "restarted as pid" in out
        assert "learner" in err and "SIGKILL" in err and "--resume" in err
        started = _status(output, "launcher")["started"]
        assert first in started and restarted in started
        assert not [pid for pid in started if _alive(pid)]
    finally:
        _kill_all(launcher, output)

    saved_state = _saved_state(output)
    saved = saved_state["train_steps"]
    assert saved >= checkpoint
    launcher = _launch(output, "--resume", "--target-return", "100")
    try:
        out, err = launcher.communicate(timeout=600)
        assert launcher.returncode == 0, err
        learner = _status(output, "learner")
        assert learner["resumed_from"] == saved
        assert learner["train_steps"] > saved
        assert learner["env_steps"] >= saved_state["env_steps"]  # the replay was restored
        assert learner["done"] and learner["stopped_by"] == "target_return"
        assert learner["eval_return"] >= 100
        started = _status(output, "launcher")["started"]
        assert not [pid for pid in started if _alive(pid)]
        for role in ("learner", "actor-0", "actor-1"):
            assert os.listdir(os.path.join(output, "tensorboard", role))
    finally:
        _kill_all(launcher, output)

    # `tfrl export` (and `tfrl evaluate`, through the same load_run) reads the learner's checkpoint.
    exported = subprocess.run(
        [TFRL, "export", output, "--base", str(tmp_path / "models"), "--name", "dist"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")},
    )
    assert exported.returncode == 0, exported.stderr
    assert "(--checkpoint best: " in exported.stdout
    assert os.path.exists(tmp_path / "models" / "dist" / "1" / "saved_model.pb")


@pytest.mark.slow
def test_sigterm_stops_the_launcher_and_every_role(tmp_path):
    output = str(tmp_path / "run")
    launcher = _launch(output, "--actors", "1", "--steps", "100000", *SMALL)
    try:
        started = _wait(
            lambda: (_status(output, "launcher") or {}).get("started"), 240, "the roles"
        )
        assert len(started) == 3
        launcher.send_signal(signal.SIGTERM)
        launcher.communicate(timeout=60)
        assert launcher.returncode != 0
        assert not [pid for pid in started if _alive(pid)]
    finally:
        _kill_all(launcher, output)


def _refused(tmp_path, *args):
    """Stderr of `tfrl train CartPole-v1 --distributed ARGS`, which must fail before starting."""
    output = str(tmp_path / "run")
    result = subprocess.run(
        [TFRL, "train", "CartPole-v1", "--distributed", "--output", output, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")},
    )
    assert result.returncode == 2
    assert not os.path.exists(output)
    return result.stderr


def test_on_policy_agents_are_refused_before_anything_starts(tmp_path):
    err = _refused(tmp_path, "--agent", "ppo")
    assert "'ppo'" in err and "dqn, ddqn" in err


def test_num_envs_is_refused_when_distributed(tmp_path):
    err = _refused(tmp_path, "--num-envs", "4")
    assert "--num-envs 4 does not apply to --distributed" in err and "--actors" in err


def test_python_api_refuses_on_policy_agents():
    from tfrl.errors import IncompatibleAgentError
    from tfrl.training.run import train

    with pytest.raises(IncompatibleAgentError, match="supports dqn, ddqn"):
        train("CartPole-v1", agent="reinforce", distributed=True)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
