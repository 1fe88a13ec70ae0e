"""DQN: loss maths on a tiny constant network, factory errors, Keras models."""

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory

import tfrl
from tfrl.errors import IncompatibleAgentError, UnknownNameError

OBS = tensor_spec.TensorSpec((1,), tf.float32, "observation")
ACTIONS = tensor_spec.BoundedTensorSpec((), tf.int64, 0, 1, "action")


def _agent(name, loss, **config):
    # Q(s) = [s, 2s]: every number below can be worked out by hand.
    q = tf.keras.Sequential(
        [
            tf.keras.layers.Dense(
                2,
                kernel_initializer=tf.keras.initializers.Constant([[1.0, 2.0]]),
                bias_initializer="zeros",
            )
        ]
    )
    config = tfrl.agents.agent_class(name).config_class(
        gamma=0.9, loss=loss, hidden_units=(), **config
    )
    return tfrl.agents.agent_class(name)(ts.time_step_spec(OBS), ACTIONS, config, q_network=q)


def _experience(discount_after_first_step):
    """Two rows of s=1 -(a=0, r=1)-> s'=2; row 2 ends with the given discount."""
    mid = ts.StepType.MID
    return trajectory.Trajectory(
        step_type=tf.constant([[mid, mid], [mid, mid]], tf.int32),
        observation=tf.constant([[[1.0], [2.0]], [[1.0], [2.0]]]),
        action=tf.constant([[0, 0], [0, 0]], tf.int64),
        policy_info=(),
        next_step_type=tf.constant([[mid, mid], [ts.StepType.LAST, mid]], tf.int32),
        reward=tf.constant([[1.0, 0.0], [1.0, 0.0]]),
        discount=tf.constant([[1.0, 1.0], [discount_after_first_step, 1.0]]),
    )


@pytest.mark.parametrize("name", ["dqn", "ddqn"])
def test_td_loss_matches_hand_computation(name):
    # Bootstrapped row: target 1 + 0.9 * max(2, 4) = 4.6, Q(1, 0) = 1, TD error 3.6.
    # Terminated row (discount 0): target 1 = Q(1, 0), TD error 0.
    mse = _agent(name, "mse")
    np.testing.assert_allclose(mse.loss(_experience(0.0)).loss, (3.6**2 + 0.0) / 2, rtol=1e-5)
    huber = _agent(name, "huber")
    np.testing.assert_allclose(huber.loss(_experience(0.0)).loss, ((3.6 - 0.5) + 0) / 2, rtol=1e-5)
    # A truncated row keeps discount 1 and bootstraps like the first.
    np.testing.assert_allclose(mse.loss(_experience(1.0)).loss, 3.6**2, rtol=1e-5)
    # train() reports the same loss (computed before its gradient step).
    np.testing.assert_allclose(huber.train(_experience(0.0)).loss, (3.6 - 0.5) / 2, rtol=1e-5)


@pytest.mark.parametrize(
    "name, double_q, target", [("dqn", False, 4.6), ("dqn", True, 2.8), ("ddqn", False, 2.8)]
)
def test_double_q_values_the_online_choice_with_the_target_network(name, double_q, target):
    # Online Q(2) = [2, 4]; target Q(2) = [4, 2]. DQN: 1 + 0.9 * max(4, 2) = 4.6.
    # Double-Q: the online network picks action 1, the target values it: 1 + 0.9 * 2 = 2.8.
    agent = _agent(name, "mse", double_q=double_q)
    kernel = next(v for v in agent._target_q_network.variables if "kernel" in v.name)
    kernel.assign([[2.0, 1.0]])
    # Both rows bootstrap; Q(1, 0) = 1.
    np.testing.assert_allclose(agent.loss(_experience(1.0)).loss, (target - 1.0) ** 2, rtol=1e-5)


def test_epsilon_decays_linearly_with_env_steps():
    env = tfrl.envs.make("CartPole-v1")
    agent = tfrl.agents.make("dqn", env, epsilon_start=1.0, epsilon_end=0.1, exploration_steps=1000)
    assert float(agent._epsilon()) == pytest.approx(1.0)
    agent.env_step_counter.assign(500)
    assert float(agent._epsilon()) == pytest.approx(0.55)
    agent.env_step_counter.assign(5000)
    assert float(agent._epsilon()) == pytest.approx(0.1)


