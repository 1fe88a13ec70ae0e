"""`tfrl train` on the recommendation env with the slateq agent."""

import os


def test_train_slateq_on_recommendation(tfrl_cli, tmp_path):
    result = tfrl_cli(
        "train",
        "tfrl/Recommendation-v0",
        "--agent",
        "slateq",
        "--steps",
        "256",
        "--num-envs",
        "8",
        "--eval-every",
        "100000",
        "--hparam",
        "hidden_units=[16]",
        "--hparam",
        "learning_starts=0",
        "--hparam",
        "train_steps=2",
        "--hparam",
        "collect_env_steps=64",
        "--quiet",
        "--output",
        tmp_path / "run",
        cwd=tmp_path,
    )
    # Export and serving of slateq are tested in tests/agents/test_slateq.py.
    assert result.returncode == 0, result.stderr
    assert "Training slateq on tfrl/Recommendation-v0 for 256 env steps" in result.stdout
    assert os.path.isfile(tmp_path / "run" / "run.json")
    assert list((tmp_path / "run" / "checkpoints").iterdir())
