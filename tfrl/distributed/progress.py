"""The distributed run's progress line, read from the roles' status files."""

from __future__ import annotations

import sys
import time

from tfrl.distributed.status import read_status

__all__ = ["ProgressLine"]


class ProgressLine:
    """One line: env steps, actor env steps/s, learner updates/s, replay size, latest eval.

    Redrawn in place on a terminal (every second); one line every `every`
    seconds in logs.
    """

    def __init__(self, output_dir: str, target: int, actors: int, every: float):
        self.output_dir, self.target, self.actors, self.every = output_dir, target, actors, every
        self.interactive = sys.stdout.isatty()
        self._start = self._last = time.monotonic()

    def line(self) -> str:
        server = read_status(self.output_dir, "replay-server") or {}
        learner = read_status(self.output_dir, "learner") or {}
        now = time.time()
        rates = [
            s.get("env_steps_per_sec", 0.0)
            for s in (read_status(self.output_dir, f"actor-{k}") for k in range(self.actors))
            if s and now - s["time"] < 10
        ]
        parts = [
            f"env steps {server.get('inserted', 0):,}/{self.target:,}",
            f"actors {len(rates)}/{self.actors} {sum(rates):,.0f} env steps/s",
            f"learner {learner.get('train_steps_per_sec', 0.0):,.0f} updates/s",
            f"replay {server.get('replay_size', 0):,}",
        ]
        if learner.get("eval_return") is not None:
            parts.append(f"eval {learner['eval_return']:.1f}")
        parts.append(f"{time.monotonic() - self._start:,.0f} s")
        return " - ".join(parts)

    def update(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._last < (1.0 if self.interactive else self.every):
            return
        self._last = time.monotonic()
        end = "" if self.interactive and not force else "\n"
        print(("\r" if self.interactive else "") + self.line(), end=end, flush=True)