def test_keras_model_is_accepted_as_q_network():
    env = tfrl.envs.make("CartPole-v1")
    model = tf.keras.Sequential(
        [tf.keras.layers.Dense(8, activation="relu"), tf.keras.layers.Dense(2)]
    )
    agent = tfrl.agents.make("dqn", env, q_network=model)
    action = agent.policy.action(env.reset()).action
    assert action.shape == (1,)
    assert any(v is model.layers[0].kernel for v in agent._q_network.trainable_variables)


def test_keras_functional_model_is_accepted_as_q_network():
    env = tfrl.envs.make("CartPole-v1")
    inputs = tf.keras.Input((4,))
    outputs = tf.keras.layers.Dense(2)(tf.keras.layers.Dense(8, activation="relu")(inputs))
    agent = tfrl.agents.make("dqn", env, q_network=tf.keras.Model(inputs, outputs))
    assert agent.policy.action(env.reset()).action.shape == (1,)


class _SubclassedQ(tf.keras.Model):
    def __init__(self, units=8, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = tf.keras.layers.Dense(units, activation="relu")
        self.out = tf.keras.layers.Dense(2)

    def call(self, x, training=False):
        return self.out(self.hidden(x))


@tf.keras.saving.register_keras_serializable("tfrl_tests")
class _RegisteredQ(_SubclassedQ):
    def get_config(self):
        return {"units": self.units}


class _WrongConfigQ(_SubclassedQ):
    def get_config(self):
        return {}  # loses `units`: a copy would be built with the default size


tf.keras.saving.register_keras_serializable("tfrl_tests")(_WrongConfigQ)


@tf.keras.saving.register_keras_serializable("tfrl_tests")
class _ActivationQ(tf.keras.Model):
    def __init__(self, activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.hidden = tf.keras.layers.Dense(8, activation=activation)
        self.out = tf.keras.layers.Dense(2)

    def call(self, x, training=False):
        return self.out(self.hidden(x))

    def get_config(self):
        return {}  # loses `activation`: same shapes, another function


def test_recurrent_tf_agents_q_networks_still_get_their_target_copy():
    from tf_agents.networks import q_rnn_network

    env = tfrl.envs.make("CartPole-v1")
    network = q_rnn_network.QRnnNetwork(env.observation_spec(), env.action_spec(), lstm_size=(8,))
    agent = tfrl.agents.make("dqn", env, q_network=network)
    assert agent._target_q_network is not network


def test_a_copy_that_computes_another_function_is_refused():
    env = tfrl.envs.make("CartPole-v1")
    with pytest.raises(IncompatibleAgentError, match=r"q_network copies as a different function"):
        tfrl.agents.make("dqn", env, q_network=_ActivationQ(activation="tanh"))


@pytest.mark.parametrize("kind", ["defined in __main__", "get_config without its arguments"])
def test_subclassed_keras_model_that_cannot_be_copied_is_refused_with_the_fix(kind):
    if kind == "defined in __main__":  # Keras cannot find the class by name, as in a notebook

        class LocalQ(_SubclassedQ):
            pass

        model = LocalQ(units=16)
    else:
        model = _WrongConfigQ(units=16)
    env = tfrl.envs.make("CartPole-v1")
    with pytest.raises(
        IncompatibleAgentError,
        match=r"q_network cannot be copied.*target network.*register_keras_serializable",
    ):
        tfrl.agents.make("dqn", env, q_network=model)


def test_registered_subclassed_keras_model_gets_a_target_network_and_trains():
    tfrl.set_seed(0)
    env = tfrl.envs.make("CartPole-v1", seed=0)
    model = _RegisteredQ(units=16)
    agent = tfrl.agents.make(
        "dqn", env, q_network=model, collect_env_steps=32, train_steps=4, learning_starts=32
    )
    target = agent._target_q_network.trainable_variables
    assert len(target) == 4 and all(t is not v for t, v in zip(target, model.trainable_variables))
    tfrl.Trainer(agent, env, seed=0).fit(128, verbose=0)
    assert int(agent.train_step_counter.numpy()) > 0


def test_q_network_with_wrong_output_size_is_refused():
    env = tfrl.envs.make("CartPole-v1")
    with pytest.raises(IncompatibleAgentError, match=r"outputs shape \(3,\).*Dense\(2\)"):
        tfrl.agents.make("dqn", env, q_network=tf.keras.Sequential([tf.keras.layers.Dense(3)]))


def test_dqn_on_continuous_actions_names_agents_that_fit():
    env = tfrl.envs.make("Pendulum-v1")
    with pytest.raises(IncompatibleAgentError, match=r"discrete action space.*'ppo'"):
        tfrl.agents.make("dqn", env)


def test_unknown_agent_and_hparam_get_suggestions():
    env = tfrl.envs.make("CartPole-v1")
    with pytest.raises(UnknownNameError, match="Did you mean 'dqn'"):
        tfrl.agents.make("dqm", env)
    with pytest.raises(UnknownNameError, match="Did you mean 'learning_rate'"):
        tfrl.agents.make("dqn", env, learnin_rate=1e-3)
    with pytest.raises(UnknownNameError, match="does not take actor_network"):
        tfrl.agents.make("dqn", env, actor_network=tf.keras.Sequential())


@pytest.mark.parametrize(
    "bad",
    [
        {"gamma": 1.5},
        {"loss": "l1"},
        {"learning_rate": 0},
        {"epsilon_end": -0.1},
        {"double_q": "no"},
    ],
)
def test_bad_hyper_parameters_are_refused_before_training(bad):
    env = tfrl.envs.make("CartPole-v1")
    with pytest.raises(ValueError, match=next(iter(bad))):
        tfrl.agents.make("dqn", env, **bad)


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"gradient_clipping": 0.0}, "gradient_clipping"),
        ({"target_update_tau": 0.0}, "target_update_tau"),
        ({"hidden_units": "abc"}, "hidden_units"),
        ({"hidden_units": [64, 1.5]}, "hidden_units"),
    ],
)
def test_settings_that_would_silently_stop_learning_are_refused(bad, message):
    env = tfrl.envs.make("CartPole-v1")
    with pytest.raises(ValueError, match=message):
        tfrl.agents.make("dqn", env, **bad)


