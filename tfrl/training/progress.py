"""The progress line `Trainer.fit(verbose=1)` prints, in the manner of Keras' Progbar.

On a terminal one line is redrawn in place; elsewhere (CI logs, files) a line
is printed after each evaluation and at the end, so logs stay readable.

The ETA comes from the rate measured after warm-up: the first iteration and the
first one that trains trace TensorFlow functions and take many times longer
than the rest, so the clock starts again after each of them.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

__all__ = ["ProgressLine"]

_BAR_WIDTH = 24
_now = time.perf_counter  # the clock (tests replace it)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return (
        f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else (f"{seconds // 60}:{seconds % 60:02d}")
    )


class ProgressLine:
    """Shows env steps against the target, speed, returns and loss.

    Args:
        target: env steps `fit` trains to.
        unit: what an env step is, for the rate ("tokens" when fine-tuning an
            LM: "1,200 tokens/s"). Default "steps".
        stream: where to write. Default `sys.stdout`.
        interactive: redraw one line in place. Default: `stream.isatty()`.
    """

    def __init__(
        self,
        target: int,
        stream: TextIO | None = None,
        interactive: bool | None = None,
        unit: str = "steps",
    ):
        self.target = target
        self.unit = unit
        self.stream = stream or sys.stdout
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self._start = _now()
        # (time, env steps) the rate is measured from: set after warm-up iterations.
        self._anchor: tuple[float, int] | None = None
        self._trained = False
        self._width = 0
        self._printed_step: int | None = None

    def _observe(self, env_steps: int, logs: dict) -> None:
        """Restarts the rate's clock after the first iteration and the first that trained."""
        first_training = "loss" in logs and not self._trained
        self._trained = self._trained or "loss" in logs
        if self._anchor is None or first_training:
            self._anchor = (_now(), env_steps)

    def eta(self, env_steps: int) -> float | None:
        """Seconds to the target at the rate measured since warm-up (None before a rate)."""
        if self._anchor is None or env_steps >= self.target:
            return None
        since, steps = self._anchor
        seconds = _now() - since
        if env_steps <= steps or seconds <= 0:
            return None
        return (self.target - env_steps) / ((env_steps - steps) / seconds)

    def render(self, env_steps: int, logs: dict) -> str:
        # The trainer runs whole iterations and may pass the target by a few; the
        # bar stops at the target and the final line says the real count.
        shown = min(env_steps, self.target)
        filled = int(_BAR_WIDTH * shown / self.target)
        bar = "=" * filled + (">" if filled < _BAR_WIDTH else "") + "." * (_BAR_WIDTH - filled - 1)
        width = len(f"{self.target:,}")
        parts = [f"{shown:>{width},}/{self.target:,} [{bar[:_BAR_WIDTH]}]"]
        parts.append(f"{logs.get('steps_per_sec', 0.0):,.0f} {self.unit}/s")
        if not math.isnan(logs.get("train_return", math.nan)):
            parts.append(f"return {logs['train_return']:.1f}")
        if not math.isnan(logs.get("kl", math.nan)):
            parts.append(f"kl {logs['kl']:.3g}")
        if logs.get("paused"):  # an iteration that collected but did not train
            parts.append("paused")
        elif not math.isnan(logs.get("loss", math.nan)):
            parts.append(f"loss {logs['loss']:.4g}")
        if logs.get("last_eval") is not None:
            parts.append(f"eval {logs['last_eval']:.1f}")
        eta = self.eta(env_steps)
        if eta is not None:
            parts.append(f"ETA {_duration(eta)}")
        else:
            parts.append(f"{_duration(_now() - self._start)} elapsed")
        return " - ".join(parts)

    def update(self, env_steps: int, logs: dict, evaluated: bool = False) -> None:
        """Shows the state after one iteration (`evaluated`: it ran an evaluation)."""
        self._observe(env_steps, logs)
        line = self.render(env_steps, logs)
        if self.interactive:
            pad = max(self._width - len(line), 0)
            self.stream.write("\r" + line + " " * pad)
            self._width = len(line)
        elif evaluated:
            self.stream.write(line + self._past_target(env_steps) + "\n")
            self._printed_step = env_steps
        self.stream.flush()

    def close(self, env_steps: int, logs: dict) -> None:
        """Leaves the final state on its own line, with the real count past the target."""
        extra = self._past_target(env_steps)
        if self.interactive:
            self.stream.write(extra + "\n")
        elif self._printed_step != env_steps:  # (an evaluation line already says it all)
            self.stream.write(self.render(env_steps, logs) + extra + "\n")
        self.stream.flush()

    def _past_target(self, env_steps: int) -> str:
        """The real count, for a line past the target (whole iterations overshoot it)."""
        if env_steps <= self.target:
            return ""
        return f" ({env_steps:,} env steps: whole iterations)"
