import gymnasium as gym
import numpy as np
import pytest

from tfrl.envs import spec_from_space
from tfrl.errors import SpecError


def test_discrete_becomes_scalar_int64_from_zero():
    spec = spec_from_space(gym.spaces.Discrete(3), "action")
    assert spec.shape == () and spec.dtype == np.int64
    assert (spec.minimum, spec.maximum) == (0, 2)


def test_box_keeps_shape_dtype_and_bounds():
    spec = spec_from_space(gym.spaces.Box(-1.0, 2.0, (2, 3), np.float32), "observation")
    assert spec.shape == (2, 3) and spec.dtype == np.float32
    assert np.all(spec.minimum == -1.0) and np.all(spec.maximum == 2.0)


def test_multidiscrete_bounds_per_dimension():
    spec = spec_from_space(gym.spaces.MultiDiscrete([2, 5]), "action")
    assert spec.shape == (2,) and list(spec.maximum) == [1, 4]


def test_dict_space_becomes_dict_of_specs():
    space = gym.spaces.Dict({"a": gym.spaces.Discrete(2), "b": gym.spaces.MultiBinary(4)})
    spec = spec_from_space(space, "observation")
    assert set(spec) == {"a", "b"} and spec["b"].shape == (4,)


def test_unsupported_space_names_itself_and_the_way_out():
    with pytest.raises(SpecError, match=r"Text.*FlattenObservation"):
        spec_from_space(gym.spaces.Text(5), "observation")


def test_discrete_not_starting_at_zero_is_refused():
    with pytest.raises(SpecError, match="starts at 1"):
        spec_from_space(gym.spaces.Discrete(3, start=1), "action")
