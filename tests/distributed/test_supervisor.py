"""The supervisor's restart policy: a budget per sliding window, a backoff, new seeds.

No process is started: `subprocess.Popen` and the clock are stand-ins.
"""

import pytest

from tfrl.distributed import supervisor as sup


class _Process:
    count = 0

    def __init__(self, args, **kwargs):
        _Process.count += 1
        self.pid, self.args, self.code = 1000 + _Process.count, args, None

    def poll(self):
        return self.code


@pytest.fixture
def clock(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(sup.subprocess, "Popen", _Process)
    monkeypatch.setattr(sup.time, "monotonic", lambda: now[0])
    return now


def _actor(tmp_path, max_restarts=2):
    s = sup.Supervisor(str(tmp_path), say=lambda message: None)
    role = s.start(
        sup.Role("actor-0", ["actor", "--id", "0"], max_restarts, restart_flag="--restart")
    )
    return s, role


def test_a_dead_actor_is_restarted_after_a_backoff_with_new_seeds(tmp_path, clock):
    s, role = _actor(tmp_path)
    first = role.process
    assert "--restart" not in first.args
    first.code = 130  # an actor stopped by someone (SIGTERM/SIGINT) is restarted too
    assert s.poll() == []
    assert role.process is first  # not yet: it waits out its backoff
    clock[0] += sup.BACKOFF
    assert s.poll() == [] and role.process is not first
    assert role.process.args[-2:] == ["--restart", "1"]

    role.process.code = 1
    s.poll()
    clock[0] += sup.BACKOFF  # the second restart in a row waits twice as long
    s.poll()
    assert role.process.args[-2:] != ["--restart", "2"]
    clock[0] += sup.BACKOFF
    s.poll()
    assert role.process.args[-2:] == ["--restart", "2"]


def test_an_actor_that_finished_with_the_learner_is_not_restarted(tmp_path, clock):
    s, role = _actor(tmp_path)
    role.process.code = 0  # actors exit 0 only once the learner has published `done`
    assert [(r.name, code) for r, code in s.poll()] == [("actor-0", 0)]
    clock[0] += sup.MAX_BACKOFF
    assert s.poll() == [] and s.restarts == {}


def test_the_restart_budget_is_per_window_not_per_run(tmp_path, clock):
    s, role = _actor(tmp_path, max_restarts=1)
    role.process.code = -9
    s.poll()
    clock[0] += sup.MAX_BACKOFF
    s.poll()
    assert s.restarts == {"actor-0": 1}

    clock[0] += sup.RESTART_WINDOW  # the first restart has left the window
    role.process.code = -9
    s.poll()
    clock[0] += sup.MAX_BACKOFF
    assert s.poll() == [] and s.restarts == {"actor-0": 2}

    role.process.code = -9  # a second death within the window: out of budget
    ended = s.poll()
    assert [(r.name, code) for r, code in ended] == [("actor-0", -9)]
