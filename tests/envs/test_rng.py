import numpy as np

import tfrl
from tfrl.envs.rng import get_rng_states, set_rng_states


def test_restored_rng_states_continue_the_same_random_stream():
    a = tfrl.envs.make("CartPole-v1", num_envs=3, seed=0)
    a.reset()
    states = get_rng_states(a)
    b = tfrl.envs.make("CartPole-v1", num_envs=3, seed=99)
    assert set_rng_states(b, states)
    np.testing.assert_array_equal(a.reset().observation, b.reset().observation)
    np.testing.assert_array_equal(a.reset().observation, b.reset().observation)


def test_single_env_states_round_trip_and_mismatch_is_reported():
    a = tfrl.envs.make("CartPole-v1", seed=1)
    a.reset()
    b = tfrl.envs.make("CartPole-v1", seed=2)
    assert set_rng_states(b, get_rng_states(a))
    np.testing.assert_array_equal(a.reset().observation, b.reset().observation)
    assert not set_rng_states(tfrl.envs.make("CartPole-v1", num_envs=2), get_rng_states(a))
