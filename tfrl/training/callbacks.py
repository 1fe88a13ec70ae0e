"""Callbacks for `Trainer.fit`, in the manner of `keras.callbacks`.

A callback sees the trainer as `self.trainer` and is called at:
`on_train_begin`, `on_iteration_end(env_steps, logs)` after each
collect-and-train iteration, `on_evaluate_end(env_steps, logs)` after each
evaluation, `on_train_end`, and `after_train_end` once every callback's
`on_train_end` ran (the final checkpoint is saved by then). Setting
`trainer.stop_training = True` ends `fit` after the current iteration.
"""

from __future__ import annotations

import csv
import glob
import io
import logging
import os
from typing import TYPE_CHECKING, Any

import tensorflow as tf

from tfrl.atomic import atomic_write_text
from tfrl.errors import CheckpointError, ConfigError, check_whole_number

if TYPE_CHECKING:
    from tfrl.training.trainer import Trainer

__all__ = ["CSVLogger", "Callback", "CallbackList", "Checkpoint", "EarlyStopping", "TensorBoard"]

logger = logging.getLogger(__name__)


class Callback:
    """Base class: override the hooks you need."""

    trainer: Trainer

    def set_trainer(self, trainer: Trainer) -> None:
        self.trainer = trainer

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_iteration_end(self, env_steps: int, logs: dict[str, Any]) -> None:
        pass

    def on_evaluate_end(self, env_steps: int, logs: dict[str, Any]) -> None:
        pass

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        pass

    def after_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """Called after every callback's `on_train_end` (e.g. to change weights after
        the final checkpoint saved the run as trained)."""

    def close(self) -> None:
        """Releases files and writers; `fit` calls it last, also when training fails."""

    def get_state(self) -> dict[str, Any] | None:
        """JSON-able state a checkpoint saves (e.g. a patience counter); None if stateless."""
        return None

    def set_state(self, state: dict[str, Any]) -> None:
        """Restores what `get_state` returned, when `fit(resume=True)` restores a checkpoint."""


class CallbackList(Callback):
    """Calls each callback in order."""

    def __init__(self, callbacks: list[Callback] | None = None):
        self.callbacks = list(callbacks or [])
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise ConfigError(
                    f"callbacks must be tfrl.callbacks.Callback instances, got {cb!r}."
                )

    def set_trainer(self, trainer: Trainer) -> None:
        for cb in self.callbacks:
            cb.set_trainer(trainer)

    def on_train_begin(self, logs=None):
        for cb in self.callbacks:
            cb.on_train_begin(logs)

    def on_iteration_end(self, env_steps, logs):
        for cb in self.callbacks:
            cb.on_iteration_end(env_steps, logs)

    def on_evaluate_end(self, env_steps, logs):
        for cb in self.callbacks:
            cb.on_evaluate_end(env_steps, logs)

    def on_train_end(self, logs=None):
        for cb in self.callbacks:
            cb.on_train_end(logs)

    def after_train_end(self, logs=None):
        for cb in self.callbacks:
            cb.after_train_end(logs)

    def close(self):
        for cb in self.callbacks:
            cb.close()


