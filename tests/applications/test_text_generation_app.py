"""The text-generation application through its real entry point, on a tiny budget."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
def test_text_generation_application_fine_tunes_plots_and_exports(tmp_path):
    result = subprocess.run(
        [
            sys.executable, "applications/text_generation.py", "--reward", "keyword",
            "--iterations", "1", "--prompts-per-batch", "2", "--group-size", "2",
            "--max-new-tokens", "8", "--stop", "\\n", "--output", str(tmp_path / "run"),
            "--export-base", str(tmp_path), "--verbose", "0",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Before fine-tuning:" in result.stdout and "After fine-tuning:" in result.stdout
    assert "RLOO on held-out prompts: reward" in result.stdout
    assert "Diversity: distinct-2" in result.stdout
    assert os.path.isfile(tmp_path / "run" / "curves.png")
    assert os.path.isfile(tmp_path / "text_generator" / "1" / "saved_model.pb")


@pytest.fixture
def app(load_app):
    return load_app("text_generation")


@pytest.mark.parametrize(
    "flag, value, choices",
    [("--method", "foo", "'ppo', 'rloo', 'grpo'"), ("--reward", "foo", "'speaker', 'keyword'")],
)
def test_an_unknown_method_or_reward_stops_at_parsing(
    app, monkeypatch, capsys, flag, value, choices
):
    monkeypatch.setattr(sys, "argv", ["text_generation.py", flag, value])
    with pytest.raises(SystemExit) as stopped:
        app.parse_args()
    assert stopped.value.code == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert f"argument {flag}: invalid choice: 'foo'" in error and choices in error


def test_bad_numbers_stop_before_the_lm_loads(app, monkeypatch, capsys):
    def no_lm(**kwargs):
        raise AssertionError("the LM loaded before the flags were checked")

    monkeypatch.setattr(app.tfrl.text, "pretrained_lm", no_lm)
    for fields, message in [
        ({"group_size": 1}, "group_size=1 must be a whole number ≥ 2"),
        ({"iterations": 0}, "iterations=0 must be a whole number ≥ 1"),
        ({"max_new_tokens": 2000}, "max_length=2000 exceeds the limit"),
    ]:
        assert app.main(app.Args(**fields)) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"text_generation.py: error: {message}") and err.count("\n") == 1
