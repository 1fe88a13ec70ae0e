import pytest

from tfrl.cli.train import parse_hparams
from tfrl.errors import ConfigError
from tfrl.training.run import RunConfig


def test_hparams_read_numbers_lists_and_exponents():
    parsed = parse_hparams(["learning_rate=3e-4", "hidden_units=[64, 64]", "loss=mse", "n_step=3"])
    assert parsed == {"learning_rate": 3e-4, "hidden_units": [64, 64], "loss": "mse", "n_step": 3}


def test_hparam_without_equals_is_explained():
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_hparams(["learning_rate"])


def test_config_file_reads_exponent_floats(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("agent: ppo\nhparams: {learning_rate: 3e-4}\n")
    assert RunConfig.from_file(str(path)).hparams == {"learning_rate": 3e-4}


def test_resume_refuses_flags_that_would_change_the_run(tmp_path):
    from tfrl.cli.main import build_parser
    from tfrl.cli.train import _run_config

    args = build_parser().parse_args(
        ["train", "--resume", "--output", str(tmp_path), "--agent", "ppo", "--hparam", "gamma=0.9"]
    )
    with pytest.raises(ConfigError, match=r"--agent, --hparam cannot change them"):
        _run_config(args)
