"""`RLController`: a Keras callback that lets an RL policy set the learning rate in `fit`.

    controller = tfrl.keras.RLController("saved_models/lr_controller")
    model.fit(x, y, validation_data=(x_val, y_val), epochs=20, callbacks=[controller])
    controller.learning_rates          # the rate used in each epoch

After every epoch the callback builds the observation of
`tfrl/TrainingControl-v1` from the epoch's metrics (`tfrl.keras.features`),
asks the controller for an action (×0.5, ×1 or ×2) and writes the new rate
into the optimizer's learning-rate variable.

Learning mode trains a controller on your own model instead: every `fit`
is one episode, with the env's reward (the change of validation accuracy,
plus the final accuracy at the end):

    controller = tfrl.keras.RLController(learning=True)
    for episode in range(30):
        model = build_model()                      # fresh weights each episode
        model.fit(..., callbacks=[controller])
    controller.export("saved_models/my_lr_controller")
"""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import tensorflow as tf
from tf_agents.policies import tf_policy
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory
from tf_agents.utils import common

from tfrl.errors import ConfigError, ExportError
from tfrl.keras import features

__all__ = ["RLController"]

_ACCURACY_KEYS = ("accuracy", "acc", "sparse_categorical_accuracy", "categorical_accuracy")


class _Specs:
    """The controller's specs, shaped like an environment for `tfrl.agents.make`."""

    def time_step_spec(self) -> ts.TimeStep:
        return ts.time_step_spec(
            tensor_spec.TensorSpec([features.OBSERVATION_SIZE], tf.float32, "observation")
        )

    def action_spec(self) -> Any:
        return tensor_spec.BoundedTensorSpec(
            [], tf.int64, 0, len(features.LR_FACTORS) - 1, "action"
        )


