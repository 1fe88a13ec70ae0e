"""gymnasium environments as TF-Agents `PyEnvironment`s.

gymnasium splits an episode's end into `terminated` (the MDP reached a
terminal state: no future reward) and `truncated` (a time limit or other cut
from outside the MDP: the state still has a value). TF-Agents marks both with
`StepType.LAST` and tells them apart by the discount, so:

- terminated → `LAST` with discount 0 (targets do not bootstrap);
- truncated  → `LAST` with discount 1 (targets bootstrap from the next state);
- the step after a `LAST` is a reset → `FIRST` with reward 0, discount 1.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from tf_agents.environments import py_environment
from tf_agents.trajectories import time_step as ts

from tfrl.envs.specs import spec_from_space, to_spec_dtype
from tfrl.errors import ConfigError

__all__ = ["GymnasiumEnvironment", "VectorGymnasiumEnvironment"]


def _discrete_action(action: Any, space: gym.Space) -> Any:
    if isinstance(space, gym.spaces.Discrete):
        return int(action)
    return np.asarray(action)


class _GymnasiumAdapter(py_environment.PyEnvironment):
    """What both adapters share: the wrapped env, its specs, seeding, closing."""

    def __init__(
        self, env: Any, observation_space: gym.Space, action_space: gym.Space, seed: int | None
    ):
        super().__init__(handle_auto_reset=False)
        self.gym_env = env
        self._seed = seed
        self._observation_spec = spec_from_space(observation_space, "observation")
        self._action_spec = spec_from_space(action_space, "action")

    def observation_spec(self) -> Any:
        return self._observation_spec

    def action_spec(self) -> Any:
        return self._action_spec

    def _reset_gym_env(self) -> Any:
        """Resets the wrapped env (seeded the first time) and returns the observation."""
        observation, _ = self.gym_env.reset(seed=self._seed)
        self._seed = None
        return to_spec_dtype(observation, self._observation_spec)

    def get_info(self) -> Any:
        return None

    def render(self, mode: str = "rgb_array") -> Any:
        return self.gym_env.render()

    def close(self) -> None:
        self.gym_env.close()


class GymnasiumEnvironment(_GymnasiumAdapter):
    """One gymnasium `Env` as an unbatched TF-Agents `PyEnvironment`.

    Args:
        env: the gymnasium environment.
        seed: seeds the first `reset()`; later resets continue that RNG stream.
    """

    def __init__(self, env: gym.Env, seed: int | None = None):
        super().__init__(env, env.observation_space, env.action_space, seed)
        self._done = True

    def _reset(self) -> ts.TimeStep:
        observation = self._reset_gym_env()
        self._done = False
        return ts.restart(observation)

    def _step(self, action: Any) -> ts.TimeStep:
        if self._done:
            return self._reset()
        observation, reward, terminated, truncated, _ = self.gym_env.step(
            _discrete_action(action, self.gym_env.action_space)
        )
        observation = to_spec_dtype(observation, self._observation_spec)
        reward = np.asarray(reward, dtype=np.float32)
        self._done = bool(terminated or truncated)
        if terminated:
            return ts.termination(observation, reward)
        if truncated:
            return ts.truncation(observation, reward)
        return ts.transition(observation, reward)


class VectorGymnasiumEnvironment(_GymnasiumAdapter):
    """A gymnasium `VectorEnv` as one batched TF-Agents `PyEnvironment`.

    The vector env must auto-reset in gymnasium's `NEXT_STEP` mode (the
    default): the call after a sub-env's episode ends resets it and ignores
    its action, which is exactly TF-Agents' `LAST` → `FIRST` sequence.

    Args:
        env: the gymnasium vector environment.
        seed: seeds the first `reset()` (sub-env `i` gets `seed + i`).
    """

    def __init__(self, env: gym.vector.VectorEnv, seed: int | None = None):
        mode = env.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP)
        if mode != gym.vector.AutoresetMode.NEXT_STEP:
            raise ConfigError(
                f"The vector env auto-resets in mode {mode}; tfrl needs "
                "AutoresetMode.NEXT_STEP (gymnasium's default). Create it with "
                "autoreset_mode=gymnasium.vector.AutoresetMode.NEXT_STEP."
            )
        super().__init__(env, env.single_observation_space, env.single_action_space, seed)
        self._num_envs = env.num_envs
        self._discrete = isinstance(env.single_action_space, gym.spaces.Discrete)
        self._done = np.zeros(self._num_envs, dtype=bool)
        self._started = False

    @property
    def batched(self) -> bool:
        return True

    @property
    def batch_size(self) -> int:
        return self._num_envs

    def _reset(self) -> ts.TimeStep:
        observation = self._reset_gym_env()
        self._started = True
        self._done[:] = False
        n = self._num_envs
        return ts.TimeStep(
            step_type=np.full(n, ts.StepType.FIRST, dtype=np.int32),
            reward=np.zeros(n, dtype=np.float32),
            discount=np.ones(n, dtype=np.float32),
            observation=observation,
        )

    def _step(self, action: Any) -> ts.TimeStep:
        if not self._started:
            return self._reset()
        action = np.asarray(action)
        if self._discrete:
            action = action.astype(np.int64)
        observation, reward, terminated, truncated, _ = self.gym_env.step(action)
        terminated = np.asarray(terminated, dtype=bool)
        truncated = np.asarray(truncated, dtype=bool)
        restarted = self._done
        ended = (terminated | truncated) & ~restarted
        step_type = np.where(
            restarted, ts.StepType.FIRST, np.where(ended, ts.StepType.LAST, ts.StepType.MID)
        ).astype(np.int32)
        discount = np.where(terminated & ~restarted, 0.0, 1.0).astype(np.float32)
        reward = np.where(restarted, 0.0, reward).astype(np.float32)
        self._done = ended
        return ts.TimeStep(
            step_type=step_type,
            reward=reward,
            discount=discount,
            observation=to_spec_dtype(observation, self._observation_spec),
        )
