"""The `tfrl` command through its real entry point, with tiny budgets."""

import csv
import json
import signal
import subprocess
import time

import pytest

from tests.cli.commands import ROOT, TFRL

TINY = ["--hparam", "hidden_units=[16]", "--hparam", "learning_starts=64", "--quiet"]


def test_help_teaches_and_is_quiet(tfrl_cli):
    result = tfrl_cli("--help")
    assert result.returncode == 0
    for command in ("train", "evaluate", "export", "serve", "envs", "--resume"):
        assert command in result.stdout
    assert result.stderr == ""


def test_envs_lists_tfrl_and_gymnasium_ids_without_tensorflow_noise(tfrl_cli):
    result = tfrl_cli("envs")
    assert result.returncode == 0
    assert "tfrl/MultiArmedBandit-v0" in result.stdout and "CartPole-v1" in result.stdout
    for noise in ("cuda", "oneDNN", "TensorRT", "Gym has been unmaintained"):
        assert noise not in result.stderr + result.stdout


def test_misspelled_agent_gets_a_suggestion_not_a_traceback(tfrl_cli, tmp_path):
    result = tfrl_cli(
        "train", "CartPole-v1", "--agent", "dqm", "--steps", "64", "--output", tmp_path / "r"
    )
    assert result.returncode == 2
    assert "Did you mean 'dqn'?" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_hparam_is_named(tfrl_cli):
    result = tfrl_cli("train", "CartPole-v1", "--hparam", "learnig_rate=0.1", "--steps", "64")
    assert result.returncode == 2
    assert "'learnig_rate'" in result.stderr and "learning_rate" in result.stderr


def test_train_evaluate_export_check_round_trip(tfrl_cli, tmp_path):
    run_dir, base = tmp_path / "run", tmp_path / "models"
    result = tfrl_cli(
        "train",
        "CartPole-v1",
        "--steps",
        "512",
        "--eval-every",
        "256",
        "--eval-episodes",
        "2",
        "--output",
        run_dir,
        *TINY,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((run_dir / "run.json").read_text())["total_env_steps"] == 512
    rows = list(csv.DictReader((run_dir / "log.csv").read_text().splitlines()))
    assert [int(r["env_steps"]) for r in rows] == [256, 512]
    assert (run_dir / "checkpoints" / "ckpt-512").is_dir()

    result = tfrl_cli("evaluate", run_dir, "--episodes", "3", "--checkpoint", "512")
    assert result.returncode == 0, result.stderr
    assert "mean return" in result.stdout and "env step 512" in result.stdout

    result = tfrl_cli("export", run_dir, "--name", "cp", "--base", base)
    assert result.returncode == 0, result.stderr
    assert "absl" not in result.stderr, result.stderr  # SavedModel's INFO lines stay hidden
    assert (base / "cp" / "1" / "saved_model.pb").is_file()

    result = tfrl_cli("export", "--check", base / "cp" / "1")
    assert result.returncode == 0, result.stdout + result.stderr

    result = tfrl_cli("evaluate", base / "cp" / "1", "--env", "CartPole-v1", "--episodes", "3")
    assert result.returncode == 0, result.stderr


def test_train_from_config_file(tfrl_cli, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(
        "env_id: CartPole-v1\nagent: ddqn\ntotal_env_steps: 256\nhparams: {hidden_units: [8]}\n"
    )
    result = tfrl_cli("train", "--config", config, "--output", tmp_path / "r", "--quiet")
    assert result.returncode == 0, result.stderr
    saved = json.loads((tmp_path / "r" / "run.json").read_text())
    assert saved["agent"] == "ddqn" and saved["hparams"] == {"hidden_units": [8]}


def test_killed_run_resumes_from_its_last_checkpoint(tfrl_cli, tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [
            TFRL,
            "train",
            "CartPole-v1",
            "--steps",
            "1000000",
            "--checkpoint-every",
            "512",
            "--eval-every",
            "100000",
            "--output",
            str(run_dir),
            *TINY,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    latest = run_dir / "checkpoints" / "latest"
    deadline = time.monotonic() + 180
    try:
        while not latest.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert latest.exists(), "no checkpoint written within 180 s"
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    saved_step = int(latest.read_text().strip().split("-")[1])
    assert saved_step >= 512

    # The killed run cannot be restarted from scratch by accident...
    result = tfrl_cli("train", "CartPole-v1", "--steps", "512", "--output", run_dir, *TINY)
    assert result.returncode == 2 and "--resume" in result.stderr
    # ...and --resume continues from the saved step.
    result = tfrl_cli("train", "--resume", "--output", run_dir, "--steps", saved_step + 512)
    assert result.returncode == 0, result.stderr
    assert f"ckpt-{saved_step} at {saved_step:,} env steps" in result.stdout  # says where
    assert latest.read_text().strip() == f"ckpt-{saved_step + 512}"
    steps = [
        int(r["env_steps"]) for r in csv.DictReader((run_dir / "log.csv").read_text().splitlines())
    ]
    # One row per iteration: the killed run's rows after its checkpoint were dropped.
    assert steps == list(range(256, saved_step + 513, 256))


def test_resume_without_a_run_is_a_clear_error(tfrl_cli, tmp_path):
    result = tfrl_cli("train", "--resume", "--output", tmp_path / "nothing")
    assert result.returncode == 2
    assert "not a tfrl run directory" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["evaluate", "/nonexistent"], "neither a run directory"),
        (["export", "/nonexistent"], "not a tfrl run directory"),
    ],
)
def test_bad_paths_are_explained(tfrl_cli, args, message):
    result = tfrl_cli(*args)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr
