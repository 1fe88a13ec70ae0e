"""REINFORCE: Monte-Carlo policy gradient with a learned value baseline."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import tensorflow as tf
from tf_agents.agents import tf_agent
from tf_agents.agents.reinforce import reinforce_agent
from tf_agents.trajectories import time_step as ts
from tf_agents.utils import common, eager_utils

from tfrl.agents import episodes
from tfrl.agents.actor_critic import actor_network_for, value_network_for
from tfrl.agents.base import TfrlAgent
from tfrl.agents.config import AgentConfig
from tfrl.errors import ConfigError

__all__ = ["REINFORCE", "REINFORCEConfig"]


@dataclasses.dataclass
class REINFORCEConfig(AgentConfig):
    """REINFORCE hyper-parameters.

    Defaults follow TF-Agents' REINFORCE CartPole tutorial (normalised
    returns, a value baseline with loss weight 0.2), tuned for tfrl's Trainer
    on the default env (CartPole-v1, 8 envs): each iteration collects
    `collect_env_steps` and makes one update from the episodes that end inside
    that segment, so the segment per env (`collect_env_steps / num_envs`, 512)
    holds a whole 500-step CartPole episode; steps of episodes that do not end
    inside the segment are left out rather than cut short and treated as
    terminal.
    Williams (1992) had no baseline network, no normalisation and plain SGD.

    Attributes:
        learning_rate: Adam step size (actor and value network). Default 5e-3.
        gamma: discount. Default 0.99.
        hidden_units: hidden layers of the default actor and value MLPs.
            Default (64, 64).
        collect_env_steps: env steps per iteration. Default 4,096.
        train_steps: gradient steps per iteration. Default 1 (the data is
            on-policy only for the first).
        value_baseline: subtract the value network's estimate from the
            return. Default True.
        value_loss_coef: weight of the value network's squared error. Default 0.2.
        normalize_advantages: standardise advantages over the valid steps of
            each batch. Default True.
        entropy_coef: weight of the entropy bonus. Default 0.0.
        gradient_clipping: clip each gradient's norm; None disables. Default None.
    """

    on_policy: ClassVar[bool] = True

    learning_rate: float = 5e-3
    hidden_units: tuple[int, ...] = (64, 64)
    collect_env_steps: int = 4_096
    train_steps: int = 1
    value_baseline: bool = True
    value_loss_coef: float = 0.2
    normalize_advantages: bool = True
    entropy_coef: float = 0.0
    gradient_clipping: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.value_loss_coef < 0 or self.entropy_coef < 0:
            raise ConfigError(
                f"value_loss_coef={self.value_loss_coef} and entropy_coef={self.entropy_coef} "
                "must be ≥ 0."
            )
        if self.gradient_clipping is not None and not self.gradient_clipping > 0:
            raise ConfigError(
                f"gradient_clipping={self.gradient_clipping} must be > 0, or None to disable."
            )


class REINFORCE(TfrlAgent, reinforce_agent.ReinforceAgent):
    """REINFORCE with a value baseline (Williams, 1992,
    https://doi.org/10.1007/BF00992696; Sutton & Barto, 2018, §13.4).

    Raises the log-probability of each action in proportion to how much the
    return that followed beat the baseline:
    `θ ← θ + α Σ_t (G_t − V(s_t)) ∇ log π(a_t | s_t)`, with the Monte-Carlo
    return `G_t = Σ_k γ^k r_{t+k}` to the end of the episode, while `V` is
    regressed onto `G_t`. Only steps whose episode ends inside the collected
    segment have a known `G_t`; the rest of each env's row is masked out
    (`tfrl.agents.episodes.complete_episode_mask`).

    Differences from TF-Agents' `ReinforceAgent`, whose networks, policies
    and loss terms this reuses: steps are masked from the episode's true
    last transition (TF-Agents waits for the boundary item after it, and
    raises when a batch holds no boundary); the value network learns only on
    real transitions, not on boundaries; with the value baseline, an episode
    cut by a time limit ends its return with the discounted value of its final
    observation instead of being treated as terminal; advantages are normalised over the
    valid steps only and carry no gradient into the value network; losses
    are means over valid steps; an update with no complete episode is skipped.

    Works with Discrete and Box action spaces. `agent.policy` takes the most
    likely action (greedy), `agent.collect_policy` samples.

    Args:
        time_step_spec: the environment's `time_step_spec()`.
        action_spec: the environment's `action_spec()`.
        config: a `REINFORCEConfig`. Default `REINFORCEConfig()`.
        actor_network: a Keras model mapping observations to one logit per
            action (Discrete) or the action's mean (Box), or a TF-Agents
            network emitting distributions. Default: an MLP with
            `config.hidden_units`.
        value_network: a Keras model ending in `Dense(1)`, or a TF-Agents
            value network. Default: an MLP with `config.hidden_units`; unused
            when `config.value_baseline` is False.
        optimizer: a Keras optimizer. Default Adam(`config.learning_rate`).

    Example:
        >>> env = tfrl.envs.make("CartPole-v1", num_envs=4)
        >>> agent = tfrl.agents.make("reinforce", env, learning_rate=3e-3)
    """

    name_in_registry = "reinforce"
    config_class = REINFORCEConfig
    object_args = ("actor_network", "value_network", "optimizer")

    def __init__(
        self,
        time_step_spec: Any,
        action_spec: Any,
        config: REINFORCEConfig | None = None,
        *,
        actor_network: Any = None,
        value_network: Any = None,
        optimizer: tf.keras.optimizers.Optimizer | None = None,
    ):
        config = config or REINFORCEConfig()
        self._init_tfrl(config)
        name = self.name_in_registry
        actor = actor_network_for(
            time_step_spec, action_spec, actor_network, config.hidden_units, name
        )
        value = None
        if config.value_baseline:
            value = value_network_for(time_step_spec, value_network, config.hidden_units, name)
        optimizer = optimizer or tf.keras.optimizers.Adam(config.learning_rate)
        reinforce_agent.ReinforceAgent.__init__(
            self,
            time_step_spec,
            action_spec,
            actor_network=actor,
            optimizer=optimizer,
            value_network=value,
            value_estimation_loss_coef=config.value_loss_coef,
            gamma=config.gamma,
            normalize_returns=config.normalize_advantages,
            gradient_clipping=config.gradient_clipping,
            entropy_regularization=config.entropy_coef or None,
            train_step_counter=self._new_train_step_counter(),
        )
        # Create the optimizer's slots now: the update below runs inside a
        # condition, where a tf.function may not create variables.
        if hasattr(optimizer, "build"):
            optimizer.build(self._variables_to_train())

    def _variables_to_train(self) -> list[tf.Variable]:
        variables = list(self._actor_network.trainable_weights)
        if self._baseline:
            variables += self._value_network.trainable_weights
        return variables

    def _train(self, experience: Any, weights: Any = None) -> tf_agent.LossInfo:
        experience = self._as_trajectory(experience)
        values = None
        if self._baseline:  # bootstraps episodes cut by a time limit
            values, _ = self._value_network(experience.observation, step_type=experience.step_type)
        returns = tf.stop_gradient(episodes.discounted_returns(experience, self._gamma, values))
        mask = episodes.complete_episode_mask(experience)
        if weights is not None:
            mask *= weights
        variables = self._variables_to_train()
        with tf.GradientTape() as tape:
            loss_info = self.total_loss(experience, returns, mask, training=True)
        grads = tape.gradient(loss_info.loss, variables)
        grads_and_vars = list(zip(grads, variables))
        if self._gradient_clipping:
            grads_and_vars = eager_utils.clip_gradient_norms(
                grads_and_vars, self._gradient_clipping
            )

        def update() -> tf.Operation:
            self._optimizer.apply_gradients(grads_and_vars)
            return tf.no_op()

        # No complete episode in the segment: nothing to learn from. A tf.cond, not
        # an `if`: the Trainer traces without AutoGraph.
        tf.cond(tf.reduce_sum(mask) > 0, update, tf.no_op)
        self.train_step_counter.assign_add(1)
        return tf.nest.map_structure(tf.identity, loss_info)

    def total_loss(
        self,
        experience: Any,
        returns: tf.Tensor,
        weights: tf.Tensor,
        training: bool = False,
    ) -> tf_agent.LossInfo:
        """The loss on a `[B, T]` batch; `weights` is the valid-step mask."""
        num_valid = tf.maximum(tf.reduce_sum(weights), 1.0)
        time_steps = ts.TimeStep(
            experience.step_type,
            tf.zeros_like(experience.reward),
            tf.zeros_like(experience.discount),
            experience.observation,
        )
        advantages = returns
        value_loss = tf.constant(0.0)
        value_regularization = tf.constant(0.0)
        if self._baseline:
            values, _ = self._value_network(
                experience.observation, step_type=experience.step_type, training=training
            )
            advantages = returns - tf.stop_gradient(values)
            squared_error = tf.math.squared_difference(returns, values)
            value_loss = self._value_estimation_loss_coef * (
                tf.reduce_sum(squared_error * weights) / num_valid
            )
            value_regularization = tf.nn.scale_regularization_loss(self._value_network.losses)
        if self._normalize_returns:
            advantages = episodes.masked_standardize(advantages, weights)
        policy_state = self.collect_policy.get_initial_state(tf.shape(experience.discount)[0])
        distribution = self.collect_policy.distribution(time_steps, policy_state).action
        log_prob = common.log_probability(distribution, experience.action, self.action_spec)
        policy_loss = -tf.reduce_sum(log_prob * advantages * weights) / num_valid
        entropy_loss = tf.constant(0.0)
        if self._entropy_regularization:
            entropy = tf.cast(common.entropy(distribution, self.action_spec), tf.float32)
            entropy_loss = -self._entropy_regularization * (
                tf.reduce_sum(entropy * weights) / num_valid
            )
        actor_regularization = tf.nn.scale_regularization_loss(self._actor_network.losses)
        total = policy_loss + actor_regularization + entropy_loss + value_loss
        total += value_regularization
        extra = reinforce_agent.ReinforceAgentLossInfo(
            policy_gradient_loss=policy_loss,
            policy_network_regularization_loss=actor_regularization,
            entropy_regularization_loss=entropy_loss,
            value_estimation_loss=value_loss,
            value_network_regularization_loss=value_regularization,
        )
        return tf_agent.LossInfo(total, extra)
