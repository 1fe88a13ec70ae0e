import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf
from tf_agents.policies import policy_saver
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

import environments  # noqa: F401  (registers tfrl/ ids)
import tfrl
from tests.agents.agent_specs import F, L, segment
from tfrl.agents.softmax import Softmax, SoftmaxConfig
from tfrl.errors import ConfigError, IncompatibleAgentError


def bandit_specs(num_arms=3):
    observation = tensor_spec.BoundedTensorSpec((1,), tf.float32, 0.0, 1.0, "observation")
    action = tensor_spec.BoundedTensorSpec((), tf.int64, 0, num_arms - 1, "action")
    return ts.time_step_spec(observation), action


def pulls(arms, rewards):
    """One env row of one-step episodes: each pull, then its LAST→FIRST boundary."""
    n = len(arms)
    return segment(
        step_type=[[F, L] * n],
        next_step_type=[[L, F] * n],
        reward=[[x for r in rewards for x in (r, 0.0)]],
        discount=[[x for _ in arms for x in (0.0, 1.0)]],
        action=[[x for a in arms for x in (a, a)]],
        observation=np.ones((1, 2 * n, 1), np.float32),
    )


def test_update_matches_the_gradient_bandit_rule_by_hand():
    agent = Softmax(*bandit_specs(3), SoftmaxConfig(learning_rate=0.1))
    np.testing.assert_array_equal(agent.theta.numpy(), np.zeros((1, 3)))
    # π is uniform; the first R̄ is the batch's own mean, 0.5:
    # mean of 0.5·([1,0,0] − ⅓) and −0.5·([0,1,0] − ⅓) is [¼, −¼, 0]; times α.
    info = agent.train(pulls([0, 1], [1.0, 0.0]))
    np.testing.assert_allclose(agent.theta.numpy(), [[0.025, -0.025, 0.0]], atol=1e-7)
    assert info.extra.average_return.numpy() == pytest.approx(0.5)
    assert agent.average_return.numpy() == pytest.approx(0.5)
    # Second update: R̄ = 0.5 from before; H ← H + α (2 − 0.5)(1[a=2] − π).
    pi = tf.nn.softmax([0.025, -0.025, 0.0]).numpy()
    expected = np.array([0.025, -0.025, 0.0]) + 0.1 * 1.5 * (np.eye(3)[2] - pi)
    agent.train(pulls([2], [2.0]))
    np.testing.assert_allclose(agent.theta.numpy()[0], expected, rtol=1e-5)
    assert agent.average_return.numpy() == pytest.approx(1.0)  # (0.5·2 + 2) / 3


def test_exponential_baseline():
    agent = Softmax(*bandit_specs(3), SoftmaxConfig(baseline_step_size=0.5))
    agent.train(pulls([0, 1], [1.0, 0.0]))
    agent.train(pulls([2], [2.0]))
    assert agent.average_return.numpy() == pytest.approx(0.5 + 0.5 * (2.0 - 0.5))


def test_discrete_observation_makes_theta_a_table():
    observation = tensor_spec.BoundedTensorSpec((), tf.int64, 0, 4, "observation")
    action = tensor_spec.BoundedTensorSpec((), tf.int64, 0, 1, "action")
    agent = Softmax(ts.time_step_spec(observation), action)
    assert agent.theta.shape == (5, 2)


def test_box_actions_are_rejected_naming_agents_that_fit():
    env = tfrl.envs.make("Pendulum-v1")
    with pytest.raises(
        IncompatibleAgentError, match=r"'softmax' needs a discrete.*'ppo', 'reinforce'"
    ):
        tfrl.agents.make("softmax", env)


def test_bad_baseline_step_size():
    with pytest.raises(ConfigError, match="baseline_step_size=2"):
        SoftmaxConfig(baseline_step_size=2)


def test_policy_exports_and_reloads_with_same_actions(tmp_path):
    agent = Softmax(*bandit_specs(4))
    agent.theta.assign([[0.1, 0.7, -0.2, 0.3]])
    saver = policy_saver.PolicySaver(agent.policy, batch_size=None)
    saver.save(str(tmp_path / "policy"))
    loaded = tf.saved_model.load(str(tmp_path / "policy"))
    time_step = ts.restart(tf.ones((3, 1)), batch_size=3)
    expected = agent.policy.action(time_step).action.numpy()
    np.testing.assert_array_equal(expected, [1, 1, 1])
    np.testing.assert_array_equal(loaded.action(time_step).action.numpy(), expected)


def test_checkpoint_restores_theta_and_average_return(tmp_path):
    agent = Softmax(*bandit_specs(3))
    agent.train(pulls([0, 1], [1.0, 0.0]))
    path = tf.train.Checkpoint(agent=agent).save(str(tmp_path / "ckpt"))
    fresh = Softmax(*bandit_specs(3))
    tf.train.Checkpoint(agent=fresh).restore(path).assert_existing_objects_matched()
    np.testing.assert_array_equal(fresh.theta.numpy(), agent.theta.numpy())
    assert fresh.average_return.numpy() == agent.average_return.numpy() == 0.5


@pytest.mark.slow
def test_softmax_finds_the_best_arm():
    env = tfrl.envs.make("tfrl/MultiArmedBandit-v0", num_envs=8, seed=0)
    agent = tfrl.agents.make("softmax", env)
    tfrl.Trainer(agent, env, seed=0).fit(4_000, eval_every=None, verbose=0)
    bandit = gym.make("tfrl/MultiArmedBandit-v0").unwrapped
    greedy = agent.policy.action(env.reset()).action.numpy()
    np.testing.assert_array_equal(greedy, bandit.best_arm)
    probabilities = tf.nn.softmax(agent.theta[0]).numpy()
    assert probabilities[bandit.best_arm] > 0.8, probabilities  # uniform would be 0.1
    result = tfrl.evaluate(agent.policy, "tfrl/MultiArmedBandit-v0", episodes=200, seed=1)
    # Random arms earn mean(means) ≈ 0.07 here; the best arm 1.3.
    assert result.mean > bandit.means.mean() + 0.8, (result.mean, bandit.means)
