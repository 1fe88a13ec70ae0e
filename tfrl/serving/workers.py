"""Request decoding and answer encoding off the event loop.

`json.loads`, `np.asarray` on nested lists and `json.dumps` are single C calls
that hold the GIL for as long as they run (hundreds of ms for a 10 MiB body), so
a thread would still stall the event loop. Small bodies (the common case) are
handled inline, where a thread hop would cost more than the work; large ones go
to worker processes forked from the server on first use. A fork shares the
server's imported modules, so a worker starts in milliseconds; it closes the
sockets it inherited (so connections the server closes really close) and only
ever runs the pure-Python/numpy codec.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import multiprocessing
import os
import stat
from collections.abc import Mapping
from typing import Any

import numpy as np

from tfrl.serving.codec import decode_request, encode_outputs

__all__ = ["CodecPool"]

INLINE_BODY_BYTES = 16 * 1024  # bodies up to this size are decoded on the event loop
INLINE_OUTPUT_VALUES = 4096  # answers with up to this many values are encoded there


def _close_inherited_sockets() -> None:
    """Worker initializer: close the server's listening and client sockets."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.close(fd)
        except OSError:
            continue


def _encode_to_bytes(outputs: Mapping[str, np.ndarray], fmt: str) -> bytes:
    return json.dumps(encode_outputs(outputs, fmt)).encode()


def _noop() -> None:
    return None


class CodecPool:
    """Decodes `:predict` bodies and encodes answers, off the loop when they are large.

    Args:
        processes: worker processes for large bodies. Default 1.
    """

    def __init__(self, processes: int = 1) -> None:
        self._processes = processes
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                self._processes,
                mp_context=multiprocessing.get_context("fork"),
                initializer=_close_inherited_sockets,
            )
        return self._pool

    async def _run(self, fn: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor(), fn, *args)
        except concurrent.futures.process.BrokenProcessPool:
            self._pool = None  # a worker died (e.g. killed for memory): start afresh
            raise

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
        return await self._run(decode_request, body, signatures, servable, max_rows)

    async def encode(self, outputs: Mapping[str, np.ndarray], fmt: str) -> bytes:
        """The JSON answer body: inline if small, else in a worker."""
        if sum(np.size(v) for v in outputs.values()) <= INLINE_OUTPUT_VALUES:
            return _encode_to_bytes(outputs, fmt)
        return await self._run(_encode_to_bytes, outputs, fmt)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
