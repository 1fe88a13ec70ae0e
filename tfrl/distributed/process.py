"""Process plumbing for roles: die with the parent, and treat SIGTERM like Ctrl-C."""

from __future__ import annotations

import ctypes
import os
import signal
import threading

__all__ = ["die_with_parent", "interrupt_on_sigterm"]

_PR_SET_PDEATHSIG = 1

# Loaded here, in the parent: the child runs between fork and exec, where loading a
# library (dlopen) can deadlock on a lock another thread of the parent held.
try:
    _prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
except OSError:  # not Linux with glibc
    _prctl = None


def die_with_parent(parent_pid: int) -> None:
    """Asks Linux to SIGKILL this process when its parent dies (run in the child).

    Used as the launcher's `preexec_fn`, so a launcher killed with SIGKILL
    leaves no role behind. The kernel sends the signal when the parent *thread*
    that started the child ends, so start roles from a thread that lives as long
    as the run (the launcher uses the caller's). Elsewhere than Linux it does
    nothing (the launcher still stops its children on every exit it can see).
    """
    if _prctl is None:
        return
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def interrupt_on_sigterm():
    """SIGTERM raises KeyboardInterrupt, so `finally` blocks run on a stop.

    Returns a function that restores the previous handler. Off the main
    thread (where Python cannot set handlers) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGTERM, _interrupt)
    return lambda: signal.signal(signal.SIGTERM, previous)
