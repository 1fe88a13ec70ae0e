"""Learning-rate control as an MDP: each episode trains a fresh Keras model."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import tensorflow as tf

from environments.training_control import tasks as tasks_lib
from environments.training_control.config import TrainingControlConfig
from tfrl.errors import ConfigError
from tfrl.keras import features

__all__ = ["TrainingControlEnv"]

# Variables a Keras layer creates from an initializer attribute of the same name.
_INITIALIZED = (
    "kernel",
    "bias",
    "depthwise_kernel",
    "pointwise_kernel",
    "recurrent_kernel",
    "embeddings",
    "gamma",
    "beta",
    "moving_mean",
    "moving_variance",
)


class _Trainee:
    """One model, its optimizer and data, with an epoch of training in one `tf.function`."""

    def __init__(
        self, model: tf.keras.Model, data: tasks_lib.Dataset, config: TrainingControlConfig
    ):
        x_train, y_train, x_val, y_val = (np.asarray(a) for a in data)
        self.x_train, self.y_train = (
            tf.constant(x_train, tf.float32),
            tf.constant(y_train, tf.int64),
        )
        self.x_val, self.y_val = tf.constant(x_val, tf.float32), tf.constant(y_val, tf.int64)
        self.size = len(y_train)
        self.batch_size = min(config.batch_size, self.size)
        self.steps = math.ceil(self.size / self.batch_size)
        self.model = model
        if config.optimizer == "sgd":
            self.optimizer = tf.keras.optimizers.SGD(0.01, momentum=0.9)
        else:
            self.optimizer = tf.keras.optimizers.Adam(0.001)
        self.learning_rate = features.learning_rate_variable(self.optimizer, "TrainingControl")
        self.loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self._train_epoch = tf.function(self._epoch)
        self._evaluate = tf.function(self._metrics)

    def _epoch(self, order: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        total_loss = tf.constant(0.0)
        correct = tf.constant(0.0)
        for step in tf.range(self.steps):
            index = order[step * self.batch_size : (step + 1) * self.batch_size]
            x, y = tf.gather(self.x_train, index), tf.gather(self.y_train, index)
            with tf.GradientTape() as tape:
                logits = self.model(x, training=True)
                loss = self.loss(y, logits)
            grads = tape.gradient(loss, self.model.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
            n = tf.cast(tf.shape(index)[0], tf.float32)
            total_loss += loss * n
            correct += tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, axis=-1), y), tf.float32))
        return total_loss / self.size, correct / self.size

    def _metrics(self) -> tuple[tf.Tensor, tf.Tensor]:
        logits = self.model(self.x_val, training=False)
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, -1), self.y_val), tf.float32))
        return self.loss(self.y_val, logits), accuracy

    def restart(self, rng: np.random.Generator, learning_rate: float, fresh: Any) -> None:
        """New weights (seeded from `rng`), zeroed optimizer state, the given rate."""
        for layer in self.model.submodules:
            for name in _INITIALIZED:
                variable = getattr(layer, name, None)
                initializer = getattr(layer, f"{name}_initializer", None)
                if isinstance(variable, tf.Variable) and initializer is not None:
                    config = initializer.get_config()
                    if "seed" in config:
                        config["seed"] = int(rng.integers(2**31 - 1))
                    initializer = type(initializer).from_config(config)
                    variable.assign(initializer(variable.shape, variable.dtype))
        if fresh is not None:
            fresh(self.model)
        for variable in self.optimizer.variables:  # step count and slots (after the first step)
            variable.assign(tf.zeros_like(variable))
        self.learning_rate.assign(learning_rate)

    def train_epoch(self, rng: np.random.Generator) -> tuple[float, float]:
        order = tf.constant(rng.permutation(self.size), tf.int32)
        loss, accuracy = self._train_epoch(order)
        return float(loss), float(accuracy)

    def evaluate(self) -> tuple[float, float]:
        loss, accuracy = self._evaluate()
        return float(loss), float(accuracy)


class TrainingControlEnv(gym.Env):
    """Set a model's learning rate, epoch by epoch, to maximise validation accuracy.

    ## Description
    Each episode trains a fresh small Keras model on a small data set (one of
    `tasks`, or your own `model_factory`/`dataset_factory`) for `epochs`
    epochs. After every epoch but the last the agent scales the learning
    rate. Training runs one epoch per `step` inside a `tf.function`, on
    cached data, so an episode takes about a second on a CPU. The
    `tfrl.keras.RLController` callback builds the same observations inside
    `model.fit`, so a controller trained here runs in your own training.

    ## Action space
    `Discrete(3)`: multiply the learning rate by 0.5, 1 or 2
    (`tfrl.keras.LR_FACTORS`), kept within the episode's initial rate ÷ 10
    and × 2 (`lr_range`, default (10, 2)) and within [1e-6, 1].

    ## Observation space
    `Box(-10, 10, (11,), float32)`: epoch-mean training loss and accuracy,
    validation loss and accuracy, their changes since the last decision,
    the log gradient norm the optimizer applied, the log learning rate (and
    its ratio to the initial one), and progress (see `tfrl.keras.features`).

    ## Rewards
    The change of validation accuracy over the epoch that follows the
    action, plus `final_reward_weight` × the final validation accuracy on
    the last step. Undiscounted, the return is (1 + w) × final accuracy −
    accuracy after the first epoch.

    ## Starting state and episode end
    Reset re-initialises the weights (seeded), zeroes the optimizer state,
    draws the initial learning rate (log-uniform in `initial_learning_rate`)
    and trains the first epoch. The episode terminates after `epochs` epochs.

    ## Arguments
    `gymnasium.make("tfrl/TrainingControl-v1", tasks=("mlp:digits",),
    epochs=15, optimizer="sgd", ...)`; see `TrainingControlConfig`.

    ## Version history
    - v1: the rate's band is (10, 2) by default: down to a tenth of the
      initial rate, up to twice it (a controller that could reach 10× the
      start diverged on a task it had not trained on).
    - v0: initial version; the band is a decade each way (`lr_range=10`).
    """

    metadata = {"render_modes": []}

    def __init__(self, **config: Any):
        self.config = TrainingControlConfig(**config)
        self._trainees: dict[str, _Trainee] = {}
        self._fresh: dict[str, Any] = {}
        for task in self.config.tasks:
            self._trainee(task)
        self.observation_space = gym.spaces.Box(
            -10.0, 10.0, (features.OBSERVATION_SIZE,), np.float32
        )
        self.action_space = gym.spaces.Discrete(len(features.LR_FACTORS))
        self._current: _Trainee | None = None

    def _trainee(self, task: str) -> _Trainee:
        if task not in self._trainees:
            model_name, dataset_name = tasks_lib.parse_task(task)
            if self.config.dataset_factory is not None:
                data = tuple(self.config.dataset_factory())
                if len(data) != 4:
                    raise ConfigError(
                        "dataset_factory must return (x_train, y_train, x_val, y_val); got "
                        f"{len(data)} values."
                    )
            else:
                data = tasks_lib.load_dataset(dataset_name)
            num_classes = int(max(np.max(data[1]), np.max(data[3]))) + 1
            input_shape = tuple(np.shape(data[0])[1:])

            def build() -> tf.keras.Model:
                if self.config.model_factory is not None:
                    model = self.config.model_factory(input_shape, num_classes)
                else:
                    model = tasks_lib.make_model(model_name, input_shape, num_classes)
                if isinstance(model, tf.keras.Model):
                    model(tf.constant(np.asarray(data[0][:1]), tf.float32))  # create the weights
                return model

            model = build()
            if not isinstance(model, tf.keras.Model):
                raise ConfigError(
                    f"model_factory returned a {type(model).__name__}; it must return a "
                    "tf.keras.Model that outputs one logit per class."
                )
            self._trainees[task] = _Trainee(model, data, self.config)
            self._fresh[task] = _fresh_weights_if_needed(model, build)
        return self._trainees[task]

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        task = self.config.tasks[int(self.np_random.integers(len(self.config.tasks)))]
        low, high = self.config.learning_rate_bounds
        learning_rate = float(np.exp(self.np_random.uniform(np.log(low), np.log(high))))
        self._task = task
        self._current = self._trainee(task)
        self._current.restart(self.np_random, learning_rate, self._fresh[task])
        self._stats = features.TrainingStats(learning_rate, self.config.epochs)
        self._epoch = 0
        observation, info = self._train_and_observe()
        return observation, info

    def _train_and_observe(self) -> tuple[np.ndarray, dict]:
        trainee = self._current
        before = features.flat_weights(trainee.model)
        learning_rate = float(trainee.learning_rate.numpy())
        loss, accuracy = trainee.train_epoch(self.np_random)
        val_loss, val_accuracy = trainee.evaluate()
        self._epoch += 1
        observation = self._stats.observe(
            loss=loss,
            accuracy=accuracy,
            val_loss=val_loss,
            val_accuracy=val_accuracy,
            learning_rate=learning_rate,
            update_norm=features.update_norm(
                before, features.flat_weights(trainee.model), learning_rate, trainee.steps
            ),
            epoch=self._epoch,
        )
        self._val_accuracy = val_accuracy
        info = {
            "task": self._task,
            "epoch": self._epoch,
            "learning_rate": learning_rate,
            "val_accuracy": val_accuracy,
            "val_loss": val_loss,
        }
        return observation, info

    def step(self, action: int):
        if self._current is None:
            raise RuntimeError("Call reset() before step().")
        if not self.action_space.contains(action):
            raise ValueError(f"action={action!r} is not in {self.action_space}.")
        trainee = self._current
        trainee.learning_rate.assign(
            features.next_learning_rate(
                float(trainee.learning_rate.numpy()),
                int(action),
                self._stats.initial_learning_rate,
                self.config.lr_range,
            )
        )
        previous = self._val_accuracy
        observation, info = self._train_and_observe()
        reward = self._val_accuracy - previous
        terminated = self._epoch >= self.config.epochs
        if terminated:
            reward += self.config.final_reward_weight * self._val_accuracy
        return observation, float(reward), terminated, False, info


def _fresh_weights_if_needed(model: tf.keras.Model, build: Any) -> Any:
    """None when every weight has a known initializer; else a fn copying a new model's weights."""
    covered = {
        id(getattr(layer, name))
        for layer in model.submodules
        for name in _INITIALIZED
        if isinstance(getattr(layer, name, None), tf.Variable)
        and getattr(layer, f"{name}_initializer", None) is not None
    }
    if all(id(v) in covered for v in model.weights):
        return None

    def copy_fresh(target: tf.keras.Model) -> None:
        # Weights without a seeded initializer come from a newly built model (unseeded).
        target.set_weights(build().get_weights())

    return copy_fresh
