"""Models and data sets to train inside `tfrl/TrainingControl-v1`, all offline.

A task is `"<model>:<dataset>"`, e.g. "mlp:digits". Data sets (cached, split
70/30 train/validation with a fixed seed, features standardized):

- digits: scikit-learn's 8×8 digits (1,797 images, 10 classes);
- synthetic: scikit-learn `make_classification` (3,000 samples, 20 features,
  4 classes, class separation 1.0);
- breast_cancer: scikit-learn's Wisconsin breast cancer (569 samples, 30
  features, 2 classes);
- synthetic6: a second, harder `make_classification` draw (6,000 samples, 40
  features of which 12 informative and 8 redundant, 6 classes of 2 clusters
  each, class separation 0.8, 2% of labels flipped, its own random state):
  1,800 validation samples, and room above the fixed rates (mlp2 reaches
  about 0.70 with the best one). The second held-out task of
  `benchmarks/training_control.py`, now a validation task: no controller
  trains on it;
- noisy: a noisy `make_classification` draw for training (4,000 samples,
  30 features, 5 classes of 2 clusters, class separation 0.7, 5% of labels
  flipped): better with decaying and lower rates than digits;
- wide: 3,000 samples of 60 features (20 informative), 3 classes, for
  training;
- synthetic8: the third held-out task's data (6,000 samples, 50 features
  of which 15 informative and 10 redundant, 8 classes of 2 clusters, class
  separation 0.9, 3% of labels flipped, its own random state). Named with
  the `dropout` model before any controller ran on it.

Models (uncompiled Keras models returning logits): "linear" (softmax
regression), "mlp" (Dense 64 relu), "mlp2" (Dense 128 → 64 relu), "deep"
(Dense 64 → 64 → 64 relu; diverges at high rates), "dropout" (Dense 128 →
128 relu, each followed by 20% dropout; held out), "cnn" (Conv 16 3×3 →
pool → Dense 64; image data sets only).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from tfrl.errors import ConfigError, check_names

__all__ = ["DATASETS", "MODELS", "Dataset", "load_dataset", "make_model", "parse_task"]

Dataset = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
DATASETS = ("digits", "synthetic", "breast_cancer", "synthetic6", "noisy", "wide", "synthetic8")
MODELS = ("linear", "mlp", "mlp2", "deep", "dropout", "cnn")
# scikit-learn make_classification settings of the generated data sets.
_GENERATED = {
    "synthetic": {
        "n_samples": 3000,
        "n_features": 20,
        "n_informative": 10,
        "n_classes": 4,
        "class_sep": 1.0,
        "random_state": 0,
    },
    "synthetic6": {
        "n_samples": 6000,
        "n_features": 40,
        "n_informative": 12,
        "n_redundant": 8,
        "n_classes": 6,
        "n_clusters_per_class": 2,
        "class_sep": 0.8,
        "flip_y": 0.02,
        "random_state": 1,
    },
    "noisy": {
        "n_samples": 4000,
        "n_features": 30,
        "n_informative": 8,
        "n_redundant": 6,
        "n_classes": 5,
        "n_clusters_per_class": 2,
        "class_sep": 0.7,
        "flip_y": 0.05,
        "random_state": 2,
    },
    "wide": {
        "n_samples": 3000,
        "n_features": 60,
        "n_informative": 20,
        "n_classes": 3,
        "class_sep": 1.2,
        "random_state": 3,
    },
    "synthetic8": {
        "n_samples": 6000,
        "n_features": 50,
        "n_informative": 15,
        "n_redundant": 10,
        "n_classes": 8,
        "n_clusters_per_class": 2,
        "class_sep": 0.9,
        "flip_y": 0.03,
        "random_state": 4,
    },
}


def parse_task(task: str) -> tuple[str, str]:
    """ "mlp:digits" → ("mlp", "digits"), validated."""
    if not isinstance(task, str) or task.count(":") != 1:
        raise ConfigError(
            f"task={task!r} must read '<model>:<dataset>', e.g. 'mlp:digits'. Models: "
            f"{', '.join(MODELS)}; data sets: {', '.join(DATASETS)}."
        )
    model, dataset = task.split(":")
    check_names([model], MODELS, "Unknown model", f"Models: {', '.join(MODELS)}.")
    check_names([dataset], DATASETS, "Unknown dataset", f"Data sets: {', '.join(DATASETS)}.")
    if model == "cnn" and dataset != "digits":
        raise ConfigError(f"task={task!r}: 'cnn' needs images; use it with 'digits'.")
    return model, dataset


@functools.lru_cache(maxsize=8)
def load_dataset(name: str) -> Dataset:
    """(x_train, y_train, x_val, y_val) of a built-in data set; cached."""
    from environments.image_classification.data import sklearn_datasets

    datasets = sklearn_datasets()
    if name == "digits":
        bunch = datasets.load_digits()
        x, y = bunch.images[..., None] / 16.0, bunch.target
    elif name in _GENERATED:
        x, y = datasets.make_classification(**_GENERATED[name])
    else:
        bunch = datasets.load_breast_cancer()
        x, y = bunch.data, bunch.target
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order].astype(np.float32), y[order].astype(np.int64)
    split = int(0.7 * len(y))
    if name != "digits":
        mean, std = x[:split].mean(axis=0), x[:split].std(axis=0) + 1e-8
        x = (x - mean) / std
    return x[:split], y[:split], x[split:], y[split:]


def make_model(name: str, input_shape: tuple[int, ...], num_classes: int) -> tf.keras.Model:
    """A fresh, uncompiled Keras model that outputs logits."""
    layers: list[tf.keras.layers.Layer] = [tf.keras.layers.InputLayer(input_shape)]
    if name == "cnn":
        layers += [
            tf.keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            tf.keras.layers.MaxPool2D(),
        ]
    layers.append(tf.keras.layers.Flatten())
    hidden = {
        "linear": (),
        "mlp": (64,),
        "mlp2": (128, 64),
        "deep": (64, 64, 64),
        "dropout": (128, 128),
        "cnn": (64,),
    }[name]
    for units in hidden:
        layers.append(tf.keras.layers.Dense(units, activation="relu"))
        if name == "dropout":
            layers.append(tf.keras.layers.Dropout(0.2))
    layers.append(tf.keras.layers.Dense(num_classes))
    return tf.keras.Sequential(layers)


ModelFactory = Callable[[tuple[int, ...], int], tf.keras.Model]
DatasetFactory = Callable[[], Dataset]
