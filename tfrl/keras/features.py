"""What a learning-rate controller sees and does, shared by `RLController` and the env.

`tfrl/TrainingControl-v1` (training a fresh model per episode) and the
`RLController` callback (inside your `model.fit`) build the same observation
from the same statistics, so a controller trained on the env runs unchanged
in `fit`.

Observation (float32, `OBSERVATION_SIZE` values), after each epoch:

    0  training loss (epoch mean, clipped to [0, 10])
    1  training accuracy (epoch mean)
    2  validation loss (clipped to [0, 10])
    3  validation accuracy
    4  change of the training loss since the previous decision
    5  change of the validation loss since the previous decision
    6  change of the validation accuracy since the previous decision
    7  log10 of the gradient norm as the optimizer applied it:
       ‖Δw‖ / (learning rate · steps) over the epoch (the mean gradient's
       norm for plain SGD), divided by 5. A proxy, not the gradient: with
       momentum the update carries past gradients (the proxy grows up to
       1/(1 − momentum) × along a steady direction), and with adaptive
       optimizers (Adam, RMSprop) the step is normalised per weight, so the
       proxy tracks the update size rather than the gradient's
    8  log10 of the current learning rate, divided by 5
    9  log10 of the learning rate / the initial learning rate
    10 progress: finished epochs / planned epochs

Action: an index into `LR_FACTORS` (×0.5, ×1, ×2), applied to the learning
rate for the next epoch, which stays within a band around the initial rate,
`LR_RANGE` = (10, 2): down to a tenth of it, up to twice it (0.003-0.06 from
0.03), and within [`MIN_LR`, `MAX_LR`]. The band keeps a controller that
keeps halving or doubling on an unfamiliar task from freezing or blowing up
training. It is lopsided because the two failures are not alike: a rate 4-10×
the one a user starts from diverged on tasks no controller trained on (the
model never recovers), while a rate too low only slows training.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import tensorflow as tf

from tfrl.errors import ConfigError

__all__ = [
    "LR_FACTORS",
    "LR_RANGE",
    "MAX_LR",
    "MIN_LR",
    "OBSERVATION_SIZE",
    "TrainingStats",
    "flat_weights",
    "learning_rate_variable",
    "next_learning_rate",
    "update_norm",
]

LR_FACTORS = (0.5, 1.0, 2.0)
MIN_LR = 1e-6
MAX_LR = 1.0
LR_RANGE = (10.0, 2.0)
OBSERVATION_SIZE = 11


def flat_weights(model: tf.keras.Model) -> np.ndarray:
    """All trainable weights as one float64 vector."""
    weights = [np.ravel(v.numpy()) for v in model.trainable_weights]
    return np.concatenate(weights).astype(np.float64) if weights else np.zeros(0)


def learning_rate_variable(optimizer: Any, where: str = "RLController") -> tf.Variable:
    """The optimizer's learning rate as a variable that can be set, or a clear error."""
    if optimizer is None:
        raise ConfigError(
            f"{where} needs a compiled model: call model.compile(optimizer=...) before fit."
        )
    if not hasattr(optimizer, "learning_rate"):
        raise ConfigError(
            f"{where} sets the optimizer's learning rate, but {type(optimizer).__name__} has "
            "no `learning_rate`. Use a Keras optimizer such as tf.keras.optimizers.SGD or Adam."
        )
    # Keras 2.15 optimizers keep a schedule in `_learning_rate` and return its current value.
    lr = getattr(optimizer, "_learning_rate", None)
    if not isinstance(lr, tf.keras.optimizers.schedules.LearningRateSchedule):
        lr = optimizer.learning_rate
    if isinstance(lr, tf.keras.optimizers.schedules.LearningRateSchedule) or callable(lr):
        raise ConfigError(
            f"The optimizer's learning_rate is a schedule ({type(lr).__name__}); {where} "
            "replaces schedules, it cannot set one. Compile with a float learning rate, e.g. "
            "tf.keras.optimizers.SGD(learning_rate=0.01)."
        )
    if not isinstance(lr, tf.Variable):
        raise ConfigError(
            f"{where} cannot set {type(optimizer).__name__}.learning_rate (a "
            f"{type(lr).__name__}, not a tf.Variable). Compile with a Keras optimizer built "
            "from a float learning rate."
        )
    return lr


