"""README.md runs as written: every ```sh and ```python block, in order, in a fresh copy.

Blocks that train use `readme-test: sub` annotations to shrink their budgets
(see tests/docs/readme_runner.py). A failing block names its README line.
"""

import os

import pytest

from tests.docs.readme_runner import Session, parse

pytestmark = pytest.mark.slow  # an end-to-end run (still part of make test)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
README = os.path.join(ROOT, "README.md")

with open(README) as _f:
    BLOCKS = [b for b in parse(_f.read(), README) if b.runs]


@pytest.fixture(scope="module")
def session():
    with Session(ROOT) as s:
        s.failed = None
        yield s


@pytest.mark.parametrize("block", BLOCKS, ids=[b.name for b in BLOCKS])
def test_readme_block(session, block):
    if session.failed:
        pytest.skip(f"an earlier block ({session.failed}) failed")
    session.failed = block.name
    session.run(block)
    session.failed = None
