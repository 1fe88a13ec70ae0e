"""Training: Trainer, replay, callbacks, History, checkpoints, evaluation."""

from tfrl.training import callbacks
from tfrl.training.evaluate import EvalResult, evaluate
from tfrl.training.history import History
from tfrl.training.trainer import Trainer

__all__ = ["EvalResult", "History", "Trainer", "callbacks", "evaluate"]