class EarlyStopping(Callback):
    """Stops training once an evaluation's mean return reaches `target_return`.

    Args:
        target_return: e.g. 475 for CartPole-v1.
        patience: evaluations at or above the target required in a row. Default 1.
        restore_best: at the end of `fit`, set the agent's policy weights
            (and target network, if any) to those of the best evaluation (as
            Keras' `restore_best_weights`). This happens after every callback's
            `on_train_end`, so a `Checkpoint`'s final save holds the run as
            trained, whatever the order of the callbacks. The weights are kept
            in memory: if the best evaluation came before a resume, they are
            not restored (a warning says so; load the best-evaluated
            checkpoint with `tfrl.load_run(..., checkpoint="best")`).
            Default False.
        verbose: 1 prints a line when training stops early. Default 0.
    """

    def __init__(
        self,
        target_return: float,
        patience: int = 1,
        restore_best: bool = False,
        verbose: int = 0,
    ):
        if patience < 1:
            raise ConfigError(f"patience={patience} must be ≥ 1.")
        self.target_return = float(target_return)
        self.patience = patience
        self.restore_best = restore_best
        self.verbose = verbose
        self._hits = 0
        self.stopped_at: int | None = None
        self._stop_return: float | None = None
        self.best_return: float | None = None
        self.best_step: int | None = None
        self._best_weights: list | None = None

    def _variables(self) -> list:
        agent = self.trainer.agent
        variables = list(agent.policy.variables())
        for name in ("_target_q_network", "_target_actor_network", "_target_critic_network"):
            target = getattr(agent, name, None)
            if target is not None:
                variables += list(target.variables)
        return variables

    def on_evaluate_end(self, env_steps, logs):
        value = logs["eval_return"]
        if self.best_return is None or value > self.best_return:
            self.best_return, self.best_step = float(value), int(env_steps)
            if self.restore_best:
                self._best_weights = [v.numpy() for v in self._variables()]
        self._hits = self._hits + 1 if value >= self.target_return else 0
        if self._hits >= self.patience:
            self.stopped_at = env_steps
            self._stop_return = float(value)
            self.trainer.stop_training = True

    def on_train_end(self, logs=None):
        # As Keras' EarlyStopping: announced at the end, after the last progress line.
        if self.verbose and self.stopped_at is not None:
            in_a_row = f" ({self.patience} evaluations in a row)" if self.patience > 1 else ""
            print(
                f"Early stopping at {self.stopped_at:,} env steps: evaluation mean return "
                f"{self._stop_return:.1f} reached the target return "
                f"{self.target_return:g}{in_a_row}.",
                flush=True,
            )

    def after_train_end(self, logs=None):
        if self.restore_best and self._best_weights is None and self.best_step is not None:
            logger.warning(
                "EarlyStopping(restore_best=True): the best evaluation (env step %d, return "
                "%.2f) came before this run resumed, so its weights are not in memory and the "
                "agent keeps its final weights. Load the best-evaluated checkpoint instead "
                "(tfrl.load_run(..., checkpoint='best'), tfrl evaluate --checkpoint best).",
                self.best_step,
                self.best_return,
            )
        if self.restore_best and self._best_weights is not None:
            for variable, value in zip(self._variables(), self._best_weights, strict=True):
                variable.assign(value)
            logger.info(
                "Restored the policy weights of env step %d (eval return %.2f).",
                self.best_step,
                self.best_return,
            )

    def get_state(self):
        return {"hits": self._hits, "best_return": self.best_return, "best_step": self.best_step}

    def set_state(self, state):
        self._hits = state["hits"]
        self.best_return, self.best_step = state["best_return"], state["best_step"]


class Checkpoint(Callback):
    """Saves everything needed to resume a run, and the best-evaluated policy.

    A checkpoint holds the agent (networks, target network, optimizer state,
    train and env step counters), the replay buffer (off-policy agents), the
    Trainer's random stream, the train-return window, the History, the
    callbacks' state and the env copies' random-number states, plus the mean
    return of the evaluation at its step, if one ran. Episodes in progress
    end at each checkpoint (see `Trainer.end_episodes`), so a run resumed
    from it continues exactly as the uninterrupted run did.

    The cost: env states are not saved, so each resumable save cuts every
    env's episode in progress. Each env is cut every
    `every_env_steps / num_envs` steps (about 160 with the default and 64 envs):
    a run with this callback differs from the same seed's run without it,
    and longer episodes never finish while training. Keep `every_env_steps`
    well above `num_envs` times the episode length. Best-only saves cut
    nothing.

    With `fit(..., resume=True)` the latest checkpoint is restored before
    training starts. Without it, a directory that already holds checkpoints
    is refused rather than overwritten.

    Args:
        directory: where checkpoints go (see `tfrl.training.checkpoint`).
        every_env_steps: save when this many env steps passed since the last
            save. Default 10,000. A final checkpoint is saved when `fit` ends.
        max_to_keep: the newest checkpoints kept. Default 3. The
            best-evaluated checkpoint is kept as well.
        save_best: also save after each evaluation better than every earlier
            one (such a checkpoint is for `load_run(..., checkpoint="best")`,
            `tfrl evaluate`, `tfrl export`; resuming uses the regular ones).
            Default True.
    """

    def __init__(
        self,
        directory: str,
        every_env_steps: int = 10_000,
        max_to_keep: int = 3,
        save_best: bool = True,
    ):
        if every_env_steps < 1:
            raise ConfigError(f"every_env_steps={every_env_steps} must be ≥ 1.")
        check_whole_number("max_to_keep", max_to_keep)
        self.directory = directory
        self.every_env_steps = every_env_steps
        self.max_to_keep = max_to_keep
        self.save_best = save_best
        self._last_saved = 0
        self._best: float | None = None
        self.manager = None

    def prepare(self, resume: bool) -> None:
        """Restores the latest checkpoint (`resume`) or refuses a used directory.

        `fit` calls it before any callback's `on_train_begin`, so a refusal
        writes nothing.
        """
        trainer = self.trainer
        self.manager = trainer.checkpoint_manager(self.directory, self.max_to_keep)
        if resume:
            trainer.load_state(self.manager.restore())
            logger.info("Resumed from %s at env step %d", self.manager.latest(), trainer.env_steps)
        elif self.manager.latest() is not None:
            raise CheckpointError(
                f"{self.directory} already holds checkpoints of a previous run. Pass "
                "resume=True (tfrl train --resume) to continue it, or choose a new directory."
            )
        best = self.manager.best()
        self._best = None if best is None else best[1]["evaluation"]["mean"]
        self._last_saved = trainer.env_steps

    def on_train_begin(self, logs=None):
        if self.manager is None:  # called outside Trainer.fit
            self.prepare(self.trainer.resuming)

    def save(self) -> str:
        """Ends the episodes in progress and saves a resumable checkpoint."""
        self.trainer.end_episodes()
        self._last_saved = self.trainer.env_steps
        return self.manager.save(self.trainer.env_steps, self.trainer.state())

    def on_evaluate_end(self, env_steps, logs):
        value = float(logs["eval_return"])
        if self._best is not None and value <= self._best:
            return
        self._best = value
        if self.save_best:
            self.manager.save(env_steps, self.trainer.state(), resumable=False)

    def on_iteration_end(self, env_steps, logs):
        if env_steps - self._last_saved >= self.every_env_steps:
            self.save()

    def on_train_end(self, logs=None):
        if self.manager is not None and self.trainer.env_steps != self._last_saved:
            self.save()


