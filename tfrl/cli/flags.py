"""Command-line flags from a dataclass of hyper-parameters, for scripts like `applications/`.

@dataclasses.dataclass
class Args:
    total_env_steps: int = 100_000
    "training budget in env steps"  # the string under a field is its flag's --help
    mode: str = dataclasses.field(default="fast", metadata={"choices": ("fast", "exact")})

args = tfrl.cli.flags.parse(Args, __doc__)  # --total-env-steps N --mode fast
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import itertools
import textwrap
from typing import Any, TypeVar

__all__ = ["parse", "parser_for"]

T = TypeVar("T")


def parser_for(cls: type, description: str | None = None) -> argparse.ArgumentParser:
    """An ArgumentParser with one `--field-name` flag per field of dataclass `cls`.

    A flag's type is its default's type; a bool field becomes `--x/--no-x`. Its
    help is the field's `metadata["help"]`, else the string literal under the
    field (an attribute docstring), plus the default; `metadata["choices"]`
    restricts its values.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"parser_for() needs a dataclass, got {cls!r}.")
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    docs = _attribute_docs(cls)
    for field in dataclasses.fields(cls):
        flag = f"--{field.name.replace('_', '-')}"
        default: Any = field.default
        text = field.metadata.get("help", docs.get(field.name, ""))
        text = " ".join(text.split()).replace("%", "%%")
        help = f"{text} (default: %(default)s)" if text else "default: %(default)s"
        if isinstance(default, bool):
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=default, help=help
            )
        else:
            choices = field.metadata.get("choices")
            parser.add_argument(
                flag, type=type(default), default=default, choices=choices, help=help
            )
    return parser


def _attribute_docs(cls: type) -> dict[str, str]:
    """The string literal under each field of `cls`'s source ({} without source)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs = {}
    for field, doc in itertools.pairwise(body):
        if (
            isinstance(field, ast.AnnAssign)
            and isinstance(field.target, ast.Name)
            and isinstance(doc, ast.Expr)
            and isinstance(doc.value, ast.Constant)
            and isinstance(doc.value.value, str)
        ):
            docs[field.target.id] = doc.value.value
    return docs


def parse(cls: type[T], description: str | None = None, argv: list[str] | None = None) -> T:
    """Parses `argv` (default: sys.argv) into an instance of dataclass `cls`."""
    return cls(**vars(parser_for(cls, description).parse_args(argv)))
