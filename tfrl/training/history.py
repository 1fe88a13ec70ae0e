"""`History`: what `Trainer.fit` records, Keras-style."""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["History"]


@dataclasses.dataclass
class History:
    """Per-iteration logs and evaluation results of a `fit`.

    Attributes:
        history: metric name → list of values, one per logged iteration (as in
            `keras.callbacks.History.history`); always has "env_steps".
        eval_steps: env steps at each evaluation.
        eval_returns: mean return of each evaluation.
        eval_stds: standard deviation of each evaluation's returns.
        eval_seconds: wall time spent evaluating (excluded from "train_seconds").
    """

    history: dict[str, list[Any]] = dataclasses.field(default_factory=dict)
    eval_steps: list[int] = dataclasses.field(default_factory=list)
    eval_returns: list[float] = dataclasses.field(default_factory=list)
    eval_stds: list[float] = dataclasses.field(default_factory=list)
    eval_seconds: float = 0.0

    def log(self, logs: dict[str, Any]) -> None:
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def log_eval(self, env_steps: int, mean: float, std: float, seconds: float) -> None:
        self.eval_steps.append(int(env_steps))
        self.eval_returns.append(float(mean))
        self.eval_stds.append(float(std))
        self.eval_seconds += seconds

    def first_step_reaching(self, target: float) -> int | None:
        """Env steps at the first evaluation whose mean return is ≥ `target`."""
        for step, ret in zip(self.eval_steps, self.eval_returns):
            if ret >= target:
                return step
        return None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        return cls(**data)
