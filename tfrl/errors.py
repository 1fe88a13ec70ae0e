"""The exceptions tfrl raises.

Every error derives from `TfrlError` and from the builtin it refines, so
`except ValueError` keeps working for code that does not know tfrl.
Messages name the bad value, what was expected and the fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "CheckpointError",
    "ConfigError",
    "ExportError",
    "IncompatibleAgentError",
    "InvalidActionError",
    "MissingDependencyError",
    "SpecError",
    "TfrlError",
    "UnknownNameError",
    "check_names",
    "check_whole_number",
    "did_you_mean",
]


class TfrlError(Exception):
    """Base class of every error raised by tfrl."""


class ConfigError(TfrlError, ValueError):
    """A hyper-parameter, config field or argument has a bad value."""


class UnknownNameError(TfrlError, KeyError):
    """A name (env id, agent, hyper-parameter, model) is not known."""

    def __str__(self) -> str:  # KeyError would quote the whole message.
        return str(self.args[0]) if self.args else ""


class SpecError(TfrlError, TypeError):
    """An environment space or spec that tfrl cannot map."""


class IncompatibleAgentError(TfrlError, TypeError):
    """An agent does not fit an environment's action or observation spec."""


class CheckpointError(TfrlError, RuntimeError):
    """A checkpoint is missing, corrupt or does not match the agent."""


class ExportError(TfrlError, RuntimeError):
    """An export could not be written, loaded or checked."""


class MissingDependencyError(TfrlError, ImportError):
    """An optional dependency is not installed."""


class InvalidActionError(TfrlError, ValueError):
    """An environment was given an action outside its action space."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Returns ` Did you mean 'x'?` for the closest choice, or ''."""
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def check_names(
    names: Iterable[str], known: Iterable[str], problem: str, listing: str = ""
) -> None:
    """Raises `UnknownNameError` for the first of `names` not in `known`.

    The message reads "<problem> 'name'. Did you mean 'x'? <listing>".
    """
    known = set(known)
    for name in names:
        if name not in known:
            raise UnknownNameError(
                f"{problem} {name!r}.{did_you_mean(name, known)} {listing}".rstrip()
            )


def check_whole_number(name: str, value: object, minimum: int = 1, hint: str = "") -> None:
    """Raises `ConfigError` unless `value` is an int (not a bool) ≥ `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name}={value!r} must be a whole number ≥ {minimum}.{hint}")
