"""The softmax preference agent: the gradient-bandit algorithm, linear in features."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, NamedTuple

import tensorflow as tf
import tensorflow_probability as tfp
from tf_agents.agents import data_converter, tf_agent
from tf_agents.networks import sequential
from tf_agents.policies import actor_policy, greedy_policy
from tf_agents.specs import tensor_spec

from tfrl.agents import episodes
from tfrl.agents.base import TfrlAgent, num_actions, require_discrete
from tfrl.agents.config import AgentConfig
from tfrl.errors import ConfigError, IncompatibleAgentError

__all__ = ["Softmax", "SoftmaxConfig", "SoftmaxLossInfo"]


@dataclasses.dataclass
class SoftmaxConfig(AgentConfig):
    """Softmax (gradient-bandit) hyper-parameters.

    Defaults follow Sutton & Barto (2018, §2.8, Figure 2.5): step size
    α = 0.1, preferences starting at 0 (a uniform policy), and the sample
    average of all returns so far as the baseline; γ = 1 as in their episodic
    REINFORCE (§13.3). One difference: each update averages the per-step
    updates of a small batch (`collect_env_steps` env steps, summed over the
    parallel envs) instead of applying them one at a time.

    Attributes:
        learning_rate: the step size α of the plain gradient step. Default 0.1.
        gamma: discount of the return R. Default 1.0.
        baseline_step_size: None (default) keeps R̄ the sample average of all
            returns seen before this update; a number β in (0, 1] makes it an
            exponential average, `R̄ ← R̄ + β (mean batch return − R̄)`, which
            tracks non-stationary rewards.
        collect_env_steps: env steps per update. Default 16.
        train_steps: updates per iteration. Default 1.
        hidden_units: unused (θ is linear in the features).
    """

    on_policy: ClassVar[bool] = True

    learning_rate: float = 0.1
    gamma: float = 1.0
    baseline_step_size: float | None = None
    collect_env_steps: int = 16
    train_steps: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        beta = self.baseline_step_size
        if beta is not None and not 0.0 < beta <= 1.0:
            raise ConfigError(
                f"baseline_step_size={beta} must be in (0, 1], or None for the sample average."
            )


class SoftmaxLossInfo(NamedTuple):
    """Extra training information of one update.

    Attributes:
        average_return: R̄ used as the baseline in this update.
        num_steps: steps whose return was known and so were used.
    """

    average_return: tf.Tensor
    num_steps: tf.Tensor


def _features_layers(observation_spec: Any) -> list[tf.keras.layers.Layer]:
    """One-hot for a Discrete observation (tabular θ), the flattened values otherwise."""
    if isinstance(observation_spec, (dict, list, tuple)):
        raise IncompatibleAgentError(
            f"'softmax' needs one observation array, but the observation spec is nested: "
            f"{observation_spec}. Flatten it (gymnasium's FlattenObservation wrapper)."
        )
    if observation_spec.dtype.is_integer:
        if observation_spec.shape.rank != 0 or not tensor_spec.is_bounded(observation_spec):
            raise IncompatibleAgentError(
                f"'softmax' takes a Discrete observation (one integer state) or a Box of floats; "
                f"got {observation_spec}. Wrap the env so the observation is a float Box."
            )
        depth = int(observation_spec.maximum) - int(observation_spec.minimum) + 1
        low = int(observation_spec.minimum)
        return [tf.keras.layers.Lambda(lambda s: tf.one_hot(tf.cast(s, tf.int32) - low, depth))]
    layers: list[tf.keras.layers.Layer] = []
    if observation_spec.shape.rank != 1:
        layers.append(tf.keras.layers.Flatten())
    layers.append(tf.keras.layers.Lambda(lambda x: tf.cast(x, tf.float32)))
    return layers


class Softmax(TfrlAgent, tf_agent.TFAgent):
    """Softmax action preferences learned by the gradient-bandit rule
    (Sutton & Barto, 2018, §2.8, http://incompleteideas.net/book/the-book-2nd.html;
    Williams, 1992, https://doi.org/10.1007/BF00992696).

    The policy is `π(a|s) = softmax_a θ(s, a)` with preferences linear in the
    observation's features, `θ(s, a) = x(s)ᵀ W[:, a]` (a `Dense` layer without
    bias; a Discrete observation is one-hot encoded, which makes θ a table).
    Each update moves W by plain gradient ascent with step size α:
    `W ← W + α · mean_t (R_t − R̄) ∇_W log π(a_t | s_t)`, where `R_t` is the
    return from step t to the end of its episode (for one-step bandit
    episodes, the reward) and R̄ the average return before this update
    (`average_return`, saved in checkpoints). For a bandit (constant
    observation 1) this is exactly `H(a) ← H(a) + α (R − R̄)(1[a = A] − π(a))`.

    Steps whose episode does not end inside the collected segment have no
    known return and are skipped. Discrete actions only. `agent.policy` picks
    the most preferred action; `agent.collect_policy` samples from π.

    Args:
        time_step_spec: the environment's `time_step_spec()`.
        action_spec: the environment's `action_spec()`; one discrete action.
        config: a `SoftmaxConfig`. Default `SoftmaxConfig()`.

    Example:
        >>> env = tfrl.envs.make("tfrl/MultiArmedBandit-v0", num_envs=8)
        >>> agent = tfrl.agents.make("softmax", env, learning_rate=0.1)
    """

    name_in_registry = "softmax"
    config_class = SoftmaxConfig
    object_args: tuple[str, ...] = ()

    def __init__(self, time_step_spec: Any, action_spec: Any, config: SoftmaxConfig | None = None):
        config = config or SoftmaxConfig()
        require_discrete(action_spec, self.name_in_registry, "'ppo', 'reinforce'")
        features = _features_layers(time_step_spec.observation)
        tf.Module.__init__(self, name="Softmax")
        self._init_tfrl(config)
        self.preferences = tf.keras.layers.Dense(
            num_actions(action_spec), use_bias=False, kernel_initializer="zeros", name="theta"
        )
        dtype = action_spec.dtype
        self._network = sequential.Sequential(
            [
                *features,
                self.preferences,
                tf.keras.layers.Lambda(
                    lambda logits: tfp.distributions.Categorical(logits=logits, dtype=dtype)
                ),
            ],
            input_spec=time_step_spec.observation,
            name="softmax_preferences",
        )
        self._network.create_variables()
        self.average_return = tf.Variable(0.0, trainable=False, name="average_return")
        self.return_count = tf.Variable(0.0, trainable=False, name="return_count")
        collect_policy = actor_policy.ActorPolicy(
            time_step_spec, action_spec, actor_network=self._network
        )
        super(TfrlAgent, self).__init__(
            time_step_spec,
            action_spec,
            policy=greedy_policy.GreedyPolicy(collect_policy),
            collect_policy=collect_policy,
            train_sequence_length=None,
            train_step_counter=self._new_train_step_counter(),
        )
        self._as_trajectory = data_converter.AsTrajectory(self.data_context)

    @property
    def theta(self) -> tf.Variable:
        """The preference weights W, shape `[num_features, num_actions]`."""
        return self.preferences.kernel

    def _initialize(self) -> None:
        return None

    def _train(self, experience: Any, weights: Any = None) -> tf_agent.LossInfo:
        experience = self._as_trajectory(experience)
        mask = episodes.complete_episode_mask(experience)
        if weights is not None:
            mask *= weights
        returns = episodes.discounted_returns(experience, self.config.gamma)
        observation_spec = self.time_step_spec.observation
        observations = tf.reshape(experience.observation, [-1, *observation_spec.shape.as_list()])
        actions = tf.reshape(experience.action, [-1])
        mask = tf.reshape(mask, [-1])
        returns = tf.reshape(returns, [-1])
        count = tf.reduce_sum(mask)
        safe_count = tf.maximum(count, 1.0)
        batch_mean = tf.reduce_sum(returns * mask) / safe_count
        # R̄ before this update; the very first update uses its own mean
        # (Sutton & Barto's R̄_1 = R_1).
        baseline = tf.where(self.return_count > 0, self.average_return, batch_mean)
        with tf.GradientTape() as tape:
            distribution, _ = self._network(observations)
            log_prob = distribution.log_prob(actions)
            objective = tf.reduce_sum((returns - baseline) * log_prob * mask) / safe_count
        gradient = tape.gradient(objective, self.theta)
        self.theta.assign_add(self.config.learning_rate * gradient)
        self._update_average(batch_mean, count)
        self.train_step_counter.assign_add(1)
        return tf_agent.LossInfo(
            loss=-objective, extra=SoftmaxLossInfo(average_return=baseline, num_steps=count)
        )

    def _update_average(self, batch_mean: tf.Tensor, count: tf.Tensor) -> None:
        beta = self.config.baseline_step_size
        seen = self.return_count
        if beta is None:
            new = (self.average_return * seen + batch_mean * count) / tf.maximum(seen + count, 1.0)
        else:
            new = tf.where(
                seen > 0,
                self.average_return + beta * (batch_mean - self.average_return),
                batch_mean,
            )
        new = tf.where(count > 0, new, self.average_return)
        self.average_return.assign(new)
        self.return_count.assign_add(count)
