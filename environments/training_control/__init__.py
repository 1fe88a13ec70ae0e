"""Learning-rate control: an agent scales the learning rate of a Keras model as it trains."""

from environments.training_control.config import TrainingControlConfig
from environments.training_control.env import TrainingControlEnv
from environments.training_control.tasks import DATASETS, MODELS, load_dataset, make_model

__all__ = [
    "DATASETS",
    "MODELS",
    "TrainingControlConfig",
    "TrainingControlEnv",
    "load_dataset",
    "make_model",
]
