"""Agents: `make(name, env, **hparams)` and one module per algorithm."""

from tfrl.agents.base import TfrlAgent
from tfrl.agents.config import AgentConfig
from tfrl.agents.dqn import DDQN, DQN, DQNConfig
from tfrl.agents.registry import agent_class, make, names

__all__ = [
    "DDQN",
    "DQN",
    "AgentConfig",
    "DQNConfig",
    "TfrlAgent",
    "agent_class",
    "make",
    "names",
]
