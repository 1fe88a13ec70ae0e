"""`import tfrl` keeps third-party start-up noise off the terminal unless TFRL_VERBOSE=1."""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# TensorFlow's C++ logger: "2026-11-25 21:08:37.981146: I tensorflow/core/util/port.cc:113] ..."
CPP_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] \S+:\d+\]", re.M)
# absl's C++ logger (XLA): "I0000 00:00:1764133200.123456   42 device_compiler.h:186] ..."
ABSL_LOG_LINE = re.compile(r"^[IWEF]\d{4} [\d:.]+ +\d+ \S+:\d+\]", re.M)
GYM_BANNER = "Gym has been unmaintained"

TRAIN = """
import warnings
import tfrl

# Past learning_starts, so the tuned row's XLA-compiled train phase runs (and compiles).
trainer = tfrl.train("CartPole-v1", agent="dqn", total_env_steps=1280, verbose=0)
print("trained", trainer.env_steps)
"""


def run_python(code, tmp_path, **env):
    environ = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",)}
    environ.pop("TFRL_VERBOSE", None)
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.mark.slow
def test_import_tfrl_then_train_prints_only_our_own_output(tmp_path):
    out = run_python(TRAIN + 'warnings.warn("a warning of our own")\n', tmp_path)
    assert not CPP_LOG_LINE.search(out) and not ABSL_LOG_LINE.search(out), out
    assert GYM_BANNER not in out
    assert "WARNING:" not in out and "Deprecat" not in out and "SyntaxWarning" not in out
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines[0] == "trained 1280"
    # Warnings from tfrl's and the user's own code still show.
    assert "UserWarning: a warning of our own" in out


@pytest.mark.slow
def test_tfrl_verbose_shows_third_party_logs(tmp_path):
    out = run_python(TRAIN, tmp_path, TFRL_VERBOSE="1")
    assert CPP_LOG_LINE.search(out)
    assert GYM_BANNER in out


def test_cli_verbose_undoes_what_import_did(tmp_path):
    # The CLI imports tfrl (hushed) before it reads --verbose, then calls quiet(verbose=True).
    code = """
import os, warnings
import tfrl
from gym_notices import notices
env = os.environ
state = lambda: (env.get("TF_CPP_MIN_LOG_LEVEL"), len(warnings.filters), len(notices.notices))
hushed = state()
tfrl.console.quiet(verbose=True)
print((hushed, state()))
"""
    hushed, verbose = eval(run_python(code, tmp_path).strip().splitlines()[-1])
    assert hushed[0] == "3" and verbose[0] is None
    assert hushed[1] - verbose[1] == len(__import__("tfrl").console.THIRD_PARTY_WARNINGS)
    assert hushed[2] == 0 and verbose[2] > 0


def test_users_own_warnings_and_tf_retracing_warning_still_show(tmp_path):
    code = """
import tfrl
import tensorflow as tf
from absl import logging

compile("x = 1 is ()", "user_code.py", "exec")  # a SyntaxWarning in the user's code
logging.warning("an absl warning of our own")

@tf.function
def double(x):
    return 2 * x

for i in range(8):  # a Python number retraces every call: TF warns
    double(i)
tf.get_logger().warning("x is deprecated and will be removed")  # known noise: hidden
"""
    out = run_python(code, tmp_path)
    assert "user_code.py:1: SyntaxWarning" in out, out
    assert "an absl warning of our own" in out, out
    assert "triggered tf.function retracing" in out, out
    assert "deprecated and will be removed" not in out, out
