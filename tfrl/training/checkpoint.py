"""Atomic, resumable checkpoints of everything a training run needs.

Layout of a checkpoint directory:

    <dir>/ckpt-<env_steps>/    tf.train.Checkpoint files + trainer_state.json
    <dir>/latest               the name of the newest resumable checkpoint

`trainer_state.json` records the evaluation at step N (`"evaluation": {"mean",
"std"}`, or null), so the best-evaluated checkpoint can be found (`best()`,
`select("best")`). Checkpoints saved only because an evaluation was the
best so far are not resume points (`"resumable": false`); `latest` never
names them.

Each `ckpt-N` is written under a temporary name and renamed when complete,
then `latest` is replaced atomically: a run killed at any moment leaves the
previous checkpoint intact and `latest` pointing at a whole one.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from typing import Any

import tensorflow as tf

from tfrl.atomic import atomic_directory, atomic_write_text
from tfrl.errors import CheckpointError, check_whole_number

__all__ = ["CheckpointManager"]

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^ckpt-(\d+)$")
_STATE_FILE = "trainer_state.json"


class CheckpointManager:
    """Saves and restores a set of trackables plus a JSON state dict.

    Args:
        directory: where checkpoints live.
        trackables: objects for `tf.train.Checkpoint` (agent, replay buffer, ...).
        max_to_keep: older complete checkpoints beyond this are deleted. Default 3.
    """

    def __init__(self, directory: str, trackables: dict[str, Any], max_to_keep: int = 3):
        check_whole_number("max_to_keep", max_to_keep)
        self.directory = os.path.abspath(directory)
        self.max_to_keep = max_to_keep
        self._checkpoint = tf.train.Checkpoint(**trackables)

    def checkpoints(self) -> list[str]:
        """Complete checkpoint paths, oldest first."""
        if not os.path.isdir(self.directory):
            return []
        found = [
            (int(m.group(1)), name)
            for name in os.listdir(self.directory)
            if (m := _NAME.match(name))
        ]
        return [os.path.join(self.directory, name) for _, name in sorted(found)]

    def latest(self) -> str | None:
        """The newest resumable checkpoint: the one `latest` names, or None if none yet.

        If that one was deleted (e.g. because it was damaged), the newest
        remaining resumable checkpoint is used instead, with a warning;
        best-only checkpoints never count.
        """
        pointer = os.path.join(self.directory, "latest")
        if not os.path.exists(pointer):
            return None
        with open(pointer) as f:
            path = os.path.join(self.directory, f.read().strip())
        if os.path.isdir(path):
            return path
        for older in reversed(self.checkpoints()):
            try:
                resumable = self.read_state(older).get("resumable", True)
            except CheckpointError:
                continue
            if resumable:
                logger.warning(
                    "%s names %s, which does not exist; using %s, the newest resumable "
                    "checkpoint left.",
                    pointer,
                    os.path.basename(path),
                    os.path.basename(older),
                )
                return older
        raise CheckpointError(
            f"{pointer} names {os.path.basename(path)}, which does not exist, and no other "
            f"resumable checkpoint is left in {self.directory}. Start a new run in another "
            "directory."
        )

    def save(self, step: int, state: dict[str, Any], resumable: bool = True) -> str:
        """Writes `ckpt-<step>` atomically; a resumable one becomes `latest`.

        Then deletes checkpoints older than the newest `max_to_keep`, except
        `latest` and the best-evaluated one.
        """
        path = os.path.join(self.directory, f"ckpt-{int(step)}")
        state = {**state, "resumable": resumable}
        with atomic_directory(path, overwrite=True) as tmp:
            self._checkpoint.write(os.path.join(tmp, "ckpt"))
            atomic_write_text(os.path.join(tmp, _STATE_FILE), json.dumps(state))
        if resumable:
            atomic_write_text(os.path.join(self.directory, "latest"), os.path.basename(path))
        keep = {self.latest(), (self.best() or (None,))[0]}
        for old in self.checkpoints()[: -self.max_to_keep]:
            if old not in keep:
                shutil.rmtree(old, ignore_errors=True)
        return path

    def read_state(self, path: str) -> dict[str, Any]:
        """The `trainer_state.json` of a checkpoint."""
        file = os.path.join(path, _STATE_FILE)
        try:
            with open(file) as f:
                return json.load(f)
        except (OSError, ValueError) as e:
            raise CheckpointError(
                f"Checkpoint {path} is damaged: its {_STATE_FILE} cannot be read "
                f"({type(e).__name__}). Delete {path} to resume from the newest older checkpoint."
            ) from e

    def best(self) -> tuple[str, dict[str, Any]] | None:
        """(path, state) of the checkpoint with the highest evaluation mean, or None.

        Ties go to the earlier checkpoint (the first to reach that return).
        """
        found = None
        for path in self.checkpoints():
            try:
                state = self.read_state(path)
            except CheckpointError:
                continue
            evaluation = state.get("evaluation")
            if evaluation and (
                found is None or evaluation["mean"] > found[1]["evaluation"]["mean"]
            ):
                found = (path, state)
        return found

    def select(self, which: str | int = "best") -> tuple[str, str]:
        """(path, why it was chosen) for "best", "latest" or an env step N.

        "best" falls back to the latest checkpoint when none has an evaluation.
        """
        if which == "best":
            best = self.best()
            if best is not None:
                mean = best[1]["evaluation"]["mean"]
                return best[0], f"the best evaluation (mean return {mean:.2f})"
            latest = self.latest()
            if latest is not None:
                return latest, "the latest; no checkpoint has an evaluation"
        elif which == "latest":
            latest = self.latest()
            if latest is not None:
                return latest, "the latest"
        else:
            path = os.path.join(self.directory, f"ckpt-{int(which)}")
            if os.path.isdir(path):
                return path, f"env step {int(which)}, as asked"
            steps = [os.path.basename(p).split("-")[1] for p in self.checkpoints()]
            raise CheckpointError(
                f"{self.directory} has no checkpoint at env step {which}. It has: "
                f"{', '.join(steps) or 'none'}. Pass one of those, best or latest."
            )
        raise CheckpointError(
            f"{self.directory} holds no checkpoint yet. Train first (checkpoints are "
            "written every checkpoint_every env steps and when training ends)."
        )

    def restore(self, path: str | None = None) -> dict[str, Any]:
        """Restores `path` (default: latest) and returns its state dict.

        Raises:
            CheckpointError: nothing to restore, or the files are unreadable or
                do not match the objects being restored: one sentence naming
                the checkpoint and what to do. Nothing is written.
        """
        path = path or self.latest()
        if path is None:
            raise CheckpointError(
                f"No checkpoint to resume from in {self.directory}. Start without "
                "resume (or --resume), or point to the directory of the run to continue."
            )
        state = self.read_state(path)
        try:
            status = self._checkpoint.read(os.path.join(path, "ckpt"))
            status.assert_existing_objects_matched()
        except (AssertionError, ValueError, KeyError) as e:
            raise CheckpointError(
                f"Checkpoint {path} was written for a different agent, network or "
                f"configuration ({_mismatch(e)}). Load it with the agent and "
                "hyper-parameters that wrote it (those in the run's run.json), or start "
                "a new run in another directory."
            ) from e
        except Exception as e:  # a damaged file surfaces as many different errors
            raise CheckpointError(
                f"Checkpoint {path} is damaged ({type(e).__name__} while reading its files). "
                "Delete that checkpoint directory to resume from the newest older one."
            ) from e
        return state


def _mismatch(error: Exception) -> str:
    """What did not match, in a few words and without the arrays TF puts in its messages."""
    text = str(error)
    if "incompatible" in text.lower() or "shape" in text.lower():
        return "variable shapes differ"
    if "not bound" in text or "Unresolved object" in text or "unmatched" in text.lower():
        return "its saved objects and the ones being restored differ"
    return type(error).__name__