def test_config_objects_dicts_and_single_layer_sizes():
    env = tfrl.envs.make("CartPole-v1")
    assert tfrl.agents.make("dqn", env, hidden_units=32).config.hidden_units == (32,)
    assert tfrl.agents.make("dqn", env, config={"learning_rate": 0.01}).config.learning_rate == 0.01
    with pytest.raises(ValueError, match="needs a DQNConfig"):
        tfrl.agents.make("dqn", env, config=tfrl.agents.PPOConfig())


def test_n_step_returns_do_not_run_across_a_truncation():
    mid, last, first = ts.StepType.MID, ts.StepType.LAST, ts.StepType.FIRST
    q = tf.keras.Sequential(
        [
            tf.keras.layers.Dense(
                2,
                kernel_initializer=tf.keras.initializers.Constant([[1.0, 2.0]]),
                bias_initializer="zeros",
            )
        ]
    )
    config = tfrl.agents.DQNConfig(gamma=0.9, loss="mse", n_step=2, hidden_units=())
    agent = tfrl.agents.DQN(ts.time_step_spec(OBS), ACTIONS, config, q_network=q)
    experience = trajectory.Trajectory(
        # Row 0: a time limit cuts the episode at item 1; item 2 starts a new one.
        # Row 1: three steps of one episode.
        step_type=tf.constant([[mid, last, first], [mid, mid, mid]], tf.int32),
        observation=tf.constant([[[1.0], [2.0], [3.0]], [[1.0], [2.0], [3.0]]]),
        action=tf.zeros([2, 3], tf.int64),
        policy_info=(),
        next_step_type=tf.constant([[last, first, mid], [mid, mid, mid]], tf.int32),
        reward=tf.constant([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]),
        discount=tf.ones([2, 3]),
    )
    # Row 1: target 1 + 0.9 * 1 + 0.81 * max(3, 6) = 6.76; Q(1, 0) = 1. Row 0 is left out.
    np.testing.assert_allclose(agent.loss(experience).loss, (6.76 - 1.0) ** 2 / 2, rtol=1e-5)


def test_learning_rate_falls_linearly_with_env_steps_then_stays():
    env = tfrl.envs.make("CartPole-v1")
    agent = tfrl.agents.make(
        "dqn",
        env,
        hidden_units=[8],
        learning_rate=1e-3,
        learning_rate_end=1e-5,
        learning_rate_decay_steps=1_000,
    )
    schedule = agent._optimizer._learning_rate  # what apply_gradients reads each step
    rates = []
    for steps in (0, 500, 1_000, 5_000):
        agent.env_step_counter.assign(steps)
        rates.append(float(schedule(agent._optimizer.iterations)))
    np.testing.assert_allclose(rates, [1e-3, 0.5 * (1e-3 + 1e-5), 1e-5, 1e-5], rtol=1e-5)
    constant = tfrl.agents.make("dqn", env, hidden_units=[8], learning_rate=1e-3)
    assert float(constant._optimizer.learning_rate) == pytest.approx(1e-3)
