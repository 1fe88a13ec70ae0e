"""Hand-made specs and trajectories for the agent tests."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory

F, M, L = int(ts.StepType.FIRST), int(ts.StepType.MID), int(ts.StepType.LAST)


def discrete_specs(num_actions: int = 2, observation_size: int = 4):
    """A CartPole-like `(time_step_spec, action_spec)`."""
    observation = tensor_spec.TensorSpec((observation_size,), tf.float32, "observation")
    action = tensor_spec.BoundedTensorSpec((), tf.int64, 0, num_actions - 1, "action")
    return ts.time_step_spec(observation), action


def box_specs():
    observation = tensor_spec.TensorSpec((3,), tf.float32, "observation")
    action = tensor_spec.BoundedTensorSpec((1,), tf.float32, -2.0, 2.0, "action")
    return ts.time_step_spec(observation), action


def segment(step_type, next_step_type, reward, discount, action, observation=None, info=()):
    """A `[B, T]` Trajectory from nested lists (observations default to zeros)."""
    step_type = np.asarray(step_type, np.int32)
    batch, length = step_type.shape
    if observation is None:
        observation = np.zeros((batch, length, 4), np.float32)
    return trajectory.Trajectory(
        step_type=tf.constant(step_type),
        observation=tf.constant(observation, tf.float32),
        action=tf.constant(action, tf.int64),
        policy_info=info,
        next_step_type=tf.constant(next_step_type, tf.int32),
        reward=tf.constant(reward, tf.float32),
        discount=tf.constant(discount, tf.float32),
    )


# Three env rows of five steps, as the Trainer hands them over:
#   row 0: an episode terminates (discount 0) at item 1; item 2 is the
#          boundary; a new episode runs past the segment's end.
#   row 1: an episode is truncated (discount 1) at item 2; item 3 is the boundary.
#   row 2: an episode that began before the segment ends at its last item.
SEGMENT = dict(
    step_type=[[F, M, L, F, M], [M, M, M, L, F], [M, M, M, M, M]],
    next_step_type=[[M, L, F, M, M], [M, M, L, F, M], [M, M, M, M, L]],
    reward=[[1, 2, 0, 4, 5], [1, 1, 1, 0, 3], [1, 1, 1, 1, 1]],
    discount=[[1, 0, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 1, 0]],
    action=[[0, 1, 0, 1, 1], [1, 1, 0, 0, 0], [0, 0, 1, 1, 0]],
)
# With gamma 0.5: which steps have a known return, and those returns.
SEGMENT_MASK = [[1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
SEGMENT_RETURNS_HALF = [
    [2.0, 2.0, None, None, None],
    [1.75, 1.5, 1.0, None, None],
    [1.9375, 1.875, 1.75, 1.5, 1.0],
]
