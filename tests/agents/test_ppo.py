import numpy as np
import pytest
import tensorflow as tf
from tf_agents.trajectories import time_step as ts

import tfrl
from tests.agents.agent_specs import F, L, M, box_specs, discrete_specs
from tfrl.agents.ppo import PPO, PPOConfig
from tfrl.errors import ConfigError, IncompatibleAgentError


def advantages_by_agent(discount_at_end):
    config = PPOConfig(gamma=0.5, gae_lambda=0.5)
    agent = PPO(*discrete_specs(), config)
    # One row of four transitions: the episode ends at item 1 (truncated when
    # its discount is 1, terminated when 0), item 2 is the boundary, a new
    # episode runs on. V ≡ 1 for all five observations.
    next_time_steps = ts.TimeStep(
        step_type=tf.constant([[M, L, F, M]]),
        reward=tf.constant([[1.0, 2.0, 0.0, 4.0]]),
        discount=tf.constant([[1.0, discount_at_end, 1.0, 1.0]]),
        observation=tf.zeros((1, 4, 4)),
    )
    returns, advantages = agent.compute_return_and_advantage(next_time_steps, tf.ones((1, 5)))
    return returns.numpy()[0], advantages.numpy()[0]


def test_gae_bootstraps_a_truncated_episode_from_its_last_value():
    # δ = r + γ d V' − V: [0.5, 1.5, (boundary), 3.5]; A1 = δ1 (episode ends),
    # A0 = δ0 + γλ A1 = 0.5 + 0.25 · 1.5; the boundary gets 0.
    returns, advantages = advantages_by_agent(discount_at_end=1.0)
    np.testing.assert_allclose(advantages, [0.875, 1.5, 0.0, 3.5])
    np.testing.assert_allclose(returns, [1.875, 2.5, 0.0, 4.5])


def test_gae_does_not_bootstrap_a_terminated_episode():
    returns, advantages = advantages_by_agent(discount_at_end=0.0)
    np.testing.assert_allclose(advantages, [0.75, 1.0, 0.0, 3.5])
    np.testing.assert_allclose(returns, [1.75, 2.0, 0.0, 4.5])


def returns_after_reward_normalisation(scale, normalize_rewards=True):
    config = PPOConfig(gamma=0.5, gae_lambda=0.5, normalize_rewards=normalize_rewards)
    agent = PPO(*discrete_specs(), config)
    rewards = scale * tf.constant([[1.0, -2.0, 3.0, 4.0]])
    agent.update_reward_normalizer(rewards)  # what each train call does first
    next_time_steps = ts.TimeStep(
        step_type=tf.constant([[M, M, M, M]]),
        reward=rewards,
        discount=tf.ones((1, 4)),
        observation=tf.zeros((1, 4, 4)),
    )
    returns, _ = agent.compute_return_and_advantage(next_time_steps, tf.zeros((1, 5)))
    return returns.numpy()[0]


def test_normalize_rewards_makes_value_targets_independent_of_the_reward_scale():
    # Pendulum-v1 pays −16…0 per step; normalised, the targets are what unit-scale rewards give.
    np.testing.assert_allclose(
        returns_after_reward_normalisation(100.0),
        returns_after_reward_normalisation(1.0),
        rtol=1e-3,
    )
    raw = returns_after_reward_normalisation(100.0, normalize_rewards=False)
    np.testing.assert_allclose(raw, 100.0 * returns_after_reward_normalisation(1.0, False))
    assert np.max(np.abs(returns_after_reward_normalisation(100.0))) < 0.1 * np.max(np.abs(raw))


def test_policy_is_greedy():
    env = tfrl.envs.make("CartPole-v1", num_envs=2, seed=0)
    agent = tfrl.agents.make("ppo", env)
    assert "Greedy" in type(agent.policy).__name__
    assert "Greedy" not in type(agent.collect_policy).__name__


