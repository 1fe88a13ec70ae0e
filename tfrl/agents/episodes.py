"""Episode bookkeeping on a `[num_envs, T]` segment of on-policy experience.

The Trainer hands on-policy agents one contiguous segment per env row,
collected without resetting the environments, so a row usually starts and
ends in the middle of an episode. Item `t` of a `Trajectory` row is the
transition `s_t --a_t--> s_{t+1}`: `reward[t]` and `discount[t]` come from
`s_{t+1}` and `next_step_type[t]` is its step type. Items whose `step_type`
is LAST are *boundaries* (the env resets and ignores the action); items whose
`next_step_type` is LAST are the last real transitions of their episodes.

A Monte-Carlo return `G_t = r_t + γ r_{t+1} + ...` needs every reward up to
the episode's end, so it is exact only for steps whose episode ends inside
the segment; a step of an episode that began before the segment is fine.
"""

from __future__ import annotations

import tensorflow as tf
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory as trajectory_lib
from tf_agents.utils import value_ops

__all__ = ["complete_episode_mask", "discounted_returns", "masked_standardize"]


def complete_episode_mask(experience: trajectory_lib.Trajectory) -> tf.Tensor:
    """1.0 where a step's Monte-Carlo return is known, else 0.0.

    A step counts when it is a real transition (not a boundary) and some step
    at or after it in the same row ends an episode (`next_step_type` LAST).
    So the steps after the last episode end of each row get 0.

    Args:
        experience: a `Trajectory` with outer shape `[B, T]`.

    Returns:
        A float32 `[B, T]` tensor.
    """
    ends = tf.cast(tf.equal(experience.next_step_type, ts.StepType.LAST), tf.float32)
    ends_at_or_after = tf.math.cumsum(ends, axis=1, reverse=True) > 0
    real = ~experience.is_boundary()
    return tf.cast(ends_at_or_after & real, tf.float32)


def discounted_returns(
    experience: trajectory_lib.Trajectory, gamma: float, values: tf.Tensor | None = None
) -> tf.Tensor:
    """`G_t = r_t + γ d_t G_{t+1}`, restarted at every episode end.

    `d_t` is the environment's discount (0 after a terminal step); the sum
    also stops after the last transition of an episode, whether it was
    terminated or truncated, since the next item belongs to another episode.
    Given `values`, an episode cut by a time limit (last transition with
    `d_t` > 0) is not treated as terminal: its return ends with `γ V(s_{t+1})`,
    the value of its final observation (held by the next item; a cut exactly
    at the segment's last item has no such item and ends without it).
    Returns of steps whose episode does not end in the segment are partial
    sums; mask them with `complete_episode_mask`.

    Args:
        experience: a `Trajectory` with outer shape `[B, T]`.
        gamma: the discount factor.
        values: optional `[B, T]` state values `V(s_t)` of each item's observation.

    Returns:
        A float32 `[B, T]` tensor.
    """
    ends = tf.equal(experience.next_step_type, ts.StepType.LAST)
    continues = tf.cast(~ends, tf.float32)
    discounts = continues * experience.discount * gamma
    rewards = experience.reward
    if values is not None:
        next_values = tf.concat([values[:, 1:], tf.zeros_like(values[:, :1])], axis=1)
        truncated = tf.cast(ends & (experience.discount > 0), tf.float32)
        rewards = rewards + gamma * experience.discount * truncated * next_values
    return value_ops.discounted_return(rewards, discounts, time_major=False)


def masked_standardize(values: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """`(values − mean) / std` with the mean and std taken over the entries where `mask` is 1.

    Boundary and padding items (mask 0) neither shift nor scale the valid ones;
    their own outputs are meaningless and should stay masked.
    """
    count = tf.maximum(tf.reduce_sum(mask), 1.0)
    mean = tf.reduce_sum(values * mask) / count
    variance = tf.reduce_sum(tf.square(values - mean) * mask) / count
    return (values - mean) / (tf.sqrt(variance) + 1e-8)