class RLController(tf.keras.callbacks.Callback):
    """Sets the optimizer's learning rate after each epoch from an RL controller.

    Args:
        controller: what picks the action: a path to a `tfrl.export` of a
            controller (a version or base directory), a loaded SavedModel, a
            TF-Agents `TFPolicy`, or a callable `observation → action index`.
            None only with `learning=True`.
        learning: train a DQN controller on this model's runs instead of
            using a fixed one (every `fit` is one episode). Default False.
        final_reward_weight: weight of the final validation accuracy in the
            learning reward (as the env's). Default 1.0.
        epsilon: exploration rate in learning mode. Default 0.2.
        train_steps: DQN gradient steps after each `fit` in learning mode. Default 200.
        seed: seeds exploration and the controller's initial weights in learning
            mode, without touching TensorFlow's global seed. Default None.
        lr_range: the rate stays within the rate `fit` starts with ÷ down
            and × up, given as (down, up) or one factor for both, as in
            `tfrl/TrainingControl-v1`. Default None: when `controller` is an
            export's path, the band that export records (the one its
            controller trained with; the application and `export()` below
            record it), else (10, 2).

    Attributes:
        learning_rates: the learning rate of every epoch of the last `fit` (the
            shortest decimal of the optimizer's float32 value: 0.03, not 0.0299999993).
        observations, actions: what the controller saw and chose.

    Raises:
        ConfigError: at the start of `fit`, when the model is not compiled,
            its optimizer has no learning-rate variable (e.g. a
            `LearningRateSchedule`), or `fit` has no validation data.
    """

    def __init__(
        self,
        controller: Any = None,
        *,
        learning: bool = False,
        final_reward_weight: float = 1.0,
        epsilon: float = 0.2,
        train_steps: int = 200,
        seed: int | None = None,
        lr_range: float | tuple[float, float] | None = None,
    ):
        super().__init__()
        if controller is None and not learning:
            raise ConfigError(
                "RLController needs a controller (an exported controller's path, a TFPolicy or "
                "a callable), or learning=True to train one on this model."
            )
        if controller is not None and learning:
            raise ConfigError(
                "Pass either a controller or learning=True, not both (learning mode trains its "
                "own DQN controller; export it with .export(path))."
            )
        if not 0.0 <= epsilon <= 1.0:
            raise ConfigError(f"epsilon={epsilon!r} must be in [0, 1].")
        if lr_range is None:
            lr_range = _recorded_lr_range(controller) or features.LR_RANGE
        self.lr_range = features.check_lr_range(lr_range, "RLController")
        self.learning = learning
        self.final_reward_weight = float(final_reward_weight)
        self.epsilon = float(epsilon)
        self.train_steps = int(train_steps)
        self._rng = random.Random(seed)
        self._act = None if learning else _action_function(controller)
        self.agent = _learning_agent(seed) if learning else None
        self._train_step = common.function(self.agent.train) if learning else None
        self._transitions: list[tuple[np.ndarray, int, float, np.ndarray, bool]] = []
        self._pending: tuple[np.ndarray, int, float] | None = None
        self.learning_rates: list[float] = []
        self.observations: list[np.ndarray] = []
        self.actions: list[int] = []

    # -- Keras hooks ------------------------------------------------------

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._lr = features.learning_rate_variable(
            getattr(self.model, "optimizer", None), "RLController"
        )
        self._epochs = int((self.params or {}).get("epochs") or 1)
        self._steps = int((self.params or {}).get("steps") or 1)
        lr = float(self._lr.numpy())
        self._stats = features.TrainingStats(lr, self._epochs)
        # A model built by its first batch has no weights yet: start from that batch's.
        self._weights = features.flat_weights(self.model) if self.model.built else None
        self._steps_measured = self._steps
        self.learning_rates = [_decimal(lr)]
        self.observations, self.actions = [], []
        self._pending: tuple[np.ndarray, int, float] | None = None

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self._weights is None:
            self._weights = features.flat_weights(self.model)
            self._steps_measured = max(self._steps - 1, 1)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if "val_loss" not in logs:
            raise ConfigError(
                "RLController reads validation metrics after each epoch: pass validation_data= "
                "or validation_split= to fit, and compile with metrics=['accuracy']."
            )
        lr = float(self._lr.numpy())
        weights = features.flat_weights(self.model)
        val_accuracy = _accuracy(logs, "val_")
        observation = self._stats.observe(
            loss=logs.get("loss", 0.0),
            accuracy=_accuracy(logs, ""),
            val_loss=logs["val_loss"],
            val_accuracy=val_accuracy,
            learning_rate=lr,
            update_norm=features.update_norm(self._weights, weights, lr, self._steps_measured),
            epoch=epoch + 1,
        )
        self._weights, self._steps_measured = weights, self._steps
        last = epoch + 1 >= self._epochs
        if self.learning and self._pending is not None:
            # The env's reward: the change of validation accuracy, plus the final accuracy.
            previous, action, previous_accuracy = self._pending
            reward = val_accuracy - previous_accuracy
            if last:
                reward += self.final_reward_weight * val_accuracy
            self._transitions.append((previous, action, reward, observation, last))
            self._pending = None
        if last:
            return
        action = self._explore(observation) if self.learning else int(self._act(observation))
        if not 0 <= action < len(features.LR_FACTORS):
            raise ConfigError(
                f"The controller chose action {action}; it must index LR_FACTORS "
                f"{features.LR_FACTORS}. Was it trained on tfrl/TrainingControl-v1?"
            )
        self.observations.append(observation)
        self.actions.append(action)
        if self.learning:
            self._pending = (observation, action, val_accuracy)
        new_lr = features.next_learning_rate(
            lr, action, self._stats.initial_learning_rate, self.lr_range
        )
        self._lr.assign(new_lr)
        self.learning_rates.append(_decimal(new_lr))

    def on_train_end(self, logs: dict | None = None) -> None:
        self._pending = None  # a fit stopped early leaves its last decision unrewarded
        if self.learning:
            self._train()

    # -- learning mode ----------------------------------------------------

    def _explore(self, observation: np.ndarray) -> int:
        if self._rng.random() < self.epsilon:
            return self._rng.randrange(len(features.LR_FACTORS))
        step = ts.restart(tf.constant(observation[None]), batch_size=1)
        return int(self.agent.policy.action(step).action.numpy()[0])

    def _train(self) -> None:
        """DQN steps on batches drawn from every transition seen so far."""
        if len(self._transitions) < 2:
            return
        for _ in range(self.train_steps):
            batch = [self._rng.choice(self._transitions) for _ in range(32)]
            self._train_step(_as_trajectory(batch))

    def export(self, base_path: str, *, version: int | None = None) -> str:
        """Exports the learned controller (learning mode) like any agent; returns the path."""
        if self.agent is None:
            raise ExportError("Only a learning-mode RLController has a controller to export.")
        from tfrl.export import export

        return export(self.agent, base_path, version=version, metadata=band_metadata(self.lr_range))


def band_metadata(lr_range: float | tuple[float, float]) -> dict:
    """Export metadata recording a controller's band, which `RLController(path)` reads back."""
    return {"lr_range": list(features.check_lr_range(lr_range, "band_metadata"))}


