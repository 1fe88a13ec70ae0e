"""The CartPole application through its real entry point, on a tiny budget."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_cartpole_application_trains_compares_and_exports(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "applications/cartpole.py",
            "--total-env-steps",
            "512",
            "--eval-episodes",
            "3",
            "--export-base",
            str(tmp_path),
            "--verbose",
            "0",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # Not solved on 512 steps: the script says so and exits 1, but still exports.
    assert result.returncode == 1, result.stderr
    assert "Random policy: mean return" in result.stdout
    assert "Not solved" in result.stdout
    assert os.path.isfile(tmp_path / "cartpole_dqn" / "1" / "saved_model.pb")
    assert "cuda" not in result.stderr.lower()
