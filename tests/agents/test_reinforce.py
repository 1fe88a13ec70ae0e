import math

import numpy as np
import pytest
import tensorflow as tf

import tfrl
from tests.agents.agent_specs import SEGMENT, box_specs, discrete_specs, segment
from tfrl.agents.reinforce import REINFORCE, REINFORCEConfig
from tfrl.errors import ConfigError, IncompatibleAgentError

# Valid steps of SEGMENT and their returns with gamma 0.5 (see agent_specs).
VALID_RETURNS = [2.0, 2.0, 1.75, 1.5, 1.0, 1.9375, 1.875, 1.75, 1.5, 1.0]


def zero_actor(num_actions=2):
    return tf.keras.Sequential([tf.keras.layers.Dense(num_actions, kernel_initializer="zeros")])


def zero_value():
    return tf.keras.Sequential([tf.keras.layers.Dense(1, kernel_initializer="zeros")])


def weights(agent):
    return [v.numpy().copy() for v in agent.trainable_variables if v.dtype.is_floating]


def make_agent(**config):
    time_step_spec, action_spec = discrete_specs()
    config = REINFORCEConfig(gamma=0.5, normalize_advantages=False, **config)
    return REINFORCE(
        time_step_spec,
        action_spec,
        config,
        actor_network=zero_actor(),
        value_network=zero_value(),
        optimizer=tf.keras.optimizers.SGD(0.1),
    )


def test_loss_matches_hand_computation_on_masked_segment():
    agent = make_agent(value_loss_coef=0.2)
    experience = segment(**SEGMENT)
    info = agent.train(experience)
    # Uniform policy over 2 actions and V = 0: the policy loss is
    # -mean(log ½ · G) and the value loss 0.2 · mean(G²) over the 10 valid steps.
    returns = np.array(VALID_RETURNS)
    expected_policy = math.log(2) * returns.mean()
    expected_value = 0.2 * (returns**2).mean()
    assert info.extra.policy_gradient_loss.numpy() == pytest.approx(expected_policy, rel=1e-5)
    assert info.extra.value_estimation_loss.numpy() == pytest.approx(expected_value, rel=1e-5)
    assert info.loss.numpy() == pytest.approx(expected_policy + expected_value, rel=1e-5)
    assert int(agent.train_step_counter.numpy()) == 1


def test_without_baseline_the_loss_is_the_plain_policy_gradient():
    agent = make_agent(value_baseline=False)
    info = agent.train(segment(**SEGMENT))
    assert info.extra.value_estimation_loss.numpy() == 0.0
    assert info.loss.numpy() == pytest.approx(math.log(2) * np.mean(VALID_RETURNS), rel=1e-5)


def test_update_with_no_complete_episode_changes_nothing():
    agent = make_agent()
    before = weights(agent)
    experience = segment(
        step_type=[[1, 1, 1]],
        next_step_type=[[1, 1, 1]],
        reward=[[1, 1, 1]],
        discount=[[1, 1, 1]],
        action=[[0, 1, 0]],
    )
    info = agent.train(experience)
    assert info.loss.numpy() == 0.0
    for b, a in zip(before, weights(agent)):
        np.testing.assert_array_equal(b, a)


def test_masked_steps_get_no_gradient():
    # Only row 0's first two steps count; changing the rewards of the rest of
    # the row (an unfinished episode) must not change the update.
    rewards = [list(r) for r in SEGMENT["reward"]]
    updates = []
    for tail_reward in (5.0, 500.0):
        rewards[0][4] = tail_reward
        agent = make_agent()
        agent.train(segment(**{**SEGMENT, "reward": rewards}))
        updates.append(weights(agent))
    for a, b in zip(*updates):
        np.testing.assert_array_equal(a, b)


def test_policy_is_greedy_and_collect_policy_samples():
    env = tfrl.envs.make("CartPole-v1", num_envs=2, seed=0)
    agent = tfrl.agents.make("reinforce", env)
    assert "Greedy" in type(agent.policy).__name__
    assert "Greedy" not in type(agent.collect_policy).__name__
    time_step = env.reset()
    first = agent.policy.action(time_step).action.numpy()
    for _ in range(3):
        np.testing.assert_array_equal(agent.policy.action(time_step).action.numpy(), first)


def test_box_actions_are_supported():
    time_step_spec, action_spec = box_specs()
    agent = REINFORCE(time_step_spec, action_spec)
    assert agent.collect_policy.action_spec == action_spec


def test_keras_models_of_the_wrong_shape_are_rejected():
    time_step_spec, action_spec = discrete_specs(num_actions=3)
    with pytest.raises(IncompatibleAgentError, match=r"outputs shape \(2,\).*Dense\(3\)"):
        REINFORCE(time_step_spec, action_spec, actor_network=zero_actor(2))
    with pytest.raises(IncompatibleAgentError, match=r"value_network outputs shape \(2,\)"):
        REINFORCE(time_step_spec, action_spec, value_network=zero_actor(2))


def test_bad_hyper_parameters_are_named():
    with pytest.raises(ConfigError, match="value_loss_coef=-1"):
        REINFORCEConfig(value_loss_coef=-1)
    env = tfrl.envs.make("CartPole-v1")
    with pytest.raises(KeyError, match="Did you mean 'value_loss_coef'"):
        tfrl.agents.make("reinforce", env, value_los_coef=0.5)


@pytest.mark.slow
def test_reinforce_learns_cartpole():
    # A random policy scores ~22; broken masking or signs stay far below.
    tfrl.set_seed(0)
    env = tfrl.envs.make("CartPole-v1", num_envs=4, seed=0)
    # 4 envs x 512 steps: each env's part of a segment holds a whole 500-step episode.
    agent = tfrl.agents.make("reinforce", env, collect_env_steps=2_048)
    trainer = tfrl.Trainer(agent, env, seed=0)
    history = trainer.fit(100_000, eval_every=10_000, eval_episodes=10, verbose=0)
    assert max(history.eval_returns) >= 450, history.eval_returns
    assert np.mean(history.eval_returns[-3:]) >= 300, history.eval_returns
