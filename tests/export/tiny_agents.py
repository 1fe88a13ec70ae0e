"""Tiny CartPole-shaped agents (4 float observations, 2 actions) for export and serving tests."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tf_agents.agents.dqn import dqn_agent
from tf_agents.agents.ppo import ppo_clip_agent
from tf_agents.agents.reinforce import reinforce_agent
from tf_agents.networks import actor_distribution_network, q_network, value_network
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

OBS_SPEC = tensor_spec.BoundedTensorSpec((4,), tf.float32, -5.0, 5.0, name="observation")
ACTION_SPEC = tensor_spec.BoundedTensorSpec((), tf.int64, 0, 1, name="action")
KINDS = ("dqn", "reinforce", "ppo")


def make_agent(kind: str, seed: int = 0):
    """A freshly initialized tiny agent of `kind`."""
    tf.random.set_seed(seed)
    time_step_spec = ts.time_step_spec(OBS_SPEC)
    optimizer = tf.keras.optimizers.Adam(1e-3)
    if kind == "dqn":
        net = q_network.QNetwork(OBS_SPEC, ACTION_SPEC, fc_layer_params=(8,))
        agent = dqn_agent.DqnAgent(time_step_spec, ACTION_SPEC, q_network=net, optimizer=optimizer)
    elif kind == "reinforce":
        net = actor_distribution_network.ActorDistributionNetwork(
            OBS_SPEC, ACTION_SPEC, fc_layer_params=(8,)
        )
        agent = reinforce_agent.ReinforceAgent(
            time_step_spec, ACTION_SPEC, actor_network=net, optimizer=optimizer
        )
    elif kind == "ppo":
        actor = actor_distribution_network.ActorDistributionNetwork(
            OBS_SPEC, ACTION_SPEC, fc_layer_params=(8,)
        )
        value = value_network.ValueNetwork(OBS_SPEC, fc_layer_params=(8,))
        agent = ppo_clip_agent.PPOClipAgent(
            time_step_spec, ACTION_SPEC, actor_net=actor, value_net=value, optimizer=optimizer
        )
    else:
        raise ValueError(kind)
    agent.initialize()
    return agent


def observations(n: int = 16, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-2, 2, size=(n, 4)).astype(np.float32)


def greedy_actions(policy, obs: np.ndarray) -> np.ndarray:
    """The in-memory policy's actions for a batch of observations."""
    return policy.action(ts.restart(tf.constant(obs), batch_size=len(obs))).action.numpy()
