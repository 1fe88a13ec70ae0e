"""Fixtures: tiny agents of each kind and one export of each."""

from __future__ import annotations

import pytest

import tfrl.export
from tests.export.tiny_agents import KINDS, make_agent


@pytest.fixture(scope="session")
def agents():
    return {kind: make_agent(kind) for kind in KINDS}


@pytest.fixture(scope="session")
def exports(agents, tmp_path_factory):
    """One export per agent kind: {kind: version_dir}."""
    root = tmp_path_factory.mktemp("exports")
    return {kind: tfrl.export.export(agent, str(root / kind)) for kind, agent in agents.items()}