def test_box_actions_train_one_iteration():
    env = tfrl.envs.make("Pendulum-v1", num_envs=2, seed=0)
    agent = tfrl.agents.make("ppo", env, collect_env_steps=32, num_epochs=2)
    tfrl.Trainer(agent, env, seed=0).fit(32, eval_every=None, verbose=0)
    assert all(np.all(np.isfinite(v.numpy())) for v in agent.trainable_variables)
    assert int(agent.train_step_counter.numpy()) == 2
    action = agent.policy.action(env.reset()).action.numpy()
    assert action.shape == (2, 1) and np.all(np.abs(action) <= 2.0)


def test_keras_models_are_accepted_and_checked():
    time_step_spec, action_spec = discrete_specs(num_actions=2)
    actor = tf.keras.Sequential([tf.keras.layers.Dense(16, "tanh"), tf.keras.layers.Dense(2)])
    value = tf.keras.Sequential([tf.keras.layers.Dense(16, "tanh"), tf.keras.layers.Dense(1)])
    agent = PPO(time_step_spec, action_spec, actor_network=actor, value_network=value)
    assert agent.collect_policy.action_spec == action_spec
    with pytest.raises(IncompatibleAgentError, match=r"actor_network outputs shape \(3,\)"):
        PPO(time_step_spec, action_spec, actor_network=tf.keras.layers.Dense(3))
    box_step_spec, box_action_spec = box_specs()
    with pytest.raises(IncompatibleAgentError, match=r"needs \(1,\)"):
        PPO(box_step_spec, box_action_spec, actor_network=tf.keras.layers.Dense(2))


def test_bad_hyper_parameters_are_named():
    with pytest.raises(ConfigError, match=r"clip_ratio=1\.5"):
        PPOConfig(clip_ratio=1.5)
    with pytest.raises(ConfigError, match="num_epochs=0"):
        PPOConfig(num_epochs=0)


@pytest.mark.slow
def test_ppo_learns_cartpole():
    # A random policy scores ~22; the greedy policy must reach the 500 cap.
    tf.keras.utils.set_random_seed(1)
    env = tfrl.envs.make("CartPole-v1", num_envs=8, seed=1)
    agent = tfrl.agents.make("ppo", env)
    trainer = tfrl.Trainer(agent, env, seed=1)
    history = trainer.fit(51_200, eval_every=10_000, eval_episodes=10, verbose=0)
    assert max(history.eval_returns) >= 475, history.eval_returns
    assert np.mean(history.eval_returns[-3:]) >= 400, history.eval_returns


def test_normalised_valid_advantages_have_mean_0_and_std_1(monkeypatch):
    from tf_agents.agents.ppo import ppo_agent

    env = tfrl.envs.make("CartPole-v1", num_envs=2, seed=0)
    agent = tfrl.agents.make("ppo", env, hidden_units=[8], collect_env_steps=128, num_epochs=1)
    seen = {}
    parent_get_loss = ppo_agent.PPOAgent.get_loss

    def spy(self, time_steps, actions, act_log_probs, returns, advantages, *args, **kwargs):
        seen["advantages"], seen["weights"] = advantages.numpy(), args[1].numpy()
        return parent_get_loss(
            self, time_steps, actions, act_log_probs, returns, advantages, *args, **kwargs
        )

    monkeypatch.setattr(ppo_agent.PPOAgent, "get_loss", spy)
    trainer = tfrl.Trainer(agent, env, seed=0)
    experience = None
    time_step = env.reset()
    policy_state = agent.collect_policy.get_initial_state(2)
    trainer._collect(time_step, policy_state)  # random-ish CartPole: episodes end inside
    experience = trainer.replay_buffer.gather_all()
    agent.train(experience)
    valid = seen["weights"] > 0
    assert 0 < valid.sum() < valid.size  # boundaries and the unbootstrapped tail are masked
    advantages = seen["advantages"][valid]
    assert abs(advantages.mean()) < 1e-5
    assert abs(advantages.std() - 1.0) < 1e-4
