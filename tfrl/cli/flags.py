"""Command-line flags from a dataclass of hyper-parameters, for scripts like `applications/`.

@dataclasses.dataclass
class Args:
    total_env_steps: int = 100_000
    seed: int = 0

args = tfrl.cli.flags.parse(Args, __doc__)  # --total-env-steps N --seed N
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, TypeVar

__all__ = ["parse", "parser_for"]

T = TypeVar("T")


def parser_for(cls: type, description: str | None = None) -> argparse.ArgumentParser:
    """An ArgumentParser with one `--field-name` flag per field of dataclass `cls`.

    A flag's type is its default's type; a bool field becomes `--x/--no-x`.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"parser_for() needs a dataclass, got {cls!r}.")
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for field in dataclasses.fields(cls):
        flag = f"--{field.name.replace('_', '-')}"
        default: Any = field.default
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        else:
            parser.add_argument(flag, type=type(default), default=default)
    return parser


def parse(cls: type[T], description: str | None = None, argv: list[str] | None = None) -> T:
    """Parses `argv` (default: sys.argv) into an instance of dataclass `cls`."""
    return cls(**vars(parser_for(cls, description).parse_args(argv)))
