"""Checkpoints: atomic, complete (agent, optimizer, replay, counters), resumable."""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

import tfrl
from tfrl.errors import CheckpointError


def _trainer(seed=0):
    env = tfrl.envs.make("CartPole-v1", num_envs=4, seed=seed)
    agent = tfrl.agents.make(
        "dqn", env, hidden_units=(16,), collect_env_steps=64, train_steps=4, learning_starts=64
    )
    return tfrl.Trainer(agent, env, seed=seed)


def _weights(agent):
    return [v.numpy().copy() for v in agent._q_network.variables]


def test_resume_restores_weights_optimizer_replay_and_counters(tmp_path):
    ckpt = str(tmp_path / "ckpt")
    first = _trainer()
    first.fit(256, eval_every=None, callbacks=[tfrl.callbacks.Checkpoint(ckpt, 128)], verbose=0)
    saved_weights = _weights(first.agent)
    saved_opt = [v.numpy().copy() for v in first.agent._optimizer.variables()]
    assert (tmp_path / "ckpt" / "latest").read_text() == "ckpt-256"

    second = _trainer(seed=1)  # fresh weights
    assert not all(np.array_equal(a, b) for a, b in zip(saved_weights, _weights(second.agent)))
    second.fit(
        256, eval_every=None, callbacks=[tfrl.callbacks.Checkpoint(ckpt)], resume=True, verbose=0
    )
    assert second.env_steps == 256  # nothing left to do: restored at the target
    for a, b in zip(saved_weights, _weights(second.agent)):
        np.testing.assert_array_equal(a, b)
    # Keras creates Adam's slots on first use; the checkpoint fills them in as they appear.
    second.agent._optimizer.build(second.agent._q_network.trainable_variables)
    restored_opt = [v.numpy() for v in second.agent._optimizer.variables()]
    assert len(restored_opt) == len(saved_opt)
    for a, b in zip(saved_opt, restored_opt):
        np.testing.assert_array_equal(a, b)
    assert int(second.agent.train_step_counter) == int(first.agent.train_step_counter)
    assert int(second.replay_buffer.num_frames()) == int(first.replay_buffer.num_frames())

    second.fit(
        384, eval_every=None, callbacks=[tfrl.callbacks.Checkpoint(ckpt)], resume=True, verbose=0
    )
    assert second.env_steps == 384
    assert second.history.history["env_steps"][-3:] == [256, 320, 384]


def test_resume_with_nothing_to_resume_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="No checkpoint to resume from"):
        _trainer().fit(
            64, callbacks=[tfrl.callbacks.Checkpoint(str(tmp_path))], resume=True, verbose=0
        )


def test_fresh_run_refuses_to_overwrite_checkpoints(tmp_path):
    ckpt = str(tmp_path)
    _trainer().fit(64, eval_every=None, callbacks=[tfrl.callbacks.Checkpoint(ckpt)], verbose=0)
    before = sorted(os.listdir(ckpt))
    with pytest.raises(CheckpointError, match="already holds checkpoints"):
        _trainer().fit(64, callbacks=[tfrl.callbacks.Checkpoint(ckpt)], verbose=0)
    assert sorted(os.listdir(ckpt)) == before


def test_corrupt_checkpoint_is_a_clear_error_and_overwrites_nothing(tmp_path):
    ckpt = str(tmp_path)
    _trainer().fit(64, eval_every=None, callbacks=[tfrl.callbacks.Checkpoint(ckpt)], verbose=0)
    data = next(f for f in os.listdir(os.path.join(ckpt, "ckpt-64")) if ".data-" in f)
    path = os.path.join(ckpt, "ckpt-64", data)
    with open(path, "r+b") as f:
        f.truncate(100)
    snapshot = {
        n: os.path.getsize(os.path.join(ckpt, "ckpt-64", n))
        for n in os.listdir(os.path.join(ckpt, "ckpt-64"))
    }
    with pytest.raises(CheckpointError, match="ckpt-64 is damaged") as error:
        _trainer().fit(128, callbacks=[tfrl.callbacks.Checkpoint(ckpt)], resume=True, verbose=0)
    _assert_one_readable_sentence(str(error.value))
    assert "Delete that checkpoint" in str(error.value)
    assert sorted(os.listdir(ckpt)) == ["ckpt-64", "latest"]
    assert snapshot == {n: os.path.getsize(os.path.join(ckpt, "ckpt-64", n)) for n in snapshot}


