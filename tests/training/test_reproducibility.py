"""A seed reproduces a run exactly, across processes; a resumed run equals the uninterrupted one."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import tfrl
from tfrl.training.run import RunConfig, train_run
from tfrl.training.trainer import TIMING_KEYS

HPARAMS = {
    "hidden_units": [16],
    "collect_env_steps": 128,
    "train_steps": 8,
    "learning_starts": 256,
    "exploration_steps": 512,
}
FLAGS = [
    "--num-envs", "4", "--eval-every", "256", "--eval-episodes", "3",
    "--checkpoint-every", "512", "--quiet",
    *[f"--hparam={k}={json.dumps(v)}" for k, v in HPARAMS.items()],
]  # fmt: skip


def _config(steps, seed=0):
    return RunConfig(
        env_id="CartPole-v1",
        agent="dqn",
        total_env_steps=steps,
        num_envs=4,
        seed=seed,
        eval_every=256,
        eval_episodes=3,
        checkpoint_every=512,
        hparams=dict(HPARAMS),
    )


def _cli_in_fresh_process(*commands):
    """Runs `tfrl` commands, one after another, in one new Python process."""
    calls = "; ".join(f"assert main({list(map(str, c))!r}) == 0" for c in commands)
    result = subprocess.run(
        [sys.executable, "-c", f"from tfrl.cli.main import main; {calls}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def _rows(run_dir):
    with open(os.path.join(run_dir, "log.csv")) as f:
        return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in csv.DictReader(f)]


def _latest_state(run_dir):
    checkpoints = os.path.join(run_dir, "checkpoints")
    with open(os.path.join(checkpoints, "latest")) as f:
        path = os.path.join(checkpoints, f.read().strip())
    with open(os.path.join(path, "trainer_state.json")) as f:
        state = json.load(f)
    history = state["history"]
    history["history"] = {k: v for k, v in history["history"].items() if k not in TIMING_KEYS}
    del history["eval_seconds"]
    reader = tf.train.load_checkpoint(os.path.join(path, "ckpt"))
    tensors = {
        name: reader.get_tensor(name)
        for name, _ in tf.train.list_variables(os.path.join(path, "ckpt"))
        if "save_counter" not in name and "OBJECT_GRAPH" not in name
    }
    return history, tensors


def _assert_same(a, b):
    (history_a, tensors_a), (history_b, tensors_b) = a, b
    assert history_a == history_b
    assert sorted(tensors_a) == sorted(tensors_b)
    for name in tensors_a:  # weights, optimizer, replay buffer, random stream, counters
        np.testing.assert_array_equal(tensors_a[name], tensors_b[name], err_msg=name)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted run, the same seed in a fresh process, and a stopped-and-resumed run."""
    root = tmp_path_factory.mktemp("runs")
    train_run(_config(1024), output_dir=str(root / "here"), verbose=0)
    train_run(_config(1024, seed=1), output_dir=str(root / "seed1"), verbose=0)
    # Stopped at a checkpoint boundary; its second half runs in another process.
    train_run(_config(512), output_dir=str(root / "resumed"), verbose=0)
    _cli_in_fresh_process(
        ["train", "CartPole-v1", "--steps", 1024, "--seed", 0, "--output", root / "fresh", *FLAGS],
        ["train", "--resume", "--output", root / "resumed", "--steps", 1024, "--quiet"],
    )
    return root


def test_one_seed_in_two_processes_gives_the_same_history_and_weights(runs):
    here = _latest_state(runs / "here")
    assert here[0]["eval_steps"] == [256, 512, 768, 1024]
    _assert_same(here, _latest_state(runs / "fresh"))
    assert _rows(runs / "here") == _rows(runs / "fresh")


def test_different_seeds_differ(runs):
    here, other = _latest_state(runs / "here"), _latest_state(runs / "seed1")
    assert here[0]["history"]["train_return"] != other[0]["history"]["train_return"]
    name = next(n for n in here[1] if "q_network" in n and "kernel" in n and "OPTIMIZER" not in n)
    assert not np.array_equal(here[1][name], other[1][name])


def test_stopped_and_resumed_run_equals_the_uninterrupted_one(runs):
    _assert_same(_latest_state(runs / "here"), _latest_state(runs / "resumed"))
    rows = _rows(runs / "resumed")
    assert [int(r["env_steps"]) for r in rows] == list(range(128, 1025, 128))
    assert rows == _rows(runs / "here")


