import io

from tfrl.training.progress import ProgressLine

LOGS = {"steps_per_sec": 2048.4, "train_return": 21.5, "loss": 0.0123456, "last_eval": 30.25}


def test_log_output_prints_one_line_per_evaluation_and_a_final_line():
    out = io.StringIO()
    progress = ProgressLine(1000, stream=out, interactive=False)
    progress.update(256, LOGS)
    assert out.getvalue() == ""
    progress.update(512, LOGS, evaluated=True)
    progress.close(1000, LOGS)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("  512/1,000 [")
    for part in ("2,048 steps/s", "return 21.5", "loss 0.01235", "eval 30.2"):
        assert part in lines[0]
    assert lines[1].startswith("1,000/1,000 [========================]") and "elapsed" in lines[1]


def test_terminal_output_redraws_one_line():
    out = io.StringIO()
    progress = ProgressLine(100, stream=out, interactive=True)
    progress.update(50, {"steps_per_sec": 10.0})
    progress.update(100, {"steps_per_sec": 10.0})
    progress.close(100, {"steps_per_sec": 10.0})
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and text.count("\n") == 1
    assert "loss" not in text and "eval" not in text


def test_log_output_does_not_repeat_a_final_evaluation_line():
    out = io.StringIO()
    progress = ProgressLine(512, stream=out, interactive=False)
    progress.update(512, LOGS, evaluated=True)
    progress.close(512, LOGS)
    assert len(out.getvalue().splitlines()) == 1
