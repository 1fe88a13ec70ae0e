import re

from tfrl.cli.main import main
from tfrl.training.run import RunConfig, train_run


def test_evaluate_uses_the_env_the_run_trained_on(tmp_path, capsys):
    run = RunConfig(
        env_id="tfrl/MultiArmedBandit-v0",
        agent="softmax",
        total_env_steps=1024,
        eval_every=None,
        env_kwargs={"num_arms": 3, "means": [0.0, 0.0, 5.0], "reward_std": 0.1},
    )
    train_run(run, output_dir=str(tmp_path / "run"), verbose=0)
    assert main(["evaluate", str(tmp_path / "run"), "--episodes", "10"]) == 0
    mean = float(re.search(r"mean return (-?[\d.]+)", capsys.readouterr().out).group(1))
    assert mean > 4.5  # arm 2 pays 5; the id's default 10-arm bandit pays at most ~1.5
