"""Proximal Policy Optimization with the clipped surrogate objective."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import tensorflow as tf
from tf_agents.agents.ppo import ppo_clip_agent
from tf_agents.trajectories import time_step as ts
from tf_agents.utils import value_ops

from tfrl.agents import episodes
from tfrl.agents.actor_critic import actor_network_for, value_network_for
from tfrl.agents.base import TfrlAgent
from tfrl.agents.config import AgentConfig
from tfrl.errors import ConfigError

__all__ = ["PPO", "PPOConfig"]


@dataclasses.dataclass
class PPOConfig(AgentConfig):
    """PPO hyper-parameters.

    Defaults are RL Baselines3 Zoo's tuned CartPole-v1 settings (8 envs × 32
    steps per rollout, one full batch of 256, 20 epochs, γ 0.98, λ 0.8, clip
    0.2, lr 1e-3) with stable-baselines3's PPO defaults for the rest (value
    loss weight 0.5, gradient norm 0.5, separate 64-64 tanh networks). The
    Zoo decays lr and clip linearly to 0; here they stay constant. The paper
    (Atari/MuJoCo) used lr 3e-4, 2,048 steps per rollout, 10 epochs of
    64-sample minibatches and λ 0.95; TF-Agents trains each epoch on the whole
    segment at once.

    Attributes:
        learning_rate: Adam step size. Default 1e-3.
        gamma: discount. Default 0.98.
        hidden_units: hidden layers of the actor and value MLPs. Default (64, 64).
        collect_env_steps: env steps per iteration (summed over envs). Default 256.
        train_steps: `agent.train` calls per iteration. Default 1 (each is
            `num_epochs` gradient steps).
        num_epochs: gradient steps over the segment per `train` call. Default 20.
        clip_ratio: ε of the clipped ratio `clip(π/π_old, 1 − ε, 1 + ε)`. Default 0.2.
        gae_lambda: λ of generalised advantage estimation. Default 0.8.
        value_loss_coef: weight of the value loss. Default 0.5.
        entropy_coef: weight of the entropy bonus. Default 0.0.
        gradient_clipping: clip the global gradient norm. Default 0.5.
        normalize_observations: keep running observation statistics and
            standardise with them. Default False.
        normalize_rewards: divide rewards by a running estimate of their
            standard deviation (not centred) before computing returns and
            advantages, so the value network's targets stay near unit scale
            whatever the env's reward scale (e.g. Pendulum-v1's −16…0 per
            step). Default False.
    """

    on_policy: ClassVar[bool] = True

    learning_rate: float = 1e-3
    gamma: float = 0.98
    hidden_units: tuple[int, ...] = (64, 64)
    collect_env_steps: int = 256
    train_steps: int = 1
    num_epochs: int = 20
    clip_ratio: float = 0.2
    gae_lambda: float = 0.8
    value_loss_coef: float = 0.5
    entropy_coef: float = 0.0
    gradient_clipping: float = 0.5
    normalize_observations: bool = False
    normalize_rewards: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_epochs < 1:
            raise ConfigError(f"num_epochs={self.num_epochs} must be ≥ 1; 10–20 is typical.")
        if not 0.0 < self.clip_ratio < 1.0:
            raise ConfigError(f"clip_ratio={self.clip_ratio} must be in (0, 1); 0.2 is typical.")
        if not 0.0 <= self.gae_lambda <= 1.0:
            raise ConfigError(f"gae_lambda={self.gae_lambda} must be in [0, 1]; 0.95 is typical.")
        for name in ("value_loss_coef", "entropy_coef"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}={getattr(self, name)} must be ≥ 0.")
        if not self.gradient_clipping > 0:
            raise ConfigError(f"gradient_clipping={self.gradient_clipping} must be > 0.")


class PPO(TfrlAgent, ppo_clip_agent.PPOClipAgent):
    """Proximal Policy Optimization, clipped objective (Schulman et al., 2017,
    https://arxiv.org/abs/1707.06347).

    Each `train` call runs `num_epochs` gradient steps on the collected
    segment, maximising `min(ρ_t A_t, clip(ρ_t, 1 − ε, 1 + ε) A_t)` with
    `ρ_t = π(a_t|s_t) / π_old(a_t|s_t)`, minus `value_loss_coef` times the
    value network's squared error. Advantages are GAE(λ) (Schulman et al.,
    2016, https://arxiv.org/abs/1506.02438),
    `A_t = Σ_k (γλ)^k δ_{t+k}`, `δ_t = r_t + γ d_t V(s_{t+1}) − V(s_t)`,
    and the value targets are `A_t + V(s_t)`.

    Differences from TF-Agents' `PPOClipAgent`, which this reuses: advantages
    are standardised with the mean and std of the valid items only (TF-Agents
    counts the masked boundary and padding items too); an episode
    cut by a time limit (`truncated`, discount 1) bootstraps from the value
    of its final observation instead of being treated as terminal, and the
    segment's last transition bootstraps from `V(s_T)` rather than `V(s_{T-1})`.
    Works with Discrete and Box action spaces. `agent.policy` takes the most
    likely action (greedy), `agent.collect_policy` samples.

    Args:
        time_step_spec: the environment's `time_step_spec()`.
        action_spec: the environment's `action_spec()`.
        config: a `PPOConfig`. Default `PPOConfig()`.
        actor_network: a Keras model mapping observations to one logit per
            action (Discrete) or the action's mean (Box), or a TF-Agents
            network emitting distributions. Default: a tanh MLP with
            `config.hidden_units`.
        value_network: a Keras model ending in `Dense(1)`, or a TF-Agents
            value network. Default: a tanh MLP with `config.hidden_units`.
        optimizer: a Keras optimizer. Default Adam(`config.learning_rate`).

    Example:
        >>> env = tfrl.envs.make("CartPole-v1", num_envs=8)
        >>> agent = tfrl.agents.make("ppo", env, num_epochs=10)
    """

    name_in_registry = "ppo"
    config_class = PPOConfig
    object_args = ("actor_network", "value_network", "optimizer")

    def __init__(
        self,
        time_step_spec: Any,
        action_spec: Any,
        config: PPOConfig | None = None,
        *,
        actor_network: Any = None,
        value_network: Any = None,
        optimizer: tf.keras.optimizers.Optimizer | None = None,
    ):
        config = config or PPOConfig()
        self._init_tfrl(config)
        name, tanh = self.name_in_registry, tf.keras.activations.tanh
        actor = actor_network_for(
            time_step_spec, action_spec, actor_network, config.hidden_units, name, tanh
        )
        value = value_network_for(time_step_spec, value_network, config.hidden_units, name, tanh)
        ppo_clip_agent.PPOClipAgent.__init__(
            self,
            time_step_spec,
            action_spec,
            optimizer=optimizer or tf.keras.optimizers.Adam(config.learning_rate),
            actor_net=actor,
            value_net=value,
            greedy_eval=True,
            importance_ratio_clipping=config.clip_ratio,
            lambda_value=config.gae_lambda,
            discount_factor=config.gamma,
            entropy_regularization=config.entropy_coef,
            value_pred_loss_coef=config.value_loss_coef,
            num_epochs=config.num_epochs,
            use_gae=True,
            use_td_lambda_return=True,
            normalize_rewards=config.normalize_rewards,
            normalize_observations=config.normalize_observations,
            gradient_clipping=config.gradient_clipping,
            compute_value_and_advantage_in_train=True,
            update_normalizers_in_train=True,
            train_step_counter=self._new_train_step_counter(),
        )

    def compute_return_and_advantage(
        self, next_time_steps: ts.TimeStep, value_preds: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """GAE(λ) advantages and TD(λ) returns on a `[B, T]` segment.

        `next_time_steps` are the `T − 1` steps after each transition and
        `value_preds` the values of all `T` observations. Boundary items (from
        an episode's LAST step to the next FIRST) get 0, which also masks
        them out of the loss.
        """
        gamma = self._discount_factor
        rewards = next_time_steps.reward
        if self._reward_normalizer:
            rewards = self._reward_normalizer.normalize(
                rewards, center_mean=False, clip_value=self._reward_norm_clipping
            )
        values, next_values = value_preds[:, :-1], value_preds[:, 1:]
        # Bootstrap unless the episode terminated (discount 0); a truncated
        # episode's LAST step still has a value.
        deltas = rewards + gamma * next_time_steps.discount * next_values - values
        # The advantage sum stops at an episode's last transition.
        continues = tf.cast(tf.not_equal(next_time_steps.step_type, ts.StepType.LAST), tf.float32)
        advantages = value_ops.discounted_return(
            deltas,
            gamma * self._lambda * next_time_steps.discount * continues,
            time_major=False,
        )
        # A transition into a FIRST step is a boundary (LAST → reset).
        is_boundary = tf.equal(next_time_steps.step_type, ts.StepType.FIRST)
        advantages = tf.where(is_boundary, 0.0, advantages)
        returns = tf.where(is_boundary, 0.0, advantages + values)
        return returns, advantages

    def get_loss(
        self,
        time_steps: ts.TimeStep,
        actions: Any,
        act_log_probs: tf.Tensor,
        returns: tf.Tensor,
        normalized_advantages: tf.Tensor,
        action_distribution_parameters: Any,
        weights: tf.Tensor,
        train_step: tf.Variable,
        debug_summaries: bool,
        old_value_predictions: tf.Tensor | None = None,
        training: bool = False,
    ):
        """TF-Agents' PPO loss, with advantages standardised over valid items only.

        TF-Agents standardises the advantages over every item of the segment,
        boundaries and padding included, before this is called; that is an affine
        map, so standardising its output again over the valid items (`weights` > 0)
        gives exactly the advantages' own valid-item standardisation.
        """
        valid = tf.cast(weights > 0, tf.float32)
        normalized_advantages = episodes.masked_standardize(normalized_advantages, valid)
        return super().get_loss(
            time_steps,
            actions,
            act_log_probs,
            returns,
            normalized_advantages,
            action_distribution_parameters,
            weights,
            train_step,
            debug_summaries,
            old_value_predictions=old_value_predictions,
            training=training,
        )
