"""The k-armed bandit as a gymnasium environment."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from environments.bandit.config import BanditConfig


class MultiArmedBanditEnv(gym.Env):
    """A k-armed bandit: pick an arm, receive a noisy reward, episode over.

    ## Description
    The stationary k-armed testbed of Sutton & Barto (2018, §2.3). Each arm
    `a` pays `N(means[a], reward_std²)`. The best arm is `argmax(means)`.

    ## Action space
    `Discrete(num_arms)`: the arm to pull.

    ## Observation space
    `Box(0, 1, (1,), float32)`: always 1.0, a bias feature; there is no state.

    ## Rewards
    A draw from the chosen arm's normal distribution.

    ## Starting state and episode end
    Every episode is one step: `step` returns `terminated=True`.

    ## Arguments
    `gymnasium.make("tfrl/MultiArmedBandit-v0", num_arms=10, means=None,
    means_seed=0, reward_std=1.0)`; see `BanditConfig`.

    ## Version history
    - v0: initial version.
    """

    metadata = {"render_modes": []}

    def __init__(self, **config: Any):
        self.config = BanditConfig(**config)
        if self.config.means is None:
            means = np.random.default_rng(self.config.means_seed).normal(size=self.config.num_arms)
        else:
            means = np.asarray(self.config.means, dtype=np.float64)
        self.means = means
        self.best_arm = int(np.argmax(means))
        self.action_space = gym.spaces.Discrete(self.config.num_arms)
        self.observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
        self._observation = np.ones(1, dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return self._observation.copy(), {}

    def step(self, action: int):
        if not self.action_space.contains(action):
            raise ValueError(f"action={action!r} is not an arm in {self.action_space}.")
        reward = self.np_random.normal(self.means[action], self.config.reward_std)
        return self._observation.copy(), float(reward), True, False, {"best_arm": self.best_arm}
