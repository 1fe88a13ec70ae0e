"""The image-classification and training-control applications through their real entry points."""

import os
import subprocess
import sys
import types

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
    from tfrl.export.exporter import read_export_info

    info = read_export_info(str(tmp_path / "lr_controller" / "1"))
    assert info["metadata"] == {"lr_range": [10.0, 2.0]}  # RLController(path) reads it back


def test_training_control_app_refuses_an_eval_data_set_it_trains_on(capsys):
    sys.path.insert(0, ROOT)
    from applications import training_control as app

    assert app.parse_args([]).eval_task == "dropout:synthetic8"  # the default is held out
    with pytest.raises(SystemExit) as exit_info:
        app.parse_args(
            ["--train-tasks", "linear:digits,mlp:synthetic", "--eval-task", "mlp2:synthetic"]
        )
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--eval-task mlp2:synthetic is not held out" in err
    assert "its data set 'synthetic' is in --train-tasks (mlp:synthetic)" in err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--lr-range", "10,x"], "--lr-range '10,x' must read 'r' or 'down,up'"),
        (["--lr-range", "0.5"], "lr_range=(0.5, 0.5) must be a number ≥ 1 or a pair"),
        (["--candidates", "0"], "--candidates 0 must be at least 1"),
        (["--grid", "0.1,abc"], "--grid '0.1,abc' must be comma-separated rates in (0, 1]"),
        (["--seeds", "x"], "--seeds 'x' must be comma-separated whole numbers"),
        (["--seeds", "0,-1"], "--seeds '0,-1' must be comma-separated whole numbers ≥ 0"),
        (["--gamma", "5"], "--gamma 5.0 must be a discount in [0, 1]"),
        (["--replay-ratio", "0"], "--replay-ratio 0 must be at least 1"),
        (["--select-seeds", ""], "--select-seeds '' must be comma-separated whole numbers"),
        (["--epochs", "1"], "--epochs 1 must be at least 2"),
        (["--total-env-steps", "0"], "--total-env-steps 0 must be at least 1"),
        (["--train-tasks", "mlp:bogus"], "Unknown dataset"),
        (
            ["--candidates", "2", "--select-task", "mlp2:digits"],
            "--select-task mlp2:digits must use a data set that is neither in --train-tasks",
        ),
        (
            ["--candidates", "2", "--select-task", "mlp:synthetic8"],
            "--select-task mlp:synthetic8 must use a data set that is neither",
        ),
    ],
)
def test_training_control_app_refuses_bad_flags_before_training(flags, message, capsys):
    sys.path.insert(0, ROOT)
    from applications import training_control as app

    with pytest.raises(SystemExit) as exit_info:
        app.parse_args(flags)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_training_control_app_keeps_the_candidate_best_on_the_selection_task(monkeypatch):
    sys.path.insert(0, ROOT)
    from applications import training_control as app

    trained, judged = [], []

    def train(args):
        trained.append(args.seed)
        return types.SimpleNamespace(policy=f"policy {args.seed}"), 1.0

    def evaluate(args, controller, methods):
        judged.append((args.eval_task, args.seeds, controller, methods))
        final = {"policy 3": 0.5, "policy 4": 0.9, "policy 5": 0.7}[controller]
        return {"RLController": [{"val_accuracy": [0.1, final]}, {"val_accuracy": [0.2, final]}]}

    monkeypatch.setattr(app, "train_controller", train)
    monkeypatch.setattr(app, "evaluate_methods", evaluate)
    args = app.Args(candidates=3, seed=1, select_task="mlp2:synthetic6", select_seeds="0,1")
    kept, candidates = app.select_controller(args)
    assert trained == [3, 4, 5]  # seed·K … seed·K + K − 1
    assert [c["score"] for c in candidates] == [0.5, 0.9, 0.7]  # mean final accuracy
    assert kept.policy == "policy 4"  # the best, not the first or the last
    # Judged in fit on the selection task only, never on the held-out one.
    assert {(task, seeds) for task, seeds, _, _ in judged} == {("mlp2:synthetic6", "0,1")}
    assert all(methods == ["RLController"] for *_, methods in judged)