def test_checkpoint_of_a_different_agent_is_refused(tmp_path):
    ckpt = str(tmp_path)
    _trainer().fit(64, eval_every=None, callbacks=[tfrl.callbacks.Checkpoint(ckpt)], verbose=0)
    env = tfrl.envs.make("CartPole-v1", num_envs=4, seed=0)
    other = tfrl.agents.make("dqn", env, hidden_units=(8, 8), collect_env_steps=64)
    with pytest.raises(CheckpointError, match="written for a different agent") as error:
        tfrl.Trainer(other, env).fit(
            128, callbacks=[tfrl.callbacks.Checkpoint(ckpt)], resume=True, verbose=0
        )
    _assert_one_readable_sentence(str(error.value))


def _assert_one_readable_sentence(message):
    """One line that names the file and the fix, without the arrays TensorFlow prints."""
    assert "\n" not in message and len(message) < 400, message
    assert "ckpt-64" in message and "array" not in message and "[[" not in message, message
    assert "AssertionError" not in message and "Found" not in message, message


def test_failed_save_leaves_previous_checkpoint(tmp_path, monkeypatch):
    ckpt = str(tmp_path)
    trainer = _trainer()
    callback = tfrl.callbacks.Checkpoint(ckpt, every_env_steps=64)
    trainer.fit(64, eval_every=None, callbacks=[callback], verbose=0)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(callback.manager._checkpoint, "write", boom)
    with pytest.raises(OSError, match="disk full"):
        callback.manager.save(128, trainer.state())
    assert sorted(os.listdir(ckpt)) == ["ckpt-64", "latest"]
    assert (tmp_path / "latest").read_text() == "ckpt-64"


@pytest.mark.parametrize("bad", [0, -1])
def test_max_to_keep_must_keep_something(tmp_path, bad):
    from tfrl.errors import ConfigError

    with pytest.raises(ConfigError, match="max_to_keep"):
        tfrl.callbacks.Checkpoint(str(tmp_path), max_to_keep=bad)


def test_best_evaluated_checkpoint_outlives_max_to_keep_and_restore_best(tmp_path):
    ckpt = str(tmp_path)
    trainer = _trainer()
    stop = tfrl.callbacks.EarlyStopping(1e9, restore_best=True)
    callbacks = [tfrl.callbacks.Checkpoint(ckpt, every_env_steps=64, max_to_keep=1), stop]
    trainer.fit(640, eval_every=64, eval_episodes=2, callbacks=callbacks, verbose=0)
    history = trainer.history
    best_step = history.eval_steps[int(np.argmax(history.eval_returns))]
    assert best_step == stop.best_step and best_step != 640, "the premise: an earlier best"

    manager = trainer.checkpoint_manager(ckpt)
    assert [os.path.basename(p) for p in manager.checkpoints()] == [f"ckpt-{best_step}", "ckpt-640"]
    path, state = manager.best()
    assert state["evaluation"]["mean"] == max(history.eval_returns)
    assert manager.select("best")[0] == path and manager.select("latest")[0].endswith("ckpt-640")
    with pytest.raises(CheckpointError, match=f"It has: {best_step}, 640"):
        manager.select(64 if best_step != 64 else 128)

    # EarlyStopping(restore_best=True) left the best evaluation's weights in the agent.
    restored = _trainer(seed=1)
    restored.checkpoint_manager(ckpt).restore(path)
    for a, b in zip(_weights(trainer.agent), _weights(restored.agent), strict=True):
        np.testing.assert_array_equal(a, b)


def test_fit_ends_with_an_evaluation_unless_the_last_iteration_evaluated():
    trainer = _trainer()
    trainer.fit(320, eval_every=256, eval_episodes=2, verbose=0)
    assert trainer.history.eval_steps == [256, 320]
    trainer.fit(512, eval_every=256, eval_episodes=2, verbose=0)
    assert trainer.history.eval_steps == [256, 320, 512]


def test_restore_best_before_checkpoint_in_the_list_still_saves_the_run_as_trained(tmp_path):
    ckpt = str(tmp_path)
    trainer = _trainer()
    final = {}

    class Snapshot(tfrl.callbacks.Callback):
        def on_train_end(self, logs=None):
            final["q"] = _weights(self.trainer.agent)

    stop = tfrl.callbacks.EarlyStopping(1e9, restore_best=True)
    # EarlyStopping first: its restore must still come after the final checkpoint.
    callbacks = [stop, tfrl.callbacks.Checkpoint(ckpt, every_env_steps=640), Snapshot()]
    trainer.fit(640, eval_every=64, eval_episodes=2, callbacks=callbacks, verbose=0)
    assert stop.best_step != 640, "the premise: an earlier best"

    manager = trainer.checkpoint_manager(ckpt)
    latest = _trainer(seed=1)
    latest.checkpoint_manager(ckpt).restore(manager.latest())
    for a, b in zip(final["q"], _weights(latest.agent), strict=True):
        np.testing.assert_array_equal(a, b)
    best = _trainer(seed=1)
    best.checkpoint_manager(ckpt).restore(manager.best()[0])
    for a, b in zip(_weights(best.agent), _weights(trainer.agent), strict=True):
        np.testing.assert_array_equal(a, b)
    # The target network goes back with the Q-network.
    target = [v.numpy() for v in trainer.agent._target_q_network.variables]
    for a, b in zip([v.numpy() for v in best.agent._target_q_network.variables], target):
        np.testing.assert_array_equal(a, b)