def _event_steps(log_dir):
    from tensorboard.compat.proto import event_pb2

    steps = []
    for name in os.listdir(log_dir):
        for record in tf.data.TFRecordDataset(os.path.join(log_dir, name)):
            event = event_pb2.Event.FromString(record.numpy())
            steps += [(v.tag, event.step) for v in event.summary.value]
    return steps


def test_resume_drops_log_rows_written_after_the_last_checkpoint(tmp_path):
    env = tfrl.envs.make("CartPole-v1", num_envs=4, seed=0)
    agent = tfrl.agents.make("dqn", env, hidden_units=(8,), collect_env_steps=64, train_steps=2)

    def callbacks():
        return [
            tfrl.callbacks.Checkpoint(str(tmp_path / "ckpt"), every_env_steps=128),
            tfrl.callbacks.CSVLogger(str(tmp_path / "log.csv"), append=True),
            tfrl.callbacks.TensorBoard(str(tmp_path / "tb")),
        ]

    tfrl.Trainer(agent, env, seed=0).fit(192, eval_every=None, callbacks=callbacks(), verbose=0)
    # As if killed after logging step 192 but before its checkpoint was written.
    tf.io.gfile.rmtree(str(tmp_path / "ckpt" / "ckpt-192"))
    (tmp_path / "ckpt" / "latest").write_text("ckpt-128")

    trainer = tfrl.Trainer(agent, env, seed=0)
    trainer.fit(256, eval_every=None, callbacks=callbacks(), resume=True, verbose=0)
    with open(tmp_path / "log.csv") as f:
        assert [int(r["env_steps"]) for r in csv.DictReader(f)] == [64, 128, 192, 256]
    steps = _event_steps(str(tmp_path / "tb"))
    assert len(steps) == len(set(steps))
    assert sorted({s for tag, s in steps if tag == "train_return"}) == [64, 128, 192, 256]
    assert trainer.history.history["env_steps"] == [64, 128, 192, 256]


def test_set_seed_turns_on_op_determinism():
    # CPU kernels this small are deterministic anyway; larger ones and GPUs are not.
    from tensorflow.python.framework import config

    tfrl.set_seed(0)
    assert config.is_op_determinism_enabled()


def test_sampled_actions_reproduce_in_one_process():
    """Policies that sample a distribution (softmax here; PPO, REINFORCE alike) draw seeded."""

    def run():
        tfrl.set_seed(3)
        env = tfrl.envs.make("CartPole-v1", num_envs=2, seed=3)
        agent = tfrl.agents.make("softmax", env, collect_env_steps=64, train_steps=2)
        trainer = tfrl.Trainer(agent, env, seed=3)
        trainer.fit(128, eval_every=64, eval_episodes=2, verbose=0)
        weights = [v.numpy() for v in agent.policy.variables()]
        return trainer.history.history["loss"], trainer.history.eval_returns, weights

    (loss_a, eval_a, weights_a), (loss_b, eval_b, weights_b) = run(), run()
    assert loss_a == loss_b and eval_a == eval_b
    for a, b in zip(weights_a, weights_b, strict=True):
        np.testing.assert_array_equal(a, b)


def test_trainer_seed_without_set_seed_first_warns_once(monkeypatch, caplog):
    from tfrl.training import seeding, trainer

    monkeypatch.setattr(seeding, "_last_seed", None)
    monkeypatch.setattr(trainer, "_warned_unseeded", False)

    def build(seed):
        env = tfrl.envs.make("CartPole-v1", num_envs=2, seed=seed)
        return tfrl.Trainer(tfrl.agents.make("dqn", env, hidden_units=(8,)), env, seed=seed)

    with caplog.at_level("WARNING", logger="tfrl.training.trainer"):
        build(3)
        build(4)
    warnings = [r.getMessage() for r in caplog.records if "tfrl.set_seed(3)" in r.getMessage()]
    assert len(warnings) == 1 and "before tfrl.envs.make" in warnings[0]
    assert len(caplog.records) == 1, "once per process"

    caplog.clear()
    monkeypatch.setattr(trainer, "_warned_unseeded", False)
    tfrl.set_seed(5)
    with caplog.at_level("WARNING", logger="tfrl.training.trainer"):
        build(5)
    assert not caplog.records
