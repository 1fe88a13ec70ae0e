"""Fixtures: a served tiny DQN export."""

from __future__ import annotations

import pytest

import tfrl.export
from tests.export.tiny_agents import make_agent
from tfrl.serving import ModelConfig, Server


@pytest.fixture(scope="session")
def dqn_agent():
    return make_agent("dqn", seed=0)


@pytest.fixture(scope="session")
def dqn_base(dqn_agent, tmp_path_factory):
    """A model base path holding version 1 of the tiny DQN."""
    base = tmp_path_factory.mktemp("models") / "cartpole_dqn"
    tfrl.export.export(dqn_agent, str(base))
    return str(base)


@pytest.fixture(scope="session")
def other_dqn_agent():
    """A tiny DQN with other weights than `dqn_agent`'s."""
    return make_agent("dqn", seed=7)


@pytest.fixture(scope="session")
def other_export(other_dqn_agent, tmp_path_factory):
    """Version directory of `other_dqn_agent`."""
    base = tmp_path_factory.mktemp("other") / "m"
    return tfrl.export.export(other_dqn_agent, str(base))


@pytest.fixture(scope="module")
def server(dqn_base):
    with Server([ModelConfig("cartpole_dqn", dqn_base)], port=0, max_body_bytes=64 * 1024) as s:
        yield s
