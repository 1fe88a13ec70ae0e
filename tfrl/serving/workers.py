"""Request decoding and answer encoding off the event loop.

`json.loads`, `np.asarray` on nested lists and `json.dumps` are single C calls
that hold the GIL for as long as they run (hundreds of ms for a 10 MiB body), so
a thread would still stall the event loop. Small bodies (the common case) are
handled inline, where a process hop would cost more than the work; larger ones
go to worker processes, in two lanes: medium bodies (up to `LARGE_BODY_BYTES`)
and large ones each have their own workers, so a 20 KiB request never queues
behind a 10 MiB decode.

The workers are started clean when the server starts, before any model loads,
and warmed with one call each: multiprocessing's "spawn" (a fresh interpreter
that imports only numpy and the codec, never TensorFlow: signatures are sent
with plain dtypes), which takes about half a second, once. They are never
forked: the process that starts a server may already run TensorFlow's, gRPC's
or its own threads (a test process, a notebook, an application that trained a
model first), and a fork copies whatever locks those threads hold, so the child
can hang on its first malloc or log line, and the interpreter then hangs at exit
waiting for it. Unlike a plain "spawn", the child does not re-run the program's
main script first (a script that starts a server without an
`if __name__ == "__main__":` guard would start a second server in the worker; a
program read from stdin could not start one at all). A worker dies with the
thread that started it (`PR_SET_PDEATHSIG` on Linux, else a watchdog thread), so
a killed server leaves no orphan.

A worker that dies is replaced and the call retried once; a call that hangs
past `timeout` kills the lane's workers and answers 503, so it cannot hold a
model version forever. Stopping the server waits a bounded time for calls under
way, then kills the workers that are left.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import json
import logging
import multiprocessing
import multiprocessing.context
import multiprocessing.spawn
import os
import signal
import stat
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from tfrl.serving.codec import decode_request, encode_outputs, plain_signatures
from tfrl.serving.status import Code, ServingError

__all__ = ["CodecPool"]

logger = logging.getLogger(__name__)

INLINE_BODY_BYTES = 16 * 1024  # bodies up to this size are decoded on the event loop
LARGE_BODY_BYTES = 1024 * 1024  # bodies over this size go to the large lane
INLINE_OUTPUT_VALUES = 4096  # answers with up to this many values are encoded inline
LARGE_OUTPUT_VALUES = 64 * 1024  # answers with more values go to the large lane
STOP_GRACE = 10.0  # seconds a stopping server waits for a worker's call under way
START_TIMEOUT = 120.0  # seconds the workers get to start and answer, at most
_PR_SET_PDEATHSIG = 1


def _close_inherited_sockets() -> None:
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.close(fd)
        except OSError:
            continue


def _init_worker() -> None:
    """Worker initializer: close the server's sockets; exit when the server exits."""
    # A terminal's Ctrl-C reaches the whole process group; the server stops its
    # workers itself, so a worker ignores it (else it prints a KeyboardInterrupt).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if os.path.isdir("/proc/self/fd"):
        _close_inherited_sockets()
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) == 0:
                if os.getppid() != parent:  # the parent died before prctl
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="tfrl-parent-watch", daemon=True).start()


def _decode_in_worker(*args: Any) -> tuple[str, str, dict[str, np.ndarray]]:
    return decode_request(*args)


def _encode_to_bytes(outputs: Mapping[str, np.ndarray], fmt: str) -> bytes:
    return json.dumps(encode_outputs(outputs, fmt)).encode()


def _encode_in_worker(outputs: Mapping[str, np.ndarray], fmt: str) -> bytes:
    return _encode_to_bytes(outputs, fmt)


def _pid() -> int:
    return os.getpid()


_IMPORTED_BY = os.getpid()  # a forked worker inherits the server's value


def _worker_facts() -> dict[str, Any]:
    """How this worker started, seen from inside it (for tests and diagnostics):
    "fork" if it inherited this module from the server, else "spawn"; and whether
    TensorFlow is imported in it."""
    return {
        "pid": os.getpid(),
        "start": "fork" if os.getpid() != _IMPORTED_BY else "spawn",
        "tensorflow": "tensorflow" in sys.modules,
    }


