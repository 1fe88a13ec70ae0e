"""A small blocking HTTP client for the server tests."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from typing import Any

import aiohttp

TINY = json.dumps({"instances": [[0.1, 0.2, 0.3, 0.4]]}).encode()  # one CartPole row


def call(method: str, url: str, body: Any = None, timeout: float = 30) -> tuple[int, Any]:
    """(HTTP status, parsed JSON body). `body` may be bytes or a JSON-able value."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


async def open_loop(
    url: str, big: Any, interval: float = 0.005, least: int = 200, most: int = 3000
) -> list[float]:
    """Tiny requests sent on a schedule (request i due at start + i * interval), not one
    after another, so a stall of the server delays every request due during it;
    latency counts from the due time. Stops (after `least`) once the future `big`
    is done; returns the latencies in seconds."""
    latencies = []
    async with aiohttp.ClientSession() as session:

        async def one(due):
            async with session.post(url, data=TINY) as response:
                assert response.status == 200, await response.text()
                await response.read()
            latencies.append(time.perf_counter() - due)

        tasks = []
        start = time.perf_counter()
        for i in range(most):
            due = start + i * interval
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            if i >= least and big.done():
                break
            tasks.append(asyncio.ensure_future(one(due)))
        await asyncio.gather(*tasks)
    return latencies
