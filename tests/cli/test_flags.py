import dataclasses

import pytest

from tfrl.cli.flags import parse, parser_for


@dataclasses.dataclass
class Args:
    total_env_steps: int = 100
    learning_rate: float = 1e-3
    name: str = "x"
    require_win: bool = True
    plot: bool = False


def test_defaults_and_typed_flags():
    assert parse(Args, argv=[]) == Args()
    args = parse(Args, argv=["--total-env-steps", "7", "--learning-rate", "0.5", "--name", "y"])
    assert (args.total_env_steps, args.learning_rate, args.name) == (7, 0.5, "y")


def test_bools_are_switches_not_strings():
    # type=bool would read "--require-win False" as True; switches cannot be misread.
    args = parse(Args, argv=["--no-require-win", "--plot"])
    assert args.require_win is False and args.plot is True


def test_a_bad_value_is_refused_by_argparse():
    with pytest.raises(SystemExit):
        parse(Args, argv=["--total-env-steps", "many"])


@dataclasses.dataclass
class Documented:
    budget: int = 10
    """env steps to train for, 100% of them"""
    mode: str = dataclasses.field(default="fast", metadata={"choices": ("fast", "exact")})
    """how to pick"""
    plot: bool = False


def test_help_comes_from_attribute_docstrings_and_choices_are_enforced(capsys):
    text = " ".join(parser_for(Documented).format_help().split())
    assert "--budget BUDGET env steps to train for, 100% of them (default: 10)" in text
    assert "--mode {fast,exact} how to pick (default: fast)" in text
    assert "--plot, --no-plot default: False" in text
    assert parse(Documented, argv=["--mode", "exact"]).mode == "exact"
    with pytest.raises(SystemExit):
        parse(Documented, argv=["--mode", "slow"])
    assert "invalid choice: 'slow'" in capsys.readouterr().err
