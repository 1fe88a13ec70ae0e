"""Agents: `make(name, env, **hparams)` and one module per algorithm."""

from tfrl.agents import hparams
from tfrl.agents.base import TfrlAgent
from tfrl.agents.config import AgentConfig
from tfrl.agents.dqn import DDQN, DQN, DQNConfig
from tfrl.agents.ppo import PPO, PPOConfig
from tfrl.agents.registry import agent_class, make, names
from tfrl.agents.reinforce import REINFORCE, REINFORCEConfig
from tfrl.agents.slateq import SlateQ, SlateQConfig
from tfrl.agents.softmax import Softmax, SoftmaxConfig

__all__ = [
    "DDQN",
    "DQN",
    "PPO",
    "REINFORCE",
    "AgentConfig",
    "DQNConfig",
    "PPOConfig",
    "REINFORCEConfig",
    "SlateQ",
    "SlateQConfig",
    "Softmax",
    "SoftmaxConfig",
    "TfrlAgent",
    "agent_class",
    "hparams",
    "make",
    "names",
]
