"""Deep Q-Networks: DQN and Double DQN."""

from __future__ import annotations

import dataclasses
from typing import Any

import tensorflow as tf
from tf_agents.agents.dqn import dqn_agent
from tf_agents.networks import sequential
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory
from tf_agents.utils import common

from tfrl.agents.base import TfrlAgent, num_actions, require_discrete, require_single_observation
from tfrl.agents.config import AgentConfig
from tfrl.agents.networks import as_network, check_copyable, check_output_shape, mlp_layers
from tfrl.errors import ConfigError

__all__ = ["DDQN", "DQN", "DQNConfig"]


@dataclasses.dataclass
class DQNConfig(AgentConfig):
    """DQN hyper-parameters.

    Defaults are RL Baselines3 Zoo's tuned CartPole-v1 settings (which solve it
    in ~50k env steps); the DQN paper's Atari settings (lr 2.5e-4, 1M replay,
    target sync every 10k steps) are far slower on small control tasks.

    Attributes:
        learning_rate: Adam step size. Default 2.3e-3.
        gamma: discount. Default 0.99.
        hidden_units: Q-network hidden layers. Default (256, 256).
        epsilon_start: exploration rate at env step 0. Default 1.0.
        epsilon_end: exploration rate after `exploration_steps`. Default 0.04.
        exploration_steps: env steps over which epsilon decays linearly. Default 8,000.
        target_update_period: train steps between target-network syncs. Default 128.
        target_update_tau: 1.0 copies the weights; < 1 is a soft (Polyak) update.
        loss: "huber" (default) or "mse" on the TD error.
        gradient_clipping: clip each gradient's norm to this; None disables. Default 10.
        n_step: n-step returns. Default 1. Samples whose n steps cross a time-limit
            truncation are left out of the loss.
        collect_env_steps: env steps per iteration. Default 256.
        train_steps: gradient steps per iteration. Default 128.
        batch_size: transitions per gradient step. Default 64.
        replay_capacity: replay buffer size. Default 100,000.
        learning_starts: env steps before training starts. Default 1,000.
        learning_rate_end: if set, the learning rate decays linearly from
            `learning_rate` to this over `learning_rate_decay_steps` env steps,
            then stays there. Default None (constant).
        learning_rate_decay_steps: env steps of that decay. Default 50,000.
        double_q: Double DQN targets (the online network picks the next action, the
            target network values it), as the `ddqn` agent always does. Default False.
        jit_compile: compile the Trainer's train phase (replay sampling and all
            `train_steps` gradient steps) as one XLA computation. On 2 CPU cores, 256
            gradient steps of batch 64 ran 3.2x faster with 64-64 hidden units, 1.8x
            with 128-128, and slower with 256-256 (176 ms against 156-162). Still
            deterministic per seed, but not bit-identical to the same run without
            XLA. A network with ops XLA cannot compile needs it off. Default False.
    """

    learning_rate: float = 2.3e-3
    hidden_units: tuple[int, ...] = (256, 256)
    epsilon_start: float = 1.0
    epsilon_end: float = 0.04
    exploration_steps: int = 8_000
    target_update_period: int = 128
    target_update_tau: float = 1.0
    loss: str = "huber"
    gradient_clipping: float | None = 10.0
    n_step: int = 1
    collect_env_steps: int = 256
    train_steps: int = 128
    learning_starts: int = 1_000
    learning_rate_end: float | None = None
    learning_rate_decay_steps: int = 50_000
    double_q: bool = False
    jit_compile: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.learning_rate_end is not None and not self.learning_rate_end >= 0:
            raise ConfigError(
                f"learning_rate_end={self.learning_rate_end} must be ≥ 0, or None for a "
                "constant learning rate."
            )
        if self.learning_rate_decay_steps < 1:
            raise ConfigError(
                f"learning_rate_decay_steps={self.learning_rate_decay_steps} must be ≥ 1."
            )
        for name in ("double_q", "jit_compile"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}={getattr(self, name)!r} must be True or False.")
        for name in ("epsilon_start", "epsilon_end"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name}={getattr(self, name)} must be in [0, 1].")
        if self.loss not in _LOSSES:
            raise ConfigError(f"loss={self.loss!r} must be one of {sorted(_LOSSES)}.")
        if self.gradient_clipping is not None and not self.gradient_clipping > 0:
            raise ConfigError(
                f"gradient_clipping={self.gradient_clipping} must be > 0, or None for no clipping."
            )
        if not 0.0 < self.target_update_tau <= 1.0:
            raise ConfigError(
                f"target_update_tau={self.target_update_tau} must be in (0, 1]; 1.0 copies the "
                "weights every target_update_period train steps."
            )
        if self.n_step < 1 or self.target_update_period < 1 or self.exploration_steps < 0:
            raise ConfigError(
                "n_step and target_update_period must be ≥ 1 and exploration_steps ≥ 0; "
                f"got {self.n_step}, {self.target_update_period}, {self.exploration_steps}."
            )


def _no_truncation_inside(experience: trajectory.Trajectory) -> tf.Tensor:
    """1.0 for n-step samples whose episode was not cut by a time limit before their end.

    TF-Agents chains n-step returns by multiplying discounts; a truncated step
    keeps discount 1, so without this the return would run on into the next
    episode. A terminated step (discount 0) already stops it and is kept.
    Only the first LAST inside the window counts: what follows it (the next
    episode, or Reverb's zero padding after an episode's end, itself LAST-typed)
    is already cut off by that step's zero discount.
    """
    inner_last = tf.equal(experience.step_type[:, 1:-1], ts.StepType.LAST)
    earlier = tf.cumsum(tf.cast(inner_last, tf.int32), axis=1, exclusive=True)
    first_last = tf.logical_and(inner_last, tf.equal(earlier, 0))
    # trajectory.discount[t] is the discount of step t + 1.
    bootstraps = tf.greater(experience.discount[:, :-2], 0.0)
    cut = tf.reduce_any(tf.logical_and(first_last, bootstraps), axis=1)
    return 1.0 - tf.cast(cut, tf.float32)


