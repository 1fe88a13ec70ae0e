import os
import subprocess

import pytest

from tests.cli.commands import ROOT, TFRL


@pytest.fixture
def tfrl_cli():
    """Runs the installed `tfrl` command; returns the CompletedProcess."""

    def run(*args, cwd=None, timeout=300):
        return subprocess.run(
            [TFRL, *map(str, args)],
            capture_output=True,
            text=True,
            cwd=cwd or ROOT,
            timeout=timeout,
            env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"},
        )

    return run
