"""Imbalanced image classification as a sequential decision (Lin et al., 2020)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from environments.image_classification import data as data_lib
from environments.image_classification.config import ImageClassificationConfig

__all__ = ["ImageClassificationEnv", "ImageClassificationVectorEnv"]


class _Episodes:
    """The state of `n` episodes over one data set, stepped as numpy arrays.

    Each episode walks its own random permutation of the samples; both the
    single env and the vector env are this class with n = 1 or n = num_envs.
    """

    def __init__(self, config: ImageClassificationConfig, n: int):
        self.config = config
        self.data = data_lib.load(config)
        self.n = n
        self.size = len(self.data)
        self.reward_lambda = (
            config.reward_lambda
            if config.reward_lambda is not None
            else self.data.minority_count / self.data.majority_count
        )
        self.order = np.zeros((n, self.size), np.int64)
        self.position = np.zeros(n, np.int64)
        self.rows = np.arange(n)

    def restart(self, which: np.ndarray, rngs: list[np.random.Generator]) -> None:
        for i in np.flatnonzero(which):
            self.order[i] = rngs[i].permutation(self.size)
        self.position[which] = 0

    def observation(self) -> np.ndarray:
        index = self.order[self.rows, np.minimum(self.position, self.size - 1)]
        return self.data.images[index]

    def label(self) -> np.ndarray:
        return self.data.labels[self.order[self.rows, self.position]]

    def step(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rewards, terminated flags and the true labels for one action per episode."""
        label = self.label()
        minority = self.data.is_minority_label[label]
        correct = action == label
        scale = np.where(minority, 1.0, self.reward_lambda)
        reward = np.where(correct, scale, -scale)
        self.position += 1
        terminated = (minority & ~correct) | (self.position >= self.size)
        return reward, terminated, label


class ImageClassificationEnv(gym.Env):
    """Classify one image per step; mistakes on rare classes end the episode.

    ## Description
    DQNimb, the imbalanced-classification MDP of Lin, Chen & Qi (2020), "Deep
    reinforcement learning for imbalanced classification", Applied
    Intelligence, https://arxiv.org/abs/1901.01379. An episode walks the
    training images in a random order; the agent labels each one. Minority
    samples are rewarded (and punished) 1/λ times as strongly as majority
    ones, so the learned Q-function does not ignore them.

    ## Action space
    `Discrete(K)`: the label. K = 2 in the paper's binary setting (1 =
    minority, 0 = everything else), else one action per class in `classes`.

    ## Observation space
    `Box(0, 1, (H, W, C), float32)`: the image (8×8×1 for the default
    scikit-learn digits, 28×28×1 MNIST/Fashion-MNIST, 32×32×3 CIFAR-10).

    ## Rewards
    +1 / −1 for a correct / wrong label on a minority sample; +λ / −λ on a
    majority sample, with λ = ρ = |minority| / |majority| < 1 (the paper's
    Eq. 6, where λ is the imbalance ratio of the training data).

    ## Starting state and episode end
    Reset draws a new permutation of the data and shows its first image.
    The episode terminates when a minority sample is misclassified, or
    after the last image (both are terminal: discount 0).

    ## Arguments
    `gymnasium.make("tfrl/ImageClassification-v0", dataset="digits",
    minority_classes=(2,), imbalance_ratio=0.1, ...)`; see
    `ImageClassificationConfig`. `tfrl.envs.make(id, num_envs=N)` uses
    `ImageClassificationVectorEnv`, which steps N episodes as one numpy
    computation.

    ## Version history
    - v0: initial version.
    """

    metadata = {"render_modes": []}

    def __init__(self, **config: Any):
        self.config = ImageClassificationConfig(**config)
        self._episodes = _Episodes(self.config, 1)
        images = self._episodes.data.images
        self.observation_space = gym.spaces.Box(0.0, 1.0, images.shape[1:], np.float32)
        self.action_space = gym.spaces.Discrete(self.config.num_labels)
        self.class_names = self._episodes.data.class_names
        self.reward_lambda = self._episodes.reward_lambda

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._episodes.restart(np.ones(1, bool), [self.np_random])
        return self._episodes.observation()[0], {}

    def step(self, action: int):
        if not self.action_space.contains(action):
            raise ValueError(f"action={action!r} is not a label in {self.action_space}.")
        if self._episodes.position[0] >= self._episodes.size:
            raise RuntimeError("The episode is over (no images left): call reset().")
        reward, terminated, label = self._episodes.step(np.asarray([action]))
        observation = self._episodes.observation()[0]
        return observation, float(reward[0]), bool(terminated[0]), False, {"label": int(label[0])}


class ImageClassificationVectorEnv(gym.vector.VectorEnv):
    """`num_envs` copies of `ImageClassificationEnv` stepped as one numpy computation.

    Auto-resets in gymnasium's `NEXT_STEP` mode: the step after an episode
    ends starts a new one (its action is ignored, reward 0). Copy `i` is
    seeded with `seed + i`, like gymnasium's `SyncVectorEnv`.
    """

    metadata = {"render_modes": [], "autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, **config: Any):
        self.config = ImageClassificationConfig(**config)
        self.num_envs = num_envs
        self._episodes = _Episodes(self.config, num_envs)
        images = self._episodes.data.images
        self.single_observation_space = gym.spaces.Box(0.0, 1.0, images.shape[1:], np.float32)
        self.single_action_space = gym.spaces.Discrete(self.config.num_labels)
        self.observation_space = gym.vector.utils.batch_space(
            self.single_observation_space, num_envs
        )
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self.class_names = self._episodes.data.class_names
        self.reward_lambda = self._episodes.reward_lambda
        self._rngs = [np.random.default_rng() for _ in range(num_envs)]
        self._ended = np.zeros(num_envs, bool)

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None):
        if seed is not None:
            seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, int) else seed
            self._rngs = [np.random.default_rng(s) for s in seeds]
        everyone = np.ones(self.num_envs, bool)
        self._episodes.restart(everyone, self._rngs)
        self._ended[:] = False
        return self._episodes.observation(), {}

    def step(self, actions: Any):
        actions = np.asarray(actions, np.int64).reshape(self.num_envs)
        restarting = self._ended.copy()
        if restarting.any():
            self._episodes.restart(restarting, self._rngs)
        reward, terminated, label = self._episodes.step(actions)
        if restarting.any():
            self._episodes.position[restarting] = 0  # a new episode shows its first image
            reward[restarting] = 0.0
            terminated[restarting] = False
        self._ended = terminated
        return (
            self._episodes.observation(),
            reward.astype(np.float64),
            terminated,
            np.zeros(self.num_envs, bool),
            {"label": label},
        )