def test_fit_after_loading_a_best_only_checkpoint_is_refused(tmp_path):
    from tfrl.errors import ConfigError

    ckpt = str(tmp_path)
    _trainer().fit(
        128,
        eval_every=64,
        eval_episodes=2,
        callbacks=[tfrl.callbacks.Checkpoint(ckpt, every_env_steps=10_000)],
        verbose=0,
    )
    loaded = _trainer(seed=1)
    state = loaded.checkpoint_manager(ckpt).restore(os.path.join(ckpt, "ckpt-64"))
    assert state["resumable"] is False, "the premise: a best-only checkpoint"
    loaded.load_state(state)
    with pytest.raises(ConfigError, match="resume=True"):
        loaded.fit(256, eval_every=None, verbose=0)
    assert loaded.env_steps == 64, "nothing was collected"
    # A resumable checkpoint loads and trains on.
    loaded.load_state(loaded.checkpoint_manager(ckpt).restore())
    loaded.fit(192, eval_every=None, verbose=0)
    assert loaded.env_steps == 192


def test_deleting_a_damaged_latest_checkpoint_resumes_from_the_one_before(tmp_path):
    ckpt = str(tmp_path)
    callbacks = [tfrl.callbacks.Checkpoint(ckpt, every_env_steps=64)]
    _trainer().fit(128, eval_every=None, callbacks=callbacks, verbose=0)
    damaged = os.path.join(ckpt, "ckpt-128")
    data = next(f for f in os.listdir(damaged) if ".data-" in f)
    with open(os.path.join(damaged, data), "r+b") as f:
        f.truncate(100)
    resumed = _trainer()
    with pytest.raises(CheckpointError, match="Delete that checkpoint directory"):
        resumed.fit(192, callbacks=[tfrl.callbacks.Checkpoint(ckpt)], resume=True, verbose=0)
    shutil.rmtree(damaged)  # what the message advises
    resumed = _trainer()
    resumed.fit(
        192, eval_every=None, callbacks=[tfrl.callbacks.Checkpoint(ckpt)], resume=True, verbose=0
    )
    assert resumed.history.history["env_steps"] == [64, 128, 192]
    assert (tmp_path / "latest").read_text() == "ckpt-192"


def test_ending_episodes_marks_the_replay_seam():
    # A checkpoint ends the episodes in progress; the next collect starts new ones. The
    # replay must say so, or 1-step DQN would bootstrap from one episode into the next.
    from tf_agents.trajectories import StepType

    trainer = _trainer()
    trainer.fit(128, eval_every=None, verbose=0)
    current = trainer._time_step.observation.numpy()
    trainer.end_episodes()
    items = trainer.replay_buffer.gather_all()
    last = tf.nest.map_structure(lambda t: t[:, -1], items)
    assert (last.step_type.numpy() == StepType.LAST).all()
    assert (last.next_step_type.numpy() == StepType.FIRST).all()
    np.testing.assert_array_equal(last.observation.numpy(), current)  # the real next observation


def test_early_stopping_patience_survives_a_resume(tmp_path):
    ckpt = str(tmp_path / "ckpt")

    def callbacks():
        # Every evaluation hits a target this low: the third in a row stops the run.
        return [tfrl.callbacks.EarlyStopping(-1.0, patience=3), tfrl.callbacks.Checkpoint(ckpt, 64)]

    first = _trainer()
    first.fit(128, eval_every=64, eval_episodes=1, callbacks=callbacks(), verbose=0)
    assert first.history.eval_steps == [64, 128]  # two hits, then the budget ends

    second = _trainer()
    cbs = callbacks()
    second.fit(10_000, eval_every=64, eval_episodes=1, callbacks=cbs, resume=True, verbose=0)
    assert cbs[0].stopped_at == 192  # the hit count came back with the checkpoint
