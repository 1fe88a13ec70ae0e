"""`tfrl train` refusals change nothing; evaluate and export use the best-evaluated checkpoint."""

import os

import numpy as np
import pytest
import tensorflow as tf

import tfrl
from tfrl.cli.main import main
from tfrl.training.run import RunConfig, load_run, train_run

TINY = {"hidden_units": [16], "collect_env_steps": 64, "train_steps": 4, "learning_starts": 64}


def _snapshot(directory):
    """Every file under `directory` with its size and modification time."""
    found = {}
    for root, _, files in os.walk(directory):
        for name in files:
            stat = os.stat(os.path.join(root, name))
            found[os.path.join(root, name)] = (stat.st_size, stat.st_mtime_ns)
    return found


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run whose best evaluation (kept in its checkpoints) is not its last."""
    path = str(tmp_path_factory.mktemp("runs") / "run")
    run = RunConfig(
        total_env_steps=640,
        num_envs=4,
        eval_every=64,
        eval_episodes=2,
        checkpoint_every=128,
        hparams=dict(TINY),
    )
    history = train_run(run, output_dir=path, verbose=0).history
    best = history.eval_steps[int(np.argmax(history.eval_returns))]
    assert best != 640, "the premise of these tests: the best evaluation is not the last"
    return path, best


def test_evaluate_and_export_use_the_best_evaluated_checkpoint(run_dir, tmp_path, capsys):
    path, best = run_dir
    assert main(["evaluate", path, "--episodes", "2"]) == 0
    out = capsys.readouterr().out
    assert (
        f"Using checkpoint ckpt-{best} " in out and "--checkpoint best: the best evaluation" in out
    )

    assert main(["export", path, "--name", "m", "--base", str(tmp_path)]) == 0
    assert f"Using checkpoint ckpt-{best} " in capsys.readouterr().out
    serve = tf.saved_model.load(str(tmp_path / "m" / "1")).signatures["serving_default"]
    (name,) = serve.structured_input_signature[1]
    observations = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    exported = serve(**{name: tf.constant(observations)})["q_values"].numpy()

    def q_values(checkpoint):
        agent = load_run(path, checkpoint=checkpoint).agent
        return agent._q_network(observations)[0].numpy()

    np.testing.assert_allclose(exported, q_values(best), rtol=1e-6)
    assert not np.allclose(exported, q_values("latest"))

    assert main(["evaluate", path, "--episodes", "2", "--checkpoint", "latest"]) == 0
    assert "Using checkpoint ckpt-640 " in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["CartPoel-v1"], "ENV_ID is not a registered environment: 'CartPoel-v1'. Did you mean"),
        (["CartPole-v1", "--agent", "dqm"], "--agent is not an agent: 'dqm'. Did you mean 'dqn'?"),
        (["CartPole-v1", "--steps", "0"], "--steps=0 must be a whole number"),
        (["CartPole-v1", "--hparam", "lr=1"], "--hparam: 'dqn' has no hyper-parameter 'lr'"),
    ],
)
def test_bad_flags_are_named_before_the_banner_and_write_nothing(tmp_path, capsys, args, message):
    assert main(["train", *args, "--output", str(tmp_path / "new"), "--quiet"]) == 2
    out, err = capsys.readouterr()
    assert message in err and "make()" not in err
    assert out == "" and not (tmp_path / "new").exists()


def test_refused_train_leaves_the_directory_as_it_was(run_dir, tmp_path, capsys):
    # Checkpoints written from Python (no run.json), as the README's level-1 example does.
    used = str(tmp_path / "used")
    env = tfrl.envs.make("CartPole-v1", num_envs=4, seed=0)
    tfrl.Trainer(tfrl.agents.make("dqn", env, **TINY), env).fit(
        64, eval_every=None, callbacks=[tfrl.callbacks.Checkpoint(used + "/checkpoints")], verbose=0
    )
    before = _snapshot(used)
    assert main(["train", "CartPole-v1", "--steps", "64", "--output", used, "--quiet"]) == 2
    assert main(["train", "--resume", "--output", used, "--quiet"]) == 2
    out, err = capsys.readouterr()
    assert "already holds checkpoints" in err and "not a tfrl run directory" in err
    assert out == "" and _snapshot(used) == before

    # A run whose latest checkpoint is damaged: resuming it changes nothing either.
    path, _ = run_dir
    latest = os.path.join(path, "checkpoints", "ckpt-640")
    data = next(n for n in os.listdir(latest) if ".data-" in n)
    with open(os.path.join(latest, data), "r+b") as f:
        content = f.read()
        f.truncate(100)
    try:
        before = _snapshot(path)
        assert main(["train", "--resume", "--output", path, "--steps", "768", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "ckpt-640 is damaged" in err and err.count("\n") == 1
        assert _snapshot(path) == before
    finally:
        with open(os.path.join(latest, data), "wb") as f:
            f.write(content)
