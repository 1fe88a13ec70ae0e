"""One contract for every agent: make, fit, checkpoint, reload, export, same actions."""

import numpy as np
import pytest
import tensorflow as tf

import tfrl

SMALL = {"collect_env_steps": 64}
EXTRA = {
    "dqn": {"learning_starts": 0, "train_steps": 4, "hidden_units": (16,)},
    "ddqn": {"learning_starts": 0, "train_steps": 4, "hidden_units": (16,)},
    "reinforce": {"hidden_units": (16,)},
    "ppo": {"hidden_units": (16,), "num_epochs": 2},
}


def _make(name, seed):
    tf.keras.utils.set_random_seed(seed)
    env = tfrl.envs.make("CartPole-v1", num_envs=2, seed=seed)
    return tfrl.agents.make(name, env, **SMALL, **EXTRA.get(name, {})), env


# slateq needs slate observations; tests/agents/test_slateq.py runs its contract.
@pytest.mark.parametrize("name", [n for n in tfrl.agents.names() if n != "slateq"])
def test_agent_contract(name, tmp_path):
    agent, env = _make(name, seed=0)
    assert isinstance(agent, tfrl.agents.TfrlAgent)
    trainer = tfrl.Trainer(agent, env, seed=0)
    before = [v.numpy().copy() for v in agent.policy.variables()]
    trainer.fit(
        256,
        eval_every=None,
        callbacks=[tfrl.callbacks.Checkpoint(str(tmp_path / "ckpt"))],
        verbose=0,
    )
    assert int(agent.train_step_counter) > 0
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(before, agent.policy.variables()))

    observations = np.random.default_rng(0).normal(0.0, 0.5, (16, 4)).astype(np.float32)
    time_step = tf.nest.map_structure(lambda t: tf.repeat(t[:1], 16, axis=0), env.reset())
    time_step = time_step._replace(observation=tf.constant(observations))
    expected = agent.policy.action(time_step).action.numpy()

    # A fresh agent restored from the checkpoint acts the same.
    restored, restored_env = _make(name, seed=1)
    tfrl.Trainer(restored, restored_env).fit(
        256, callbacks=[tfrl.callbacks.Checkpoint(str(tmp_path / "ckpt"))], resume=True, verbose=0
    )
    np.testing.assert_array_equal(restored.policy.action(time_step).action.numpy(), expected)

    # So does the export, through TF Serving's default signature and TF-Agents' own.
    path = tfrl.export(agent, str(tmp_path / "saved_models" / name))
    loaded = tfrl.load(path)
    served = loaded.signatures["serving_default"](observation=tf.constant(observations))
    np.testing.assert_array_equal(served["action"].numpy(), expected)
    assert {"q_values", "logits"} & set(served)
    np.testing.assert_array_equal(loaded.action(time_step, ()).action.numpy(), expected)
    tfrl.export.check_export(path)
