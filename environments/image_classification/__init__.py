"""Imbalanced image classification as a sequential decision (DQNimb, Lin et al. 2020)."""

from environments.image_classification.agent import BalancedDDQN
from environments.image_classification.baselines import cnn, fit_supervised
from environments.image_classification.config import DATASETS, ImageClassificationConfig
from environments.image_classification.data import DatasetNotFoundError, LabelledImages, load
from environments.image_classification.env import (
    ImageClassificationEnv,
    ImageClassificationVectorEnv,
)
from environments.image_classification.metrics import classification_report, g_mean

__all__ = [
    "DATASETS",
    "BalancedDDQN",
    "DatasetNotFoundError",
    "ImageClassificationConfig",
    "ImageClassificationEnv",
    "ImageClassificationVectorEnv",
    "LabelledImages",
    "classification_report",
    "cnn",
    "fit_supervised",
    "g_mean",
    "load",
]
