"""Double DQN for DQNimb with a class-balanced TD regression."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from tfrl.agents import DDQN, DQNConfig
from tfrl.errors import ConfigError

__all__ = ["BalancedDDQN"]


class BalancedDDQN(DDQN):
    """Double DQN whose TD loss weighs each transition by λ / |r|.

    DQNimb rewards a majority sample with ±λ and a minority one with ±1, so
    in a squared (or Huber) TD loss a majority sample's error counts λ² as
    much as a minority one's, while its Q-value margin (2λ) is 1/λ times
    smaller: the regression fits the minority samples first and the
    greedy labels lean towards the minority class (measured: no false
    negatives, 5-10 false positives on the digits test split). Weighing each
    transition by λ / |r| (1 on majority samples, λ on minority ones; 1 on
    the zero-reward step that starts an auto-reset episode) makes the two
    classes count alike in the regression, as class weights do for
    cross-entropy. The reward, the Bellman target and the fixed point of the
    tabular Q-function are unchanged; only how the sampled transitions are
    weighted in the loss (like prioritized replay's weights) changes.

    Args:
        time_step_spec, action_spec, config, q_network, optimizer: as `DDQN`.
        reward_lambda: the env's λ (its `reward_lambda`), in (0, 1].
    """

    def __init__(
        self,
        time_step_spec: Any,
        action_spec: Any,
        config: DQNConfig | None = None,
        *,
        reward_lambda: float,
        q_network: Any = None,
        optimizer: tf.keras.optimizers.Optimizer | None = None,
    ):
        if not 0 < reward_lambda <= 1:
            raise ConfigError(
                f"reward_lambda={reward_lambda!r} must be in (0, 1]: pass the env's "
                "reward_lambda (minority / majority training samples)."
            )
        self.reward_lambda = float(reward_lambda)
        super().__init__(
            time_step_spec, action_spec, config, q_network=q_network, optimizer=optimizer
        )

    def _loss(self, experience, td_errors_loss_fn=None, gamma=None, weights=None, **kwargs):
        size = tf.abs(experience.reward[:, 0])  # the reward of the transition trained on
        balance = tf.where(size > 0, self.reward_lambda / tf.maximum(size, 1e-12), 1.0)
        weights = balance if weights is None else weights * balance
        return super()._loss(experience, td_errors_loss_fn, gamma, weights=weights, **kwargs)