if sys.platform != "win32":
    import io
    from multiprocessing import popen_spawn_posix, reduction, resource_tracker, util

    class _CleanSpawnPopen(popen_spawn_posix.Popen):
        """`popen_spawn_posix.Popen` whose child is not told to import the parent's
        `__main__` (the stdlib's launch, with those keys left out of the data sent)."""

        def _launch(self, process_obj: Any) -> None:
            tracker_fd = resource_tracker.getfd()
            self._fds.append(tracker_fd)
            prep_data = multiprocessing.spawn.get_preparation_data(process_obj._name)
            prep_data.pop("init_main_from_path", None)
            prep_data.pop("init_main_from_name", None)
            payload = io.BytesIO()
            multiprocessing.context.set_spawning_popen(self)
            try:
                reduction.dump(prep_data, payload)
                reduction.dump(process_obj, payload)
            finally:
                multiprocessing.context.set_spawning_popen(None)
            parent_r = child_w = child_r = parent_w = None
            try:
                parent_r, child_w = os.pipe()
                child_r, parent_w = os.pipe()
                command = multiprocessing.spawn.get_command_line(
                    tracker_fd=tracker_fd, pipe_handle=child_r
                )
                self._fds += [child_r, child_w]
                self.pid = util.spawnv_passfds(
                    multiprocessing.spawn.get_executable(), command, self._fds
                )
                self.sentinel = parent_r
                with open(parent_w, "wb", closefd=False) as f:
                    f.write(payload.getbuffer())
            finally:
                to_close = [fd for fd in (parent_r, parent_w) if fd is not None]
                self.finalizer = util.Finalize(self, util.close_fds, to_close)
                for fd in (child_r, child_w):
                    if fd is not None:
                        os.close(fd)

    class _CleanSpawnProcess(multiprocessing.context.SpawnProcess):
        @staticmethod
        def _Popen(process_obj: Any) -> _CleanSpawnPopen:
            return _CleanSpawnPopen(process_obj)

    class _CleanSpawnContext(multiprocessing.context.SpawnContext):
        Process = _CleanSpawnProcess


def _clean_spawn_context() -> multiprocessing.context.BaseContext:
    """multiprocessing's "spawn", but the child does not import the parent's `__main__`
    (the workers run only functions of this module)."""
    if sys.platform == "win32":
        return multiprocessing.get_context("spawn")
    return _CleanSpawnContext()


