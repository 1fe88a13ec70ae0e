"""Configuration of the learning-rate control environment."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from environments.training_control.tasks import parse_task
from tfrl.errors import ConfigError
from tfrl.keras import features

__all__ = ["TrainingControlConfig"]

_OPTIMIZERS = ("sgd", "adam")


@dataclasses.dataclass
class TrainingControlConfig:
    """What is trained in each episode and how.

    Attributes:
        tasks: "<model>:<dataset>" pairs (see `environments.training_control.tasks`);
            each episode trains one, drawn uniformly. Default ("mlp:digits",).
        model_factory: your own `(input_shape, num_classes) → keras.Model` (logits
            out); replaces the tasks' model. Default None.
        dataset_factory: your own `() → (x_train, y_train, x_val, y_val)` (integer
            labels); replaces the tasks' data. Default None.
        epochs: epochs per episode; the controller decides after each but the
            last (epochs − 1 decisions). Default 15.
        batch_size: training batch size. Default 64.
        optimizer: "sgd" (momentum 0.9, default) or "adam".
        initial_learning_rate: a rate, or (low, high) to draw one log-uniformly
            per episode. Default (0.003, 0.3).
        final_reward_weight: weight of the final validation accuracy added to
            the last reward. Default 1.0.
        lr_range: the controlled rate stays within the episode's initial rate
            ÷ down and × up, given as (down, up) or one factor for both.
            Default (10, 2) (`tfrl.keras.features.LR_RANGE`, as in `RLController`).
    """

    tasks: tuple[str, ...] = ("mlp:digits",)
    model_factory: Callable[..., Any] | None = None
    dataset_factory: Callable[..., Any] | None = None
    epochs: int = 15
    batch_size: int = 64
    optimizer: str = "sgd"
    initial_learning_rate: float | tuple[float, float] = (0.003, 0.3)
    final_reward_weight: float = 1.0
    lr_range: float | tuple[float, float] = features.LR_RANGE

    def __post_init__(self) -> None:
        if isinstance(self.tasks, str):
            self.tasks = (self.tasks,)
        self.tasks = tuple(self.tasks)
        if not self.tasks:
            raise ConfigError("tasks must name at least one '<model>:<dataset>' task.")
        for task in self.tasks:
            parse_task(task)
        for name in ("model_factory", "dataset_factory"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise ConfigError(f"{name}={value!r} must be callable (or None).")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 2:
            raise ConfigError(f"epochs={self.epochs!r} must be a whole number ≥ 2.")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ConfigError(f"batch_size={self.batch_size!r} must be a whole number ≥ 1.")
        if self.optimizer not in _OPTIMIZERS:
            raise ConfigError(f"optimizer={self.optimizer!r} must be one of {_OPTIMIZERS}.")
        lr = self.initial_learning_rate
        bounds = tuple(lr) if isinstance(lr, (tuple, list)) else (lr, lr)
        if len(bounds) != 2 or not 0 < bounds[0] <= bounds[1] <= 1.0:
            raise ConfigError(
                f"initial_learning_rate={lr!r} must be a rate in (0, 1] or (low, high) with "
                "0 < low ≤ high ≤ 1."
            )
        self.lr_range = features.check_lr_range(self.lr_range, "TrainingControl")
        self.initial_learning_rate = lr if not isinstance(lr, list) else tuple(lr)

    @property
    def learning_rate_bounds(self) -> tuple[float, float]:
        lr = self.initial_learning_rate
        return (float(lr[0]), float(lr[1])) if isinstance(lr, tuple) else (float(lr), float(lr))
