"""gymnasium ⇄ TF-Agents: spaces to specs, single and vectorized environments."""

from tfrl.envs.gymnasium_env import GymnasiumEnvironment, VectorGymnasiumEnvironment
from tfrl.envs.make import made_from, make, make_py
from tfrl.envs.registry import list_ids
from tfrl.envs.specs import spec_from_space

__all__ = [
    "GymnasiumEnvironment",
    "VectorGymnasiumEnvironment",
    "list_ids",
    "made_from",
    "make",
    "make_py",
    "spec_from_space",
]
