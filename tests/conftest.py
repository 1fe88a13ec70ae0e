"""Shared test set-up: quiet TensorFlow, deterministic seeds."""

import contextlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tfrl.console import quiet

quiet()


def pytest_sessionfinish(session, exitstatus):
    """Kills processes a test left running, and names them: a leaked child (a
    server's worker, a role of a distributed run) would otherwise keep the test
    run from exiting. (Under pytest-xdist each worker sweeps its own children.)"""
    import psutil

    if session.config.pluginmanager.hasplugin("dsession"):
        return  # the xdist controller: its children are the workers
    for process in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            command = " ".join(process.cmdline())
            if "resource_tracker" in command:
                continue
            print(f"\nconftest: killing a process a test left running: {process.pid} {command}")
            process.kill()
