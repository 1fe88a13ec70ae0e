"""Keeps the terminal clean: TensorFlow's start-up noise off unless asked for.

TensorFlow prints pages of C++ log lines (CUDA, cuDNN, oneDNN, CPU features)
and the `gym` package that TF-Agents imports prints a deprecation notice.
`quiet()` must run before TensorFlow is imported; the `tfrl` command and the
applications call it first. Set `TFRL_VERBOSE=1` (or pass `--verbose` to the
CLI) to see everything.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings

__all__ = ["quiet", "verbose_requested"]


def verbose_requested() -> bool:
    """True when the user asked for TensorFlow's own logs (`TFRL_VERBOSE=1`)."""
    return os.environ.get("TFRL_VERBOSE", "").lower() in ("1", "true", "yes")


def quiet(verbose: bool | None = None) -> None:
    """Silences TensorFlow's C++ logs and import-time notices.

    Args:
        verbose: True leaves every log on. Defaults to `verbose_requested()`.
    """
    if verbose is None:
        verbose = verbose_requested()
    if verbose:
        os.environ["TFRL_VERBOSE"] = "1"
        return
    if not os.environ.get("TF_CPP_MIN_LOG_LEVEL"):
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    # autograph's generated code trips Python 3.11's `is` with a literal check.
    warnings.filterwarnings("ignore", category=SyntaxWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="tensorflow_probability")
    # TF-Agents policies carry tfp distribution specs; saving them warns on every export.
    warnings.filterwarnings("ignore", message="Encoding a StructuredValue")
    # gym (pulled in by TF-Agents) prints its notice straight to stderr on import.
    with contextlib.redirect_stderr(io.StringIO()):
        import tensorflow as tf
        import tf_agents  # noqa: F401

        with contextlib.suppress(ImportError):
            import gym  # noqa: F401
    tf.get_logger().setLevel(logging.ERROR)
    with contextlib.suppress(ImportError):
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    sys.stderr.flush()
