"""The progress line `Trainer.fit(verbose=1)` prints, in the manner of Keras' Progbar.

On a terminal one line is redrawn in place; elsewhere (CI logs, files) a line
is printed after each evaluation and at the end, so logs stay readable.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

__all__ = ["ProgressLine"]

_BAR_WIDTH = 24


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
        stream: where to write. Default `sys.stdout`.
        interactive: redraw one line in place. Default: `stream.isatty()`.
    """

    def __init__(self, target: int, stream: TextIO | None = None, interactive: bool | None = None):
        self.target = target
        self.stream = stream or sys.stdout
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self._start = time.perf_counter()
        self._first_step: int | None = None
        self._width = 0
        self._printed_step: int | None = None

    def render(self, env_steps: int, logs: dict) -> str:
        done = min(env_steps / self.target, 1.0)
        filled = int(_BAR_WIDTH * done)
        bar = "=" * filled + (">" if filled < _BAR_WIDTH else "") + "." * (_BAR_WIDTH - filled - 1)
        width = len(f"{self.target:,}")
        parts = [f"{env_steps:>{width},}/{self.target:,} [{bar[:_BAR_WIDTH]}]"]
        parts.append(f"{logs.get('steps_per_sec', 0.0):,.0f} steps/s")
        if not math.isnan(logs.get("train_return", math.nan)):
            parts.append(f"return {logs['train_return']:.1f}")
        if not math.isnan(logs.get("kl", math.nan)):
            parts.append(f"kl {logs['kl']:.3g}")
        if "loss" in logs:
            parts.append(f"loss {logs['loss']:.4g}")
        if logs.get("last_eval") is not None:
            parts.append(f"eval {logs['last_eval']:.1f}")
        elapsed = time.perf_counter() - self._start
        if self._first_step is None:
            self._first_step = env_steps
        rate = (env_steps - self._first_step) / elapsed if elapsed > 0 else 0.0
        if env_steps < self.target and rate > 0:
            parts.append(f"ETA {_duration((self.target - env_steps) / rate)}")
        else:
            parts.append(f"{_duration(elapsed)} elapsed")
        return " - ".join(parts)

    def update(self, env_steps: int, logs: dict, evaluated: bool = False) -> None:
        line = self.render(env_steps, logs)
        if self.interactive:
            pad = max(self._width - len(line), 0)
            self.stream.write("\r" + line + " " * pad)
            self._width = len(line)
        elif evaluated:
            self.stream.write(line + "\n")
            self._printed_step = env_steps
        self.stream.flush()

    def close(self, env_steps: int, logs: dict) -> None:
        """Leaves the final state on its own line."""
        if self.interactive:
            self.stream.write("\n")
        elif self._printed_step != env_steps:
            self.stream.write(self.render(env_steps, logs) + "\n")
        self.stream.flush()