def _recorded_lr_range(controller: Any) -> tuple[float, float] | None:
    """The band an export at path `controller` records, if any."""
    if not isinstance(controller, (str, os.PathLike)):
        return None
    from tfrl.export.exporter import read_export_info, version_directory

    try:
        info = read_export_info(version_directory(os.fspath(controller)))
    except ExportError:
        return None  # loading it reports the problem
    band = info.get("metadata", {}).get("lr_range")
    return None if band is None else features.check_lr_range(band, "the export's lr_range")


def _decimal(rate: float) -> float:
    """The shortest decimal that is the same float32 (a learning rate as set, not its noise)."""
    return float(str(np.float32(rate)))


def _accuracy(logs: dict, prefix: str) -> float:
    for key in _ACCURACY_KEYS:
        if prefix + key in logs:
            return float(logs[prefix + key])
    raise ConfigError(
        f"RLController found no {prefix}accuracy in the epoch logs {sorted(logs)}: compile "
        "with metrics=['accuracy']."
    )


def _learning_agent(seed: int | None) -> Any:
    """A DQN over the controller's features; `seed` seeds its Q-network's initial weights.

    The seed goes to the layers' own initialisers, so the user's global
    TensorFlow seed and random state are left as they were.
    """
    from tfrl.agents import make

    def dense(units: int, index: int, **kwargs: Any) -> tf.keras.layers.Dense:
        init_seed = None if seed is None else seed * 3 + index
        return tf.keras.layers.Dense(
            units, kernel_initializer=tf.keras.initializers.GlorotUniform(init_seed), **kwargs
        )

    q_network = tf.keras.Sequential(
        [
            dense(64, 0, activation="relu"),
            dense(64, 1, activation="relu"),
            dense(len(features.LR_FACTORS), 2),
        ]
    )
    return make(
        "dqn",
        _Specs(),
        q_network=q_network,
        learning_rate=1e-3,
        gamma=0.9,
        target_update_period=50,
        epsilon_start=0.0,
        epsilon_end=0.0,
    )


def _as_trajectory(batch: list) -> trajectory.Trajectory:
    """A [batch, 2] Trajectory of single transitions for `DqnAgent.train`."""
    observation = np.stack([np.stack([b[0], b[3]]) for b in batch]).astype(np.float32)
    action = np.array([[b[1], 0] for b in batch], np.int64)
    reward = np.array([[b[2], 0.0] for b in batch], np.float32)
    done = np.array([b[4] for b in batch])
    step_type = np.full((len(batch), 2), ts.StepType.MID, np.int32)
    next_step_type = step_type.copy()
    next_step_type[:, 0] = np.where(done, ts.StepType.LAST, ts.StepType.MID)
    discount = np.ones((len(batch), 2), np.float32)
    discount[:, 0] = np.where(done, 0.0, 1.0)
    return trajectory.Trajectory(
        step_type=tf.constant(step_type),
        observation=tf.constant(observation),
        action=tf.constant(action),
        policy_info=(),
        next_step_type=tf.constant(next_step_type),
        reward=tf.constant(reward),
        discount=tf.constant(discount),
    )


def _action_function(controller: Any):
    """observation (float32 [OBSERVATION_SIZE]) → action index, for each kind of controller."""
    if isinstance(controller, (str, os.PathLike)):
        from tfrl.export import load

        controller = load(os.fspath(controller))
    if isinstance(controller, tf_policy.TFPolicy):
        policy = controller

        def act(observation: np.ndarray) -> int:
            step = ts.restart(tf.constant(observation[None]), batch_size=1)
            return int(policy.action(step).action.numpy()[0])

        return act
    signatures = getattr(controller, "signatures", None)
    if signatures is not None and "serving_default" in signatures:
        serve = signatures["serving_default"]
        expected = serve.structured_input_signature[1].get("observation")
        if expected is None or tuple(expected.shape[1:]) != (features.OBSERVATION_SIZE,):
            raise ConfigError(
                f"This export takes {serve.structured_input_signature[1]}, not the "
                f"{features.OBSERVATION_SIZE} training statistics of tfrl/TrainingControl-v1; "
                "export a controller trained on that env."
            )

        def act(observation: np.ndarray) -> int:
            return int(serve(observation=tf.constant(observation[None]))["action"].numpy()[0])

        return act
    if callable(controller):
        return controller
    raise ConfigError(
        f"RLController cannot use a {type(controller).__name__} as controller; pass an export "
        "path, a loaded export, a TFPolicy or a callable observation → action."
    )