class EnvStepDecay(tf.keras.optimizers.schedules.LearningRateSchedule):
    """A learning rate falling linearly with env steps collected (not gradient steps).

    Reads the agent's `env_step_counter`, so the schedule means the same thing
    whatever the replay ratio.
    """

    def __init__(self, env_steps: tf.Variable, start: float, end: float, decay_steps: int):
        self.env_steps, self.start, self.end, self.decay_steps = env_steps, start, end, decay_steps

    def __call__(self, step: Any) -> tf.Tensor:
        del step  # the optimizer's own iteration count; env steps drive this schedule
        fraction = tf.minimum(tf.cast(self.env_steps, tf.float32) / float(self.decay_steps), 1.0)
        return self.start + fraction * (self.end - self.start)

    def get_config(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "decay_steps": self.decay_steps}


_LOSSES = {"huber": common.element_wise_huber_loss, "mse": common.element_wise_squared_loss}


class DQN(TfrlAgent, dqn_agent.DqnAgent):
    """Deep Q-Network agent (Mnih et al., 2015, https://doi.org/10.1038/nature14236).

    Learns Q(s, a) by regressing on the TD target
    `r + γ · max_a' Q_target(s', a')` (no bootstrap after a terminal state; a
    time-limit truncation still bootstraps), acting ε-greedily while collecting and greedily
    when evaluated or exported.

    Args:
        time_step_spec: the environment's `time_step_spec()`.
        action_spec: the environment's `action_spec()`; must be one discrete action.
        config: a `DQNConfig`. Default `DQNConfig()`.
        q_network: a Keras model (or TF-Agents network) mapping a batch of
            observations to one Q-value per action. Default: an MLP with
            `config.hidden_units`.
        optimizer: a Keras optimizer. Default Adam(`config.learning_rate`).

    Example:
        >>> env = tfrl.envs.make("CartPole-v1", num_envs=8)
        >>> agent = tfrl.agents.make("dqn", env, learning_rate=1e-3)
    """

    name_in_registry = "dqn"
    config_class = DQNConfig
    object_args = ("q_network", "optimizer")
    _tf_agents_class = dqn_agent.DqnAgent

    def __init__(
        self,
        time_step_spec: Any,
        action_spec: Any,
        config: DQNConfig | None = None,
        *,
        q_network: Any = None,
        optimizer: tf.keras.optimizers.Optimizer | None = None,
    ):
        config = config or DQNConfig()
        self._init_tfrl(config)
        require_discrete(action_spec, self.name_in_registry, "'ppo', 'reinforce'")
        observation_spec = time_step_spec.observation
        n = num_actions(action_spec)
        if q_network is None:
            require_single_observation(observation_spec, self.name_in_registry)
            q_network = sequential.Sequential(
                mlp_layers(observation_spec, config.hidden_units) + [tf.keras.layers.Dense(n)]
            )
        q_network = as_network(q_network, observation_spec, "q_network")
        check_output_shape(q_network, observation_spec, (n,), "q_network")
        check_copyable(
            q_network,
            observation_spec,
            "q_network",
            "DQN trains against a copy of it (its target network)",
        )
        self._tf_agents_class.__init__(
            self,
            time_step_spec,
            action_spec,
            q_network=q_network,
            optimizer=optimizer or tf.keras.optimizers.Adam(self._learning_rate()),
            epsilon_greedy=self._epsilon,
            n_step_update=config.n_step,
            target_update_tau=config.target_update_tau,
            target_update_period=config.target_update_period,
            td_errors_loss_fn=_LOSSES[config.loss],
            gamma=config.gamma,
            gradient_clipping=config.gradient_clipping,
            train_step_counter=self._new_train_step_counter(),
        )

    def _loss(self, experience, td_errors_loss_fn=None, gamma=None, weights=None, **kwargs):
        # TF-Agents' public `loss()` reaches `_loss` without gamma (so with 1.0);
        # default it to the agent's own so `agent.loss()` is the loss `train()` minimises.
        gamma = self._gamma if gamma is None else gamma
        if self._n_step_update > 1 and isinstance(experience, trajectory.Trajectory):
            keep = _no_truncation_inside(experience)
            weights = keep if weights is None else weights * keep
        return super()._loss(experience, td_errors_loss_fn, gamma, weights=weights, **kwargs)

    def _compute_next_q_values(self, next_time_steps, info):
        if self.config.double_q:
            return dqn_agent.DdqnAgent._compute_next_q_values(self, next_time_steps, info)
        return super()._compute_next_q_values(next_time_steps, info)

    def _learning_rate(self) -> float | tf.keras.optimizers.schedules.LearningRateSchedule:
        c = self.config
        if c.learning_rate_end is None:
            return c.learning_rate
        return EnvStepDecay(
            self.env_step_counter,
            c.learning_rate,
            c.learning_rate_end,
            c.learning_rate_decay_steps,
        )


class DDQN(DQN, dqn_agent.DdqnAgent):
    """Double DQN (van Hasselt et al., 2016, https://arxiv.org/abs/1509.06461).

    Like `DQN`, but the target picks the next action with the online network
    and values it with the target network, `r + γ Q_target(s', argmax_a' Q(s', a'))`,
    which removes most of DQN's over-estimation. Same arguments as `DQN`.
    """

    name_in_registry = "ddqn"
    _tf_agents_class = dqn_agent.DdqnAgent
