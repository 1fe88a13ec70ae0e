"""The k-armed bandit: one decision per episode."""

from environments.bandit.config import BanditConfig
from environments.bandit.env import MultiArmedBanditEnv

__all__ = ["BanditConfig", "MultiArmedBanditEnv"]
