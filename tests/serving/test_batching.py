import asyncio
import concurrent.futures
import threading

import numpy as np
import pytest

from tfrl.serving.batching import Batcher, BatchingOptions
from tfrl.serving.status import Code, ServingError


class Model:
    """Doubles its input; records the batch sizes it was called with."""

    def __init__(self, delay: threading.Event | None = None):
        self.calls: list[int] = []
        self.gate = delay

    def __call__(self, feeds):
        if self.gate is not None:
            self.gate.wait(5)
        x = feeds["x"]
        if (x < 0).any():
            raise ValueError("negative input")
        self.calls.append(len(x))
        return {"y": x * 2}


def run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_share_calls_and_get_their_own_rows():
    model = Model()
    executor = concurrent.futures.ThreadPoolExecutor(1)
    batcher = Batcher(model, executor, BatchingOptions(max_batch_size=8), batchable=True)

    async def main():
        requests = [np.full((1 + i % 3, 1), i, np.float32) for i in range(20)]
        results = await asyncio.gather(*(batcher.submit({"x": r}) for r in requests))
        for r, out in zip(requests, results):
            np.testing.assert_array_equal(out["y"], r * 2)

    run(main())
    assert sum(model.calls) == sum(1 + i % 3 for i in range(20))
    assert len(model.calls) < 20  # some requests went together
    assert max(model.calls) <= 8
    executor.shutdown()


def test_one_bad_request_does_not_fail_its_batch():
    gate = threading.Event()
    model = Model(gate)
    executor = concurrent.futures.ThreadPoolExecutor(1)
    batcher = Batcher(model, executor, BatchingOptions(), batchable=True)

    async def main():
        first = asyncio.ensure_future(batcher.submit({"x": np.ones((1, 1))}))
        await asyncio.sleep(0.05)  # first call is running; the next three queue up
        rest = [
            asyncio.ensure_future(batcher.submit({"x": np.full((1, 1), v)})) for v in (1, -1, 2)
        ]
        await asyncio.sleep(0.05)
        gate.set()
        results = await asyncio.gather(first, *rest, return_exceptions=True)
        assert isinstance(results[2], ValueError)
        assert [r["y"].item() for i, r in enumerate(results) if i != 2] == [2, 2, 4]

    run(main())
    executor.shutdown()


def test_full_queue_is_resource_exhausted():
    gate = threading.Event()
    executor = concurrent.futures.ThreadPoolExecutor(1)
    batcher = Batcher(Model(gate), executor, BatchingOptions(max_enqueued=2), batchable=True)

    async def main():
        running = asyncio.ensure_future(batcher.submit({"x": np.ones((1, 1))}))
        await asyncio.sleep(0.05)
        queued = [asyncio.ensure_future(batcher.submit({"x": np.ones((1, 1))})) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(ServingError, match="batch queue is full") as info:
            await batcher.submit({"x": np.ones((1, 1))})
        assert info.value.code is Code.RESOURCE_EXHAUSTED
        gate.set()
        await asyncio.gather(running, *queued)

    run(main())
    executor.shutdown()


def test_bad_options():
    with pytest.raises(ValueError, match="max_batch_size=0; use 1 or more"):
        BatchingOptions(max_batch_size=0)


def test_large_request_is_split_and_small_ones_go_between_its_calls():
    calls: list[list[float]] = []

    def model(feeds):
        calls.append(feeds["x"][:, 0].tolist())
        return {"y": feeds["x"] * 2}

    executor = concurrent.futures.ThreadPoolExecutor(1)
    batcher = Batcher(model, executor, BatchingOptions(max_batch_size=4), batchable=True)

    async def main():
        big = np.arange(10, dtype=np.float32).reshape(10, 1)
        big_task = asyncio.ensure_future(batcher.submit({"x": big}))
        await asyncio.sleep(0)  # the first call (4 rows of big) is under way
        smalls = [batcher.submit({"x": np.full((1, 1), v, np.float32)}) for v in (100, 101)]
        outs = await asyncio.gather(big_task, *smalls)
        np.testing.assert_array_equal(outs[0]["y"], big * 2)  # rows back in order
        assert [o["y"].item() for o in outs[1:]] == [200, 202]

    run(main())
    # The small requests ran in the second call, right after the big one's first
    # slice, not after all three of its calls; no call exceeded max_batch_size.
    assert calls == [[0, 1, 2, 3], [100, 101, 4, 5], [6, 7, 8, 9]]
    executor.shutdown()


def test_a_split_request_whose_outputs_lack_the_batch_dimension_fails_cleanly():
    def model(feeds):  # one value per call, whatever the batch
        return {"y": np.float32(feeds["x"].sum())}

    executor = concurrent.futures.ThreadPoolExecutor(1)
    batcher = Batcher(model, executor, BatchingOptions(max_batch_size=2), batchable=True)

    async def main():
        big = batcher.submit({"x": np.ones((5, 1), np.float32)})
        with pytest.raises(ServingError) as raised:
            await asyncio.wait_for(big, 10)
        small = await asyncio.wait_for(batcher.submit({"x": np.ones((2, 1), np.float32)}), 10)
        return raised.value, small

    error, small = run(main())
    executor.shutdown()
    assert error.code is Code.FAILED_PRECONDITION
    assert "cannot be split" in str(error) and "at most 2 examples" in str(error)
    assert float(small["y"]) == 2.0  # the batcher still serves
