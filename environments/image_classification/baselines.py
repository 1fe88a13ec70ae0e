"""The paper's CNN and the supervised, class-weighted baseline it is compared with."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from environments.image_classification.data import LabelledImages

__all__ = ["cnn", "fit_supervised"]


def cnn(image_shape: tuple[int, ...], num_labels: int) -> tf.keras.Sequential:
    """Two conv layers + Dense(256) + one output per label (Lin et al. 2020, §5.2).

    The paper's layers are 5×5 with 32 and 64 filters on 28×28+ images; on
    images smaller than 16 pixels (the 8×8 digits) they shrink to 3×3 with
    16 and 32 filters and one 2×2 pooling. Outputs are unscaled scores (the
    Q-values of DQN, the logits of the supervised model).
    """
    small = min(image_shape[:2]) < 16
    kernel, filters = (3, (16, 32)) if small else (5, (32, 64))
    layers: list[tf.keras.layers.Layer] = [tf.keras.layers.InputLayer(image_shape)]
    for i, f in enumerate(filters):
        layers.append(tf.keras.layers.Conv2D(f, kernel, padding="same", activation="relu"))
        if not small or i == len(filters) - 1:
            layers.append(tf.keras.layers.MaxPool2D())
    layers += [
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(256, activation="relu"),
        tf.keras.layers.Dense(num_labels),
    ]
    return tf.keras.Sequential(layers)


def fit_supervised(
    train: LabelledImages,
    *,
    validation: LabelledImages | None = None,
    epochs: int = 30,
    patience: int = 10,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    seed: int = 0,
) -> tf.keras.Model:
    """A `cnn` trained with cross-entropy and balanced class weights.

    Class `c` weighs `N / (K · N_c)` (scikit-learn's "balanced"), so each
    class contributes equally to the loss: the standard supervised answer to
    imbalance that the RL classifier must beat. With `validation`, training
    stops early (Keras `EarlyStopping` on the validation loss, `patience`
    epochs), as a practitioner would tune it; `epochs` is then the cap. On an
    early stop the best epoch's weights are restored; at the cap Keras keeps
    the last epoch's.

    The returned model records `epochs_run` and `kept_epoch` (1-based: the
    epoch whose weights it holds). Read them there, not from `model.history`,
    which Keras replaces on the next `predict` or `evaluate`.
    """
    import tfrl

    tfrl.set_seed(seed)
    num_labels = len(train.class_names)
    counts = np.bincount(train.labels, minlength=num_labels)
    weights = {c: len(train) / (num_labels * max(n, 1)) for c, n in enumerate(counts)}
    model = cnn(train.images.shape[1:], num_labels)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    callbacks, validation_data = [], None
    if validation is not None:
        validation_data = (validation.images, validation.labels)
        callbacks.append(
            tf.keras.callbacks.EarlyStopping(
                "val_loss", patience=patience, restore_best_weights=True
            )
        )
    history = model.fit(
        train.images,
        train.labels,
        epochs=epochs,
        batch_size=batch_size,
        class_weight=weights,
        validation_data=validation_data,
        callbacks=callbacks,
        verbose=0,
    )
    model.epochs_run = len(history.epoch)
    stopped = callbacks and callbacks[0].stopped_epoch > 0
    model.kept_epoch = callbacks[0].best_epoch + 1 if stopped else model.epochs_run
    return model