class TrainingStats:
    """Turns per-epoch metrics into controller observations.

    Args:
        initial_learning_rate: the learning rate at the start of training.
        epochs: the planned number of epochs (for the progress feature).
    """

    def __init__(self, initial_learning_rate: float, epochs: int):
        self.initial_learning_rate = float(initial_learning_rate)
        self.epochs = max(int(epochs), 1)
        self._previous: tuple[float, float, float] | None = None

    def observe(
        self,
        *,
        loss: float,
        accuracy: float,
        val_loss: float,
        val_accuracy: float,
        learning_rate: float,
        update_norm: float,
        epoch: int,
    ) -> np.ndarray:
        """The observation after `epoch` (1-based count of finished epochs)."""
        loss, val_loss = (min(max(_finite(v, 10.0), 0.0), 10.0) for v in (loss, val_loss))
        if self._previous is None:
            trends = (0.0, 0.0, 0.0)
        else:
            trends = (
                loss - self._previous[0],
                val_loss - self._previous[1],
                val_accuracy - self._previous[2],
            )
        self._previous = (loss, val_loss, val_accuracy)
        lr = max(float(learning_rate), 1e-12)
        observation = [
            loss,
            accuracy,
            val_loss,
            val_accuracy,
            *trends,
            math.log10(max(_finite(update_norm, 1e6), 1e-12)) / 5.0,
            math.log10(lr) / 5.0,
            math.log10(lr / self.initial_learning_rate),
            min(epoch / self.epochs, 1.0),
        ]
        return np.clip(np.asarray(observation, np.float32), -10.0, 10.0)


def update_norm(before: np.ndarray, after: np.ndarray, learning_rate: float, steps: int) -> float:
    """‖after − before‖ / (learning_rate · steps): the mean applied gradient's norm.

    Exact for plain SGD; with momentum or adaptive optimizers (Adam) it measures
    the applied update, not the gradient (see the module docstring, feature 7).
    """
    return float(np.linalg.norm(after - before) / max(learning_rate * max(steps, 1), 1e-12))


def next_learning_rate(
    learning_rate: float,
    action: int,
    initial_learning_rate: float | None = None,
    lr_range: float | tuple[float, float] = LR_RANGE,
) -> float:
    """The learning rate after action `action` (an index into `LR_FACTORS`).

    Kept within [initial ÷ down, initial × up] when the initial rate is
    given, where `lr_range` is (down, up) or one factor for both, and always
    within [`MIN_LR`, `MAX_LR`].
    """
    down, up = check_lr_range(lr_range, "next_learning_rate")
    low, high = MIN_LR, MAX_LR
    if initial_learning_rate is not None:
        low = max(low, initial_learning_rate / down)
        high = min(high, initial_learning_rate * up)
    return float(min(max(learning_rate * LR_FACTORS[int(action)], low), high))


def check_lr_range(lr_range: float | tuple[float, float], where: str) -> tuple[float, float]:
    """`lr_range` as (down, up) factors ≥ 1, or a `ConfigError` naming it.

    One number r means (r, r): the rate stays within initial ÷ r and initial × r.
    """
    pair = tuple(lr_range) if isinstance(lr_range, (tuple, list)) else (lr_range, lr_range)
    if len(pair) != 2 or not all(
        not isinstance(v, bool) and isinstance(v, (int, float)) and v >= 1 for v in pair
    ):
        raise ConfigError(
            f"{where}: lr_range={lr_range!r} must be a number ≥ 1 or a pair (down, up) of "
            "numbers ≥ 1: the learning rate stays within initial ÷ down and initial × up "
            "(one number for both); use float('inf') for no band."
        )
    return float(pair[0]), float(pair[1])


def _finite(value: float, fallback: float) -> float:
    value = float(value)
    return value if math.isfinite(value) else fallback
