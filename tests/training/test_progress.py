import io

import pytest

from tfrl.training import progress
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


def test_the_rate_names_its_unit_and_an_untrained_iteration_shows_no_loss():
    line = ProgressLine(1000, stream=io.StringIO(), interactive=False, unit="tokens")
    shown = line.render(512, {**LOGS, "loss": float("nan")})
    assert "2,048 tokens/s" in shown and "steps/s" not in shown and "loss" not in shown
    assert "- paused -" in line.render(512, {**LOGS, "paused": 1.0})
    assert "loss" not in line.render(512, {**LOGS, "paused": 1.0})


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


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(progress, "_now", c)
    return c


def eta_part(line):
    parts = [p for p in line.split(" - ") if p.startswith("ETA") or p.endswith("elapsed")]
    return parts[-1]


def test_eta_comes_from_the_rate_after_warm_up(clock):
    line = ProgressLine(10_240, stream=io.StringIO(), interactive=False)
    clock.t = 20.0  # the first iteration traces the collect function: slow
    line.update(256, {"steps_per_sec": 12.8})
    assert eta_part(line.render(256, {})) == "0:20 elapsed"  # no rate measured yet
    clock.t = 21.0
    line.update(512, {"steps_per_sec": 256.0})
    # 256 steps/s since warm-up: 9,728 steps to go take 38 s (not 6:xx from 512 steps in 21 s).
    assert eta_part(line.render(512, {})) == "ETA 0:38"


def test_the_first_training_iteration_counts_as_warm_up(clock):
    line = ProgressLine(10_240, stream=io.StringIO(), interactive=False)
    for t, steps in ((1.0, 256), (2.0, 512), (3.0, 768)):  # collecting only: fast
        clock.t = t
        line.update(steps, {})
    clock.t = 13.0  # first train step: traced, 10 s
    line.update(1_024, {"loss": 1.0})
    clock.t = 15.0  # then 128 steps/s with training
    line.update(1_280, {"loss": 1.0})
    assert line.eta(1_280) == pytest.approx((10_240 - 1_280) / 128)


def test_no_eta_past_the_target_and_no_count_past_it(clock):
    out = io.StringIO()
    line = ProgressLine(20_000, stream=out, interactive=False)
    clock.t = 1.0
    line.update(19_968, {})
    clock.t = 2.0
    line.update(20_224, {}, evaluated=True)  # whole iterations of 256 pass 20,000
    line.close(20_224, {})
    (last,) = out.getvalue().splitlines()  # the final evaluation's line, once
    assert line.eta(20_224) is None
    assert last.startswith("20,000/20,000 [========================]") and "ETA" not in last
    assert last.endswith("(20,224 env steps: whole iterations)")
    assert "20,224/20,000" not in out.getvalue()


def test_fit_progress_line_stops_at_the_target(capsys):
    import tfrl

    tfrl.train("CartPole-v1", agent="dqn", total_env_steps=300, verbose=1)  # 2 x 256 steps
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith("300/300 [") and "env steps: whole iterations" in lines[-1]


def test_log_output_prints_an_overshooting_final_evaluation_once():
    out = io.StringIO()
    progress = ProgressLine(500, stream=out, interactive=False)
    progress.update(512, LOGS, evaluated=True)
    progress.close(512, LOGS)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].endswith("(512 env steps: whole iterations)")
