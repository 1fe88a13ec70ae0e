"""One launcher per run directory: an exclusive `flock` on `<run dir>/.lock`.

The lock belongs to the launcher's open file, so the kernel drops it when the
launcher exits in any way (even SIGKILL); a stale file never blocks a new run.
The file holds the owner's PID, for the error a second launcher gets.
"""

from __future__ import annotations

import fcntl
import os

from tfrl.errors import TfrlError

__all__ = ["RunLock", "RunLockedError"]

LOCK_FILE = ".lock"


class RunLockedError(TfrlError, RuntimeError):
    """Another launcher holds the run directory."""


class RunLock:
    """`with RunLock(output_dir):` holds the run directory or raises `RunLockedError`."""

    def __init__(self, output_dir: str):
        self.path = os.path.join(output_dir, LOCK_FILE)
        self._fd: int | None = None

    def acquire(self) -> None:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunLockedError(
                f"{os.path.dirname(self.path)} is in use by another distributed run "
                f"(launcher PID {owner}). Wait for it to end or stop it (kill {owner}), "
                "or choose another --output directory."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
