"""Keeps the terminal clean: third-party start-up noise off unless asked for.

TensorFlow prints pages of C++ log lines (CUDA, cuDNN, oneDNN, CPU features),
TF and TF-Agents log deprecation notices, autograph's generated code trips
Python 3.11's `SyntaxWarning`, saving a policy warns about `StructuredValue`s,
and the `gym` package that TF-Agents imports prints a deprecation banner.
A user can do nothing about any of it, so `import tfrl` turns it off
(`hush_imports()`, before TensorFlow is imported). Warnings from tfrl's own
code and the user's still show, and so do TF's and absl's other log
messages (e.g. TF's retracing warning): only the known noisy messages are
filtered (`KNOWN_NOISE`), and no logger's level is changed. The CLI and the
applications (`quiet()`) also raise TF's and absl's loggers to ERROR.
Set `TFRL_VERBOSE=1` (or pass `--verbose` to the CLI) to see everything.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator

__all__ = [
    "KNOWN_NOISE",
    "THIRD_PARTY_WARNINGS",
    "hush_imports",
    "native_stderr_hidden",
    "quiet",
    "verbose_requested",
]

# Packages whose warnings a tfrl user cannot act on.
_THIRD_PARTY = (
    r"(tensorflow|tensorflow_probability|tf_agents|keras|absl|gym|google|flatbuffers)(\.|$)"
)

# (action, message regex, category, module regex) as for warnings.filterwarnings.
THIRD_PARTY_WARNINGS: tuple[tuple[str, str, type[Warning], str], ...] = (
    ("ignore", "", DeprecationWarning, _THIRD_PARTY),
    ("ignore", "", PendingDeprecationWarning, _THIRD_PARTY),
    ("ignore", "", FutureWarning, _THIRD_PARTY),
    # autograph compiles converted code whose `x is ()` checks Python 3.11 flags; the
    # warning's module is the generated file's path (tempfile prefix in autograph's loader).
    ("ignore", r'"is( not)?" with a literal', SyntaxWarning, r".*__autograph_generated_file"),
    # TF-Agents policies carry tfp distribution specs; saving them warns on every export.
    ("ignore", "Encoding a StructuredValue", UserWarning, ""),
    ("ignore", "", UserWarning, r"tensorflow_probability(\.|$)"),
)
_undo: Callable[[], None] | None = None  # set while hush_imports() is in effect

# Python-side loggers of TF, TF-Agents (absl) and TF's deprecation notices.
_LOGGERS = ("tensorflow", "absl", "h5py")

# Messages of the `tensorflow` and `absl` loggers a tfrl user cannot act on.
KNOWN_NOISE: tuple[str, ...] = (
    r"is not a valid tf\.function parameter name\. Sanitizing",  # every policy export
    r"is deprecated and will be removed",  # TF's deprecation notices (with the next one)
    r"^Instructions for updating",
    r"^Found untraced functions such as",  # SavedModel export of Keras layers
)


class _KnownNoise(logging.Filter):
    """Drops the records whose message matches `KNOWN_NOISE`."""

    _pattern = re.compile("|".join(f"(?:{p})" for p in KNOWN_NOISE), re.M)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            return not self._pattern.search(record.getMessage())
        except Exception:  # a malformed record is not ours to drop
            return True


_NOISE_FILTER = _KnownNoise()
_FILTERED = ("tensorflow", "absl")


def verbose_requested() -> bool:
    """True when the user asked for third-party logs (`TFRL_VERBOSE=1`)."""
    return os.environ.get("TFRL_VERBOSE", "").lower() in ("1", "true", "yes")


def _silence_gym_banner() -> tuple[dict, dict] | None:
    """Empties the table gym's import banner comes from; returns (table, old contents)."""
    # gym prints the notice gym_notices holds for its version when it is first
    # imported (by TF-Agents); an empty table prints nothing, at no import cost.
    try:
        from gym_notices import notices
    except ImportError:
        return None
    saved = dict(notices.notices)
    notices.notices.clear()
    return notices.notices, saved


def _set_logger_levels() -> None:
    for name in _LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    if "tensorflow" in sys.modules:
        # TF resets its logger to INFO in interactive sessions when it creates it.
        sys.modules["tensorflow"].get_logger().setLevel(logging.ERROR)
    if "absl.logging" in sys.modules:
        # absl's own scale (ERROR is -2), not Python's: Python's 40 would mean "log everything".
        absl_logging = sys.modules["absl.logging"]
        absl_logging.set_verbosity(absl_logging.ERROR)


def hush_imports() -> None:
    """What `import tfrl` does unless `TFRL_VERBOSE=1`: no third-party start-up noise.

    Sets `TF_CPP_MIN_LOG_LEVEL=3` (unless already set; it only takes effect if
    TensorFlow is not yet imported): 3 rather than 2 because TF 2.15's wheel
    logs three C++ ERROR lines at every start-up (cuDNN/cuFFT/cuBLAS "Unable
    to register factory"), even without a GPU. Adds a filter for the
    `KNOWN_NOISE` messages to TF's and absl's loggers (their levels stay as
    they are), empties gym's import banner and filters
    `THIRD_PARTY_WARNINGS`. `quiet(verbose=True)` undoes it.
    """
    global _undo
    if verbose_requested() or _undo is not None:
        return
    env_set = "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    before = list(warnings.filters)
    for action, message, category, module in THIRD_PARTY_WARNINGS:
        warnings.filterwarnings(action, message=message, category=category, module=module)
    added = [f for f in warnings.filters if f not in before]
    levels = {name: logging.getLogger(name).level for name in _LOGGERS}
    gym_notices = _silence_gym_banner()

    def undo() -> None:
        if env_set:
            os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
        warnings.filters[:] = [f for f in warnings.filters if f not in added]
        warnings._filters_mutated()
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        for name in _FILTERED:
            logging.getLogger(name).removeFilter(_NOISE_FILTER)
        if gym_notices is not None:
            gym_notices[0].update(gym_notices[1])

    _undo = undo
    for name in _FILTERED:
        logging.getLogger(name).addFilter(_NOISE_FILTER)


def quiet(verbose: bool | None = None) -> None:
    """Silences third-party start-up noise, or (verbose) turns it all on.

    The CLI and the applications call this first; it also imports TensorFlow,
    so its one-time start-up cost is paid before any progress output, and
    raises TF's and absl's Python loggers to ERROR for the process.

    Args:
        verbose: True leaves every log on (and sets `TFRL_VERBOSE=1` for
            subprocesses). Default `verbose_requested()`.
    """
    if verbose is None:
        verbose = verbose_requested()
    global _undo
    if verbose:
        os.environ["TFRL_VERBOSE"] = "1"
        if _undo is not None:
            _undo()
            _undo = None
        return
    hush_imports()
    import tensorflow  # noqa: F401
    import tf_agents  # noqa: F401

    _set_logger_levels()


@contextlib.contextmanager
def native_stderr_hidden() -> Iterator[None]:
    """Sends what C++ code writes to stderr to /dev/null (unless `TFRL_VERBOSE=1`).

    For the few places where TensorFlow logs through absl's C++ logger, which
    ignores `TF_CPP_MIN_LOG_LEVEL`: XLA's first compilation prints "All log
    messages before absl::InitializeLog() is called are written to STDERR"
    and "Compiled cluster using XLA!". Python's own `sys.stderr` output is
    flushed first; errors still arrive as exceptions.
    """
    if verbose_requested():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
