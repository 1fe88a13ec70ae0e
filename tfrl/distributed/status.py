"""Status files: each role writes a small JSON of its counters; the launcher reads them.

Files live in `<run dir>/status/<role>.json` and are replaced atomically, so a
reader never sees half a file. They carry what the progress line shows
(learner steps/s, actor env steps/s, replay size, the latest evaluation).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from tfrl.atomic import atomic_write_text

__all__ = ["read_status", "write_status"]


def _path(output_dir: str, role: str) -> str:
    return os.path.join(output_dir, "status", f"{role}.json")


def write_status(output_dir: str, role: str, **fields: Any) -> None:
    """Replaces `<output_dir>/status/<role>.json` with `fields` plus pid and time."""
    record = {"role": role, "pid": os.getpid(), "time": time.time(), **fields}
    atomic_write_text(_path(output_dir, role), json.dumps(record))


def read_status(output_dir: str, role: str) -> dict[str, Any] | None:
    """The role's last status, or None if it has written none (or it is unreadable)."""
    try:
        with open(_path(output_dir, role)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
