"""`tfrl train --distributed --resume --steps N --target-return R` reaches the roles.

The roles read the run's budget from `run.json`, so the launcher must rewrite
it on resume before it starts them. No process is started here: a stand-in
supervisor records what the first role would have read, then fails the launch.
"""

import json
import os

import pytest

from tfrl.distributed import launcher
from tfrl.training.run import RunConfig


class _NoRoles:
    seen: dict = {}

    def __init__(self, output_dir, say=None):
        self.output_dir, self.roles, self.started, self.restarts = output_dir, {}, [], {}

    def start(self, role):
        with open(os.path.join(self.output_dir, "run.json")) as f:
            _NoRoles.seen = json.load(f)
        raise launcher.RoleFailedError(f"{role.name} not started in this test")

    def stop(self, timeout=5.0):
        pass


def test_resume_rewrites_run_json_with_the_new_budget(tmp_path, monkeypatch):
    output = str(tmp_path / "run")
    saved = RunConfig(agent="dqn", total_env_steps=2_000, target_return=None)
    os.makedirs(os.path.join(output, "checkpoints"))
    with open(os.path.join(output, "checkpoints", "latest"), "w") as f:
        f.write("ckpt-1")
    with open(os.path.join(output, "run.json"), "w") as f:
        json.dump(saved.to_dict(), f)
    monkeypatch.setattr(launcher, "Supervisor", _NoRoles)

    resumed = RunConfig(agent="dqn", total_env_steps=9_000, target_return=300.0)
    with pytest.raises(launcher.RoleFailedError):
        launcher.launch(resumed, output_dir=output, resume=True, actors=1, verbose=0)

    assert _NoRoles.seen["total_env_steps"] == 9_000
    assert _NoRoles.seen["target_return"] == 300.0
    with open(os.path.join(output, "run.json")) as f:
        assert RunConfig.from_dict(json.load(f)) == resumed