class CSVLogger(Callback):
    """Writes one row per iteration (with its evaluation, if any) to a CSV file.

    Args:
        path: the CSV file.
        append: continue an existing file (a resumed run), keeping its header.
            Rows past the restored checkpoint's step (written by the run
            after its last checkpoint) are dropped first, so each iteration
            has one row. Default False (start the file anew).
        columns: the logged metrics to write. Default: the Trainer's metrics,
            `CSVLogger.COLUMNS`; a column is empty in rows without it (e.g.
            `loss` before learning starts, `eval_return` between evaluations).
    """

    COLUMNS = (
        "env_steps",
        "train_steps",
        "train_seconds",
        "steps_per_sec",
        "train_return",
        "loss",
        "eval_return",
        "eval_std",
        "eval_seconds",
    )

    def __init__(self, path: str, append: bool = False, columns: tuple[str, ...] | None = None):
        self.path = path
        self.append = append
        self.columns = tuple(columns or self.COLUMNS)
        self._file = None
        self._writer = None

    def on_train_begin(self, logs=None):
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        header = None
        if self.append and os.path.exists(self.path) and os.path.getsize(self.path) > 0:
            with open(self.path, newline="") as f:
                rows = list(csv.reader(f))
            header = rows[0]
            if self.trainer.resuming and "env_steps" in header:
                column = header.index("env_steps")
                kept = [r for r in rows[1:] if r and int(r[column]) <= self.trainer.env_steps]
                if len(kept) < len(rows) - 1:
                    buffer = io.StringIO()
                    csv.writer(buffer).writerows([header, *kept])
                    atomic_write_text(self.path, buffer.getvalue())
        self._file = open(self.path, "a" if self.append else "w", newline="")  # noqa: SIM115
        self._writer = csv.DictWriter(
            self._file, fieldnames=header or list(self.columns), extrasaction="ignore"
        )
        if header is None:
            self._writer.writeheader()

    def on_iteration_end(self, env_steps, logs):
        self._writer.writerow(logs)
        self._file.flush()

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None


class TensorBoard(Callback):
    """Writes every logged metric as a TensorBoard scalar (strings as text) against env steps.

    A resumed run first drops the scalars that the interrupted run wrote
    after its last checkpoint, so no step is plotted twice.
    """

    def __init__(self, log_dir: str):
        self.log_dir = log_dir
        self._writer = None

    def on_train_begin(self, logs=None):
        if self.trainer.resuming:
            for path in glob.glob(os.path.join(self.log_dir, "events.out.tfevents.*")):
                _drop_events_after(path, self.trainer.env_steps)
        self._writer = tf.summary.create_file_writer(self.log_dir)

    def _write(self, env_steps: int, logs: dict[str, Any]) -> None:
        with self._writer.as_default():
            for key, value in logs.items():
                if isinstance(value, (int, float)) and key != "env_steps":
                    tf.summary.scalar(key, value, step=env_steps)
                elif isinstance(value, str):  # e.g. a generated sample text
                    tf.summary.text(key, value, step=env_steps)

    def on_iteration_end(self, env_steps, logs):
        self._write(env_steps, logs)

    def on_evaluate_end(self, env_steps, logs):
        self._write(env_steps, logs)
        self._writer.flush()

    def close(self):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _drop_events_after(path: str, step: int) -> None:
    """Rewrites a TensorBoard event file without the summaries logged after `step`."""
    from tensorboard.compat.proto import event_pb2

    kept, dropped = [], False
    try:
        for record in tf.data.TFRecordDataset(path):
            raw = record.numpy()
            event = event_pb2.Event.FromString(raw)
            if event.HasField("summary") and event.step > step:
                dropped = True
            else:
                kept.append(raw)
    except tf.errors.DataLossError:  # the killed writer's last record is incomplete
        dropped = True
    if dropped:
        tmp = f"{path}.tmp-{os.getpid()}"
        with tf.io.TFRecordWriter(tmp) as writer:
            for raw in kept:
                writer.write(raw)
        os.replace(tmp, path)
