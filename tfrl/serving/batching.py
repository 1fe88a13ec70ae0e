"""Server-side batching: concurrent requests to one signature share one model call.

A signature call costs about the same for 1 or 64 examples, so while one call
runs, requests that arrive queue up and go together in the next call
(concatenated along dimension 0, split back afterwards). With no concurrent
load a request runs at once; an optional `timeout` waits a little for
company. The queue is bounded: beyond it requests fail fast with
RESOURCE_EXHAUSTED (HTTP 429), as TF Serving's batch scheduler does.

A request larger than `max_batch_size` is split: each model call takes at
most `max_batch_size` of its examples, and after each call the rest of it goes
to the back of the queue, behind requests that arrived meanwhile. So a large
request never delays a small one by more than the one model call under way.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping

import numpy as np

from tfrl.errors import ConfigError
from tfrl.serving.status import Code, ServingError

__all__ = ["Batcher", "BatchingOptions"]

logger = logging.getLogger(__name__)

RunFn = Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
    """How requests are grouped.

    Attributes:
        max_batch_size: most examples in one model call. Default 64.
        timeout: seconds to wait for more requests before a partial batch runs
            when the model is idle. Default 0 (never wait: batches form only
            from requests that queue while a call is running).
        max_enqueued: most requests waiting; more get HTTP 429. Default 1024.
        enabled: False runs every request on its own. Default True.
    """

    max_batch_size: int = 64
    timeout: float = 0.0
    max_enqueued: int = 1024
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ConfigError(f"max_batch_size={self.max_batch_size}; use 1 or more.")
        if self.timeout < 0:
            raise ConfigError(f"batch timeout={self.timeout}; use 0 or more seconds.")
        if self.max_enqueued < 1:
            raise ConfigError(f"max_enqueued={self.max_enqueued}; use 1 or more.")


@dataclasses.dataclass
class _Item:
    feeds: Mapping[str, np.ndarray]
    size: int
    future: asyncio.Future
    arrived: float
    done: int = 0  # examples already run (a split request)
    parts: list[dict[str, np.ndarray]] = dataclasses.field(default_factory=list)

    def feeds_slice(self, stop: int) -> dict[str, np.ndarray]:
        if self.done == 0 and stop == self.size:
            return dict(self.feeds)
        return {k: v[self.done : stop] for k, v in self.feeds.items()}


_Slice = tuple[_Item, int]  # an item and the example index its slice stops at


class Batcher:
    """Queues calls to one signature of one model version and runs them in batches.

    Args:
        run: the model call, `feeds -> outputs` (blocking; runs in `executor`).
        executor: threads for model calls.
        options: `BatchingOptions`.
        batchable: whether inputs and outputs all have a batch dimension 0.
    """

    def __init__(
        self,
        run: RunFn,
        executor: concurrent.futures.Executor,
        options: BatchingOptions,
        batchable: bool,
    ) -> None:
        self._run = run
        self._executor = executor
        self._options = options
        self._batchable = batchable and options.enabled
        self._queue: collections.deque[_Item] = collections.deque()
        self._worker: asyncio.Task | None = None

    async def submit(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs `feeds` (possibly with other requests' feeds); returns this request's outputs."""
        loop = asyncio.get_running_loop()
        if not self._batchable:
            return await loop.run_in_executor(self._executor, self._run, feeds)
        if len(self._queue) >= self._options.max_enqueued:
            raise ServingError(
                Code.RESOURCE_EXHAUSTED,
                f"The batch queue is full ({self._options.max_enqueued} requests waiting); "
                "retry later or raise --max_enqueued_batches.",
            )
        size = len(next(iter(feeds.values())))
        item = _Item(feeds, size, loop.create_future(), time.perf_counter())
        self._queue.append(item)
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._drain())
        return await item.future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            if self._options.timeout > 0:
                wait = self._queue[0].arrived + self._options.timeout - time.perf_counter()
                if wait > 0 and self._queued_examples() < self._options.max_batch_size:
                    await asyncio.sleep(wait)
            batch = self._take()
            try:
                results = await loop.run_in_executor(self._executor, self._run_batch, batch)
            except BaseException as e:  # handed to every waiting request
                for item, _ in batch:
                    if not item.future.done():
                        item.future.set_exception(e)
                if isinstance(e, asyncio.CancelledError):
                    raise
                continue
            for (item, stop), result in zip(batch, results):
                if item.future.done():
                    continue
                try:
                    self._collect(item, stop, result)
                except Exception as e:  # this request's own failure; the others go on
                    item.future.set_exception(e)

    def _collect(
        self, item: _Item, stop: int, result: dict[str, np.ndarray] | BaseException
    ) -> None:
        """Keeps one slice's outputs; answers the request once all its slices ran."""
        if isinstance(result, BaseException):
            raise result
        if stop - item.done < item.size:  # a split request: outputs must be per example
            for key, value in result.items():
                if np.ndim(value) == 0 or np.shape(value)[0] != stop - item.done:
                    raise ServingError(
                        Code.FAILED_PRECONDITION,
                        f"Output '{key}' has shape {list(np.shape(value))} for a call of "
                        f"{stop - item.done} examples: it has no batch dimension, so this "
                        f"request of {item.size} examples cannot be split across model "
                        f"calls; send at most {self._options.max_batch_size} examples.",
                    )
        item.parts.append(result)
        item.done = stop
        if stop < item.size:
            self._queue.append(item)  # behind requests that came meanwhile
        elif len(item.parts) == 1:
            item.future.set_result(item.parts[0])
        else:
            item.future.set_result(
                {k: np.concatenate([p[k] for p in item.parts]) for k in item.parts[0]}
            )

    def _queued_examples(self) -> int:
        return sum(item.size - item.done for item in self._queue)

    def _take(self) -> list[_Slice]:
        """Requests from the front of the queue, up to max_batch_size examples; the
        last one may contribute only part of its examples."""
        room = self._options.max_batch_size
        batch: list[_Slice] = []
        while self._queue and room > 0:
            item = self._queue[0]
            left = item.size - item.done
            if left > room and batch and item.size <= self._options.max_batch_size:
                break  # a small request is not split; it goes first in the next call
            self._queue.popleft()
            take = min(left, room)
            batch.append((item, item.done + take))
            room -= take
        return batch

    def _run_batch(self, batch: list[_Slice]) -> list[dict[str, np.ndarray] | BaseException]:
        """Runs a batch in one call; falls back to one call per request if that fails."""
        parts = [item.feeds_slice(stop) for item, stop in batch]
        if len(batch) == 1:
            return [self._run(parts[0])]
        names = list(parts[0])
        feeds = {n: np.concatenate([p[n] for p in parts]) for n in names}
        sizes = [stop - item.done for item, stop in batch]
        total = sum(sizes)
        try:
            outputs = self._run(feeds)
        except Exception:  # one bad request should not fail its neighbours
            logger.debug("Batched call failed; running %d requests one by one", len(batch))
            return [self._run_one(p) for p in parts]
        if any(np.ndim(v) == 0 or np.shape(v)[0] != total for v in outputs.values()):
            self._batchable = False  # outputs are not per example: cannot split them
            return [self._run_one(p) for p in parts]
        results: list[dict[str, np.ndarray] | BaseException] = []
        start = 0
        for size in sizes:
            stop = start + size
            results.append({k: v[start:stop] for k, v in outputs.items()})
            start = stop
        return results

    def _run_one(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray] | BaseException:
        try:
            return self._run(feeds)
        except Exception as e:
            return e