class _Lane:
    """One process pool; restarted when a worker dies or hangs.

    Its workers are always started clean (see the module docstring).
    """

    def __init__(self, name: str, processes: int) -> None:
        self.name = name
        self.processes = processes
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def executor(self) -> concurrent.futures.ProcessPoolExecutor:
        """The lane's pool, started now if there is none."""
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                self.processes,
                mp_context=_clean_spawn_context(),
                initializer=_init_worker,
            )
        return self._pool

    def facts(self) -> list[dict[str, Any]]:
        """`_worker_facts()` from each worker of the lane (for tests and diagnostics)."""
        pool = self.executor()
        return [pool.submit(_worker_facts).result(60) for _ in range(self.processes)]

    def pids(self) -> list[int]:
        """The lane's worker process ids (for tests and diagnostics)."""
        processes = getattr(self._pool, "_processes", None) or {}
        return sorted(processes)

    def kill(self) -> None:
        """Kills the workers (e.g. one hangs) and drops the pool; the next call starts afresh."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        for pid in list(getattr(pool, "_processes", None) or {}):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self, deadline: float | None = None) -> None:
        """Stops the workers, waiting until `deadline` (`time.monotonic()`; default
        `STOP_GRACE` from now) for calls under way, then kills those still running (a
        hung worker must not keep the process alive)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        pids = list(getattr(pool, "_processes", None) or {})
        pool.shutdown(wait=False, cancel_futures=True)  # its manager thread reaps them
        if deadline is None:
            deadline = time.monotonic() + STOP_GRACE
        for pid in pids:
            # Poll the pid rather than join: the pool's own thread may reap the worker
            # first, after which multiprocessing would report it alive forever.
            while _running(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            if _running(pid):
                logger.warning("A %s-body worker did not stop; killed it", self.name)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def _running(pid: int) -> bool:
    """Whether the worker `pid` has not exited yet (a zombie not yet reaped counts as exited)."""
    if os.path.isdir("/proc"):
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except FileNotFoundError:
            return False
    try:  # no /proc (macOS): ask the kernel
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class CodecPool:
    """Decodes `:predict` bodies and encodes answers, off the loop when they are large.

    Args:
        processes: worker processes in each of the two lanes (medium and large
            bodies). Default 1.
        timeout: seconds a worker may take for one body before it is killed and
            the request answered 503. Default 120.
    """

    def __init__(self, processes: int = 1, timeout: float = 120.0) -> None:
        self._timeout = timeout
        self._medium = _Lane("medium", processes)
        self._large = _Lane("large", processes)

    @property
    def lanes(self) -> tuple[_Lane, _Lane]:
        """The (medium, large) lanes."""
        return self._medium, self._large

    def lane_for(self, body_bytes: int) -> _Lane:
        """The lane that decodes a body of this size (one over `INLINE_BODY_BYTES`)."""
        return self._large if body_bytes > LARGE_BODY_BYTES else self._medium

    async def start(self) -> None:
        """Starts every worker now and waits until each answers. Call it from the
        server's event-loop thread (the workers die with it)."""
        loop = asyncio.get_running_loop()
        started = []
        for lane in self.lanes:
            pool = lane.executor()  # workers start at the first submit, in this thread
            started += [loop.run_in_executor(pool, _pid) for _ in range(lane.processes)]
        # Starting is not a request: a clean start takes ~0.5 s per worker, and far
        # longer on a loaded machine, whatever the per-request timeout is.
        await asyncio.wait_for(asyncio.gather(*started), max(self._timeout, START_TIMEOUT))

    async def _run(self, lane: _Lane, fn: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            try:
                return await asyncio.wait_for(
                    loop.run_in_executor(lane.executor(), fn, *args), self._timeout
                )
            except concurrent.futures.process.BrokenProcessPool:
                lane.kill()  # a worker died (e.g. killed for memory): start afresh
                logger.warning("A %s-body worker died; restarted it", lane.name)
                if attempt == 2:
                    raise ServingError(
                        Code.UNAVAILABLE,
                        "The worker decoding this request died twice (out of memory?); "
                        "send a smaller body or retry later.",
                    ) from None
            except TimeoutError:
                lane.kill()
                raise ServingError(
                    Code.UNAVAILABLE,
                    f"Decoding or encoding this request took over {self._timeout:g} s and "
                    "was stopped; send a smaller body or retry later.",
                ) from None
        raise AssertionError("unreachable")

    async def decode(
        self,
        body: bytes,
        signatures: Mapping[str, Mapping[str, Any]],
        servable: str,
        max_rows: int | None,
    ) -> tuple[str, str, dict[str, np.ndarray]]:
        """`codec.decode_request` for this body: inline if small, else in a worker."""
        if len(body) <= INLINE_BODY_BYTES:
            return decode_request(body, signatures, servable, max_rows)
        lane = self.lane_for(len(body))
        plain = plain_signatures(signatures)  # a tf.DType would import TensorFlow there
        return await self._run(lane, _decode_in_worker, body, plain, servable, max_rows)

    async def encode(self, outputs: Mapping[str, np.ndarray], fmt: str) -> bytes:
        """The JSON answer body: inline if small, else in a worker."""
        values = sum(np.size(v) for v in outputs.values())
        if values <= INLINE_OUTPUT_VALUES:
            return _encode_to_bytes(outputs, fmt)
        lane = self._large if values > LARGE_OUTPUT_VALUES else self._medium
        return await self._run(lane, _encode_in_worker, outputs, fmt)

    def close(self) -> None:
        """Stops the workers, waiting up to `STOP_GRACE` in all for calls under way;
        pending calls are cancelled."""
        deadline = time.monotonic() + STOP_GRACE
        for lane in self.lanes:
            lane.close(deadline)
