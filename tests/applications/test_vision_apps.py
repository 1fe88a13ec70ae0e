"""The image-classification and training-control applications through their real entry points."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(script, *args):
    return subprocess.run(
        [sys.executable, f"applications/{script}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_image_classification_app_compares_plots_and_exports(tmp_path):
    plot = tmp_path / "confusion.png"
    result = run(
        "image_classification.py",
        "--total-env-steps", "600",
        "--num-envs", "8",
        "--baseline-epochs", "1",
        "--export-base", str(tmp_path),
        "--plot", str(plot),
        "--verbose", "0",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "DQN (DQNimb reward)" in result.stdout
    assert "supervised CNN, class weights" in result.stdout
    table = [
        line
        for line in result.stdout.splitlines()
        if line.startswith(("method ", "DQN (DQNimb reward)", "supervised CNN, class weights"))
    ]
    assert len(table) == 3 and len({len(line) for line in table}) == 1, table  # aligned
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert os.path.isfile(tmp_path / "image_classifier" / "1" / "saved_model.pb")
    assert "cuda" not in result.stderr.lower()
    assert "absl" not in result.stderr, result.stderr


@pytest.mark.slow
def test_training_control_app_trains_exports_and_compares(tmp_path):
    plot = tmp_path / "curves.png"
    result = run(
        "training_control.py",
        "--train-tasks", "linear:digits",
        "--eval-task", "linear:breast_cancer",
        "--epochs", "3",
        "--total-env-steps", "20",
        "--grid", "0.1",
        "--seeds", "0",
        "--export-base", str(tmp_path),
        "--plot", str(plot),
        "--verbose", "0",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for method in ("RLController", "fixed lr=0.1", "ReduceLROnPlateau", "cosine decay"):
        assert method in result.stdout
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert os.path.isfile(tmp_path / "lr_controller" / "1" / "saved_model.pb")


def test_training_control_app_refuses_an_eval_data_set_it_trains_on(capsys):
    sys.path.insert(0, ROOT)
    from applications import training_control as app

    assert app.parse_args([]).eval_task == "mlp2:breast_cancer"  # the default is held out
    with pytest.raises(SystemExit) as exit_info:
        app.parse_args(
            ["--train-tasks", "linear:digits,mlp:synthetic", "--eval-task", "mlp2:synthetic"]
        )
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--eval-task mlp2:synthetic is not held out" in err
    assert "its data set 'synthetic' is in --train-tasks (mlp:synthetic)" in err
