"""Fixtures: a served tiny DQN export and a small blocking HTTP client."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any

import pytest

# The tiny agents are shared with the export tests.
sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "export"))

from tiny_agents import make_agent

import tfrl.export
from tfrl.serving import ModelConfig, Server


def call(method: str, url: str, body: Any = None, timeout: float = 30) -> tuple[int, Any]:
    """(HTTP status, parsed JSON body). `body` may be bytes or a JSON-able value."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture(scope="session")
def dqn_agent():
    return make_agent("dqn", seed=0)


@pytest.fixture(scope="session")
def dqn_base(dqn_agent, tmp_path_factory):
    """A model base path holding version 1 of the tiny DQN."""
    base = tmp_path_factory.mktemp("models") / "cartpole_dqn"
    tfrl.export.export(dqn_agent, str(base))
    return str(base)


@pytest.fixture(scope="module")
def server(dqn_base):
    with Server([ModelConfig("cartpole_dqn", dqn_base)], port=0, max_body_bytes=64 * 1024) as s:
        yield s
