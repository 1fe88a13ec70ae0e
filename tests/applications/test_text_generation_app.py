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
            "--max-new-tokens", "8", "--output", str(tmp_path / "run"),
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
