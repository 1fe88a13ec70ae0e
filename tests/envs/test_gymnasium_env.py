"""terminated/truncated mapping, vector batching and auto-reset."""

import gymnasium as gym
import numpy as np
import pytest
from tf_agents.trajectories import time_step as ts

import tfrl
from tfrl.errors import ConfigError, UnknownNameError

FIRST, MID, LAST = ts.StepType.FIRST, ts.StepType.MID, ts.StepType.LAST


class Countdown(gym.Env):
    """Reward 1 per step; terminates after `length` steps (or is cut by a TimeLimit)."""

    observation_space = gym.spaces.Box(0, 100, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, length=3):
        self.length = length

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([self.t], np.float32), {}

    def step(self, action):
        self.t += 1
        return np.array([self.t], np.float32), 1.0, self.t >= self.length, False, {}


gym.register("tests/Countdown-v0", entry_point=Countdown)


def _run(py_env, steps, action=0):
    out = [py_env.reset()]
    for _ in range(steps):
        out.append(py_env.step(np.array(action)))
    return out


def test_terminated_is_last_with_zero_discount_then_restart():
    env = tfrl.envs.make_py("tests/Countdown-v0", length=2)
    steps = _run(env, 4)
    assert [int(s.step_type) for s in steps] == [FIRST, MID, LAST, FIRST, MID]
    assert float(steps[2].discount) == 0.0 and float(steps[2].reward) == 1.0
    assert float(steps[3].reward) == 0.0 and float(steps[3].discount) == 1.0


def test_truncated_is_last_but_bootstraps():
    env = tfrl.envs.make_py("tests/Countdown-v0", length=10, max_episode_steps=2)
    steps = _run(env, 3)
    assert [int(s.step_type) for s in steps] == [FIRST, MID, LAST, FIRST]
    assert float(steps[2].discount) == 1.0


def test_vector_env_batches_and_resets_each_copy_on_its_own():
    envs = gym.vector.SyncVectorEnv([lambda: Countdown(2), lambda: Countdown(3)])
    env = tfrl.envs.make_py(envs)
    assert env.batched and env.batch_size == 2
    steps = _run(env, 5, action=np.zeros(2, np.int64))
    types = np.stack([s.step_type for s in steps])
    # copy 0 ends every 2 steps, copy 1 every 3; each restarts on the next call.
    assert types[:, 0].tolist() == [FIRST, MID, LAST, FIRST, MID, LAST]
    assert types[:, 1].tolist() == [FIRST, MID, MID, LAST, FIRST, MID]
    assert steps[2].discount.tolist() == [0.0, 1.0]
    assert steps[3].reward.tolist() == [0.0, 1.0]
    assert steps[3].observation[:, 0].tolist() == [0.0, 3.0]


def test_make_returns_batched_tf_env_with_specs():
    env = tfrl.envs.make("CartPole-v1", num_envs=4, seed=0)
    time_step = env.reset()
    assert env.batch_size == 4
    assert time_step.observation.shape == (4, 4)
    assert env.action_spec().maximum == 1


def test_seeded_envs_reproduce():
    a = tfrl.envs.make("CartPole-v1", num_envs=2, seed=7).reset().observation.numpy()
    b = tfrl.envs.make("CartPole-v1", num_envs=2, seed=7).reset().observation.numpy()
    np.testing.assert_array_equal(a, b)


def test_unknown_id_suggests_the_nearest():
    with pytest.raises(
        UnknownNameError, match=r"CartPol-v1.*Did you mean 'CartPole-v1'.*tfrl envs"
    ):
        tfrl.envs.make("CartPol-v1")


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_num_envs_is_refused(bad):
    with pytest.raises(ConfigError, match="num_envs"):
        tfrl.envs.make("CartPole-v1", num_envs=bad)


def test_tfrl_namespace_is_listed():
    assert "tfrl/MultiArmedBandit-v0" in tfrl.envs.list_ids(namespace="tfrl")
