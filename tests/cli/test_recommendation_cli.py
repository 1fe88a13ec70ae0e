"""`tfrl train` on the recommendation env with the slateq agent."""

import os


def test_train_slateq_on_recommendation_and_export(tfrl_cli, tmp_path):
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
        "256",
        "--eval-episodes",
        "4",
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
        "--export",
        "recommender",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "Last evaluation at 256 env steps" in result.stdout
    assert os.path.isfile(tmp_path / "saved_models" / "recommender" / "1" / "saved_model.pb")
