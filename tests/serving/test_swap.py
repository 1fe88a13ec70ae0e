"""Hot swap: a slow load does not hold up requests; `tfrl serve` keeps GC and GIL pauses short."""

import gc
import os
import shutil
import sys
import threading
import time
import weakref

import pytest

import tfrl.serving.registry as registry
from tests.serving.client import call
from tfrl.export.session_model import SessionModel
from tfrl.serving import ModelConfig, Server
from tfrl.serving import server as server_module

MODEL = "cartpole_dqn"
GOOD = {"instances": [[0.1, 0.2, 0.3, 0.4]]}


def versions_and_states(url):
    status = call("GET", f"{url}/v1/models/{MODEL}")[1]["model_version_status"]
    return {v["version"]: v["state"] for v in status}


def test_requests_are_answered_while_a_new_version_loads(dqn_base, tmp_path, monkeypatch):
    base = tmp_path / "m"
    shutil.copytree(os.path.join(dqn_base, "1"), base / "1")
    release = threading.Event()
    loading = threading.Event()

    def slow_session_model(path, *args, **kwargs):
        if os.path.basename(path) == "2":
            loading.set()
            assert release.wait(30), "test never released the slow load"
        return SessionModel(path, *args, **kwargs)

    monkeypatch.setattr(registry, "SessionModel", slow_session_model)
    with Server([ModelConfig(MODEL, str(base))], port=0, poll_interval=0.05) as s:
        url = f"{s.url}/v1/models/{MODEL}:predict"
        assert call("POST", url, GOOD)[0] == 200
        shutil.copytree(os.path.join(dqn_base, "1"), base / ".2.tmp")
        os.rename(base / ".2.tmp", base / "2")
        try:
            assert loading.wait(30), "version 2 was never loaded"
            assert versions_and_states(s.url) == {"2": "LOADING", "1": "AVAILABLE"}
            # The load is stuck; every request is still answered, quickly, by version 1.
            for _ in range(50):
                t0 = time.perf_counter()
                status, body = call("POST", url, GOOD, timeout=5)
                assert status == 200, body
                assert time.perf_counter() - t0 < 1.0
            assert (
                call("GET", f"{s.url}/v1/models/{MODEL}/metadata")[1]["model_spec"]["version"]
                == "1"
            )
        finally:
            release.set()
        deadline = time.monotonic() + 30
        while versions_and_states(s.url) != {"2": "AVAILABLE", "1": "END"}:
            assert time.monotonic() < deadline, versions_and_states(s.url)
            time.sleep(0.05)
        assert call("POST", url, GOOD)[0] == 200


def test_serve_forever_freezes_startup_objects_and_shortens_switch_interval(monkeypatch):
    seen = []

    async def run_async(self, started=None):
        seen.append((gc.get_freeze_count(), sys.getswitchinterval()))

    monkeypatch.setattr(Server, "run_async", run_async)
    assert gc.get_freeze_count() == 0
    interval = sys.getswitchinterval()
    try:
        Server([ModelConfig(MODEL, "unused")]).serve_forever()
    finally:
        gc.unfreeze()
        sys.setswitchinterval(interval)
    assert len(seen) == 1
    frozen, switch = seen[0]
    assert frozen > 10_000  # tensorflow alone is far more objects
    assert switch == pytest.approx(server_module.SWITCH_INTERVAL)


def test_freeze_startup_objects_keeps_later_garbage_collectable():
    class Cycle:
        pass

    try:
        server_module.freeze_startup_objects()
        a = Cycle()
        a.self = a  # only the cyclic collector can free it
        ref = weakref.ref(a)
        del a
        gc.collect()
        assert ref() is None
    finally:
        gc.unfreeze()
