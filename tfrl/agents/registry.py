"""`tfrl.agents.make`: an agent by name, with its hyper-parameters as keywords."""

from __future__ import annotations

import importlib
from typing import Any

from tf_agents.agents import tf_agent

from tfrl.agents.config import config_from_kwargs
from tfrl.errors import ConfigError, UnknownNameError, check_names

__all__ = ["agent_class", "make", "names"]

# name → (module, class); modules import on first use.
_AGENTS: dict[str, tuple[str, str]] = {
    "dqn": ("tfrl.agents.dqn", "DQN"),
    "ddqn": ("tfrl.agents.dqn", "DDQN"),
    "reinforce": ("tfrl.agents.reinforce", "REINFORCE"),
    "ppo": ("tfrl.agents.ppo", "PPO"),
    "softmax": ("tfrl.agents.softmax", "Softmax"),
    "slateq": ("tfrl.agents.slateq", "SlateQ"),
}

# Keyword arguments of `make` that are objects, not config fields.
_OBJECT_ARGS = ("q_network", "actor_network", "value_network", "network", "optimizer")


def names() -> list[str]:
    """The agent names `make` accepts."""
    return sorted(_AGENTS)


def agent_class(name: str) -> type:
    """The class registered under `name` (e.g. "dqn" → `tfrl.agents.DQN`)."""
    check_names([name], _AGENTS, "Unknown agent", f"Available agents: {', '.join(names())}.")
    module, cls = _AGENTS[name]
    return getattr(importlib.import_module(module), cls)


def make(name: str, env: Any, config: Any = None, **hparams: Any) -> tf_agent.TFAgent:
    """Makes an agent for `env`.

    >>> env = tfrl.envs.make("CartPole-v1", num_envs=8)
    >>> agent = tfrl.agents.make("dqn", env, learning_rate=1e-3)

    Args:
        name: one of `names()`: "dqn", "ddqn", "reinforce", "ppo", "softmax", "slateq".
        env: a TF-Agents environment (e.g. from `tfrl.envs.make`); only its
            specs are used.
        config: the agent's config dataclass (e.g. `DQNConfig`); or give fields
            as keywords.
        **hparams: config fields (`learning_rate=1e-3`, ...) and objects:
            `q_network`, `actor_network`, `value_network` (Keras models) and
            `optimizer` (a Keras optimizer), where the agent uses them.

    Returns:
        A TF-Agents `TFAgent` that is also a `tfrl.agents.TfrlAgent`.
    """
    cls = agent_class(name)
    objects = {k: hparams.pop(k) for k in _OBJECT_ARGS if k in hparams}
    config_cls = cls.config_class
    if config is None or isinstance(config, dict):
        config = config_from_kwargs(config_cls, name, {**(config or {}), **hparams})
    elif not isinstance(config, config_cls):
        raise ConfigError(
            f"make({name!r}) needs a {config_cls.__name__} as config=, got "
            f"{type(config).__name__}. Pass {config_cls.__name__}(...), a dict of its "
            "fields, or the fields as keywords."
        )
    elif hparams:
        raise UnknownNameError(
            f"Pass either config= or hyper-parameter keywords to make({name!r}), not both "
            f"(got config and {sorted(hparams)})."
        )
    accepted = cls.object_args
    for key in objects:
        if key not in accepted:
            raise UnknownNameError(
                f"{name!r} does not take {key}=. It takes: {', '.join(accepted) or 'none'}."
            )
    return cls(env.time_step_spec(), env.action_spec(), config, **objects)
