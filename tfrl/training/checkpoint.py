"""Atomic, resumable checkpoints of everything a training run needs.

Layout of a checkpoint directory:

    <dir>/ckpt-<env_steps>/    tf.train.Checkpoint files + trainer_state.json
    <dir>/latest               the name of the newest complete checkpoint

Each `ckpt-N` is written under a temporary name and renamed when complete,
then `latest` is replaced atomically: a run killed at any moment leaves the
previous checkpoint intact and `latest` pointing at a whole one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from typing import Any

import tensorflow as tf

from tfrl.atomic import atomic_directory, atomic_write_text
from tfrl.errors import CheckpointError, check_whole_number

__all__ = ["CheckpointManager"]

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
        """The path named by `latest`, or None if there is no checkpoint yet."""
        pointer = os.path.join(self.directory, "latest")
        if not os.path.exists(pointer):
            return None
        with open(pointer) as f:
            path = os.path.join(self.directory, f.read().strip())
        if not os.path.isdir(path):
            raise CheckpointError(
                f"{pointer} names {os.path.basename(path)}, which does not exist. The "
                f"checkpoint directory {self.directory} is damaged; restore it or start "
                "a new run in another directory."
            )
        return path

    def save(self, step: int, state: dict[str, Any]) -> str:
        """Writes `ckpt-<step>` atomically and points `latest` at it."""
        path = os.path.join(self.directory, f"ckpt-{int(step)}")
        with atomic_directory(path, overwrite=True) as tmp:
            self._checkpoint.write(os.path.join(tmp, "ckpt"))
            atomic_write_text(os.path.join(tmp, _STATE_FILE), json.dumps(state))
        atomic_write_text(os.path.join(self.directory, "latest"), os.path.basename(path))
        for old in self.checkpoints()[: -self.max_to_keep]:
            shutil.rmtree(old, ignore_errors=True)
        return path

    def restore(self, path: str | None = None) -> dict[str, Any]:
        """Restores `path` (default: latest) and returns its state dict.

        Raises:
            CheckpointError: nothing to restore, or the files are unreadable or
                do not match the objects being restored. Nothing is written.
        """
        path = path or self.latest()
        if path is None:
            raise CheckpointError(
                f"No checkpoint to resume from in {self.directory}. Start without "
                "resume (or --resume), or point to the directory of the run to continue."
            )
        try:
            with open(os.path.join(path, _STATE_FILE)) as f:
                state = json.load(f)
            status = self._checkpoint.read(os.path.join(path, "ckpt"))
            status.assert_existing_objects_matched()
        except Exception as e:  # a damaged file surfaces as many different errors
            raise CheckpointError(
                f"Checkpoint {path} is corrupt or was written for a different agent or "
                f"configuration ({type(e).__name__}: {str(e)[:300]}). Resume with the same "
                "agent and hyper-parameters, or delete that checkpoint to fall back to an "
                "older one."
            ) from e
        return state
