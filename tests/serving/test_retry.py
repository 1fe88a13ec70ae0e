"""A version that fails to load is retried: when its files change, or per interval up to a bound."""

import argparse
import logging
import os
import pathlib
import shutil
import threading
import time

import pytest

import tfrl.serving.registry as registry
from tests.export.tiny_agents import observations
from tests.serving.client import call
from tfrl.cli import serve as serve_cli
from tfrl.errors import ConfigError
from tfrl.export.session_model import SessionModel
from tfrl.serving import ModelConfig, Server, ServerOptions

MODEL = "cartpole_dqn"
BODY = {"inputs": observations(4).tolist()}


def statuses(url):
    status = call("GET", f"{url}/v1/models/{MODEL}")[1]["model_version_status"]
    return {v["version"]: (v["state"], v["status"]["error_code"]) for v in status}


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def q_values(url, version=None):
    path = f"/versions/{version}" if version else ""
    status, body = call("POST", f"{url}/v1/models/{MODEL}{path}:predict", BODY)
    assert status == 200, body
    return body["outputs"]["q_values"]


def test_half_copied_version_is_served_once_the_copy_completes(dqn_base, other_export, tmp_path):
    base = tmp_path / "m"
    shutil.copytree(os.path.join(dqn_base, "1"), base / "1")
    pb = pathlib.Path(other_export, "saved_model.pb").read_bytes()
    # A long retry interval: only the files changing can bring version 2 back.
    with Server(
        [ModelConfig(MODEL, str(base))], port=0, poll_interval=0.05, load_retry_interval_seconds=60
    ) as s:
        # Version 2 copied in place (no atomic rename): half its saved_model.pb so far.
        (base / "tmp2").mkdir()
        with open(base / "tmp2" / "saved_model.pb", "wb") as f:
            f.write(pb[: len(pb) // 2])
        os.rename(base / "tmp2", base / "2")  # (only so no poll sees an empty file)
        assert wait_for(lambda: statuses(s.url).get("2") == ("END", "UNKNOWN"))
        assert statuses(s.url) == {"2": ("END", "UNKNOWN"), "1": ("AVAILABLE", "OK")}
        error = call("GET", f"{s.url}/v1/models/{MODEL}/versions/2")[1]
        assert "cannot load" in error["model_version_status"][0]["status"]["error_message"]
        q_old = q_values(s.url)  # version 1 still answers
        meta = call("GET", f"{s.url}/v1/models/{MODEL}/metadata")[1]
        assert meta["model_spec"]["version"] == "1"
        time.sleep(0.3)  # several polls: unchanged files are not reloaded
        assert statuses(s.url)["2"] == ("END", "UNKNOWN")

        # The copy completes.
        with open(base / "2" / "saved_model.pb", "ab") as f:
            f.write(pb[len(pb) // 2 :])
        shutil.copytree(os.path.join(other_export, "variables"), base / "2" / "variables")
        assert wait_for(
            lambda: statuses(s.url) == {"2": ("AVAILABLE", "OK"), "1": ("END", "OK")}
        ), statuses(s.url)
        q_new = q_values(s.url)
        assert q_new != q_old
        assert q_values(s.url, version=2) == q_new
        meta = call("GET", f"{s.url}/v1/models/{MODEL}/metadata")[1]
        assert meta["model_spec"]["version"] == "2"


class FlakyLoads:
    """Stands in for SessionModel: version 2's first `failures` loads fail."""

    def __init__(self, failures):
        self.failures = failures
        self.attempts = 0
        self.lock = threading.Lock()

    def __call__(self, path, *args, **kwargs):
        if os.path.basename(path) == "2":
            with self.lock:
                self.attempts += 1
                if self.attempts <= self.failures:
                    raise OSError(f"simulated load failure {self.attempts}")
        return SessionModel(path, *args, **kwargs)


def version_1(dqn_base, tmp_path):
    base = tmp_path / "m"
    shutil.copytree(os.path.join(dqn_base, "1"), base / "1")
    return base


def add_version_2(base, other_export):
    shutil.copytree(other_export, base / ".2.tmp")
    os.rename(base / ".2.tmp", base / "2")


def test_failed_version_is_retried_after_the_interval(
    dqn_base, other_export, tmp_path, monkeypatch
):
    flaky = FlakyLoads(failures=2)
    monkeypatch.setattr(registry, "SessionModel", flaky)
    base = version_1(dqn_base, tmp_path)
    with Server(
        [ModelConfig(MODEL, str(base))],
        port=0,
        poll_interval=0.02,
        max_num_load_retries=3,
        load_retry_interval_seconds=0.2,
    ) as s:
        add_version_2(base, other_export)
        assert wait_for(lambda: flaky.attempts >= 1)
        # Version 1 answers while version 2 fails and waits for its retry.
        assert wait_for(lambda: statuses(s.url).get("2") == ("END", "UNKNOWN"))
        assert statuses(s.url)["1"] == ("AVAILABLE", "OK")
        q_values(s.url)
        assert wait_for(lambda: statuses(s.url) == {"2": ("AVAILABLE", "OK"), "1": ("END", "OK")})
        assert flaky.attempts == 3
        assert call("GET", f"{s.url}/v1/models/{MODEL}/metadata")[1]["model_spec"]["version"] == "2"
        q_values(s.url, version=2)


def test_version_that_keeps_failing_stops_being_retried(
    dqn_base, other_export, tmp_path, monkeypatch
):
    flaky = FlakyLoads(failures=10**9)
    monkeypatch.setattr(registry, "SessionModel", flaky)
    base = version_1(dqn_base, tmp_path)
    with Server(
        [ModelConfig(MODEL, str(base))],
        port=0,
        poll_interval=0.02,
        max_num_load_retries=2,
        load_retry_interval_seconds=0.05,
    ) as s:
        add_version_2(base, other_export)
        assert wait_for(lambda: flaky.attempts >= 3)
        time.sleep(0.5)  # ten retry intervals, 25 polls
        assert flaky.attempts == 3  # the first load and 2 retries, no more
        assert statuses(s.url) == {"2": ("END", "UNKNOWN"), "1": ("AVAILABLE", "OK")}
        error = call("GET", f"{s.url}/v1/models/{MODEL}/versions/2")[1]
        assert (
            "simulated load failure 3"
            in (error["model_version_status"][0]["status"]["error_message"])
        )
        q_values(s.url)
        # New files get a fresh attempt (and a fresh budget of retries).
        os.utime(base / "2" / "saved_model.pb", ns=(1, 1))
        assert wait_for(lambda: flaky.attempts >= 6)
        time.sleep(0.3)
        assert flaky.attempts == 6
        assert statuses(s.url)["1"] == ("AVAILABLE", "OK")


def test_retry_options_are_checked_and_exposed_as_flags(dqn_base, monkeypatch):
    with pytest.raises(ConfigError, match="max_num_load_retries=-1"):
        ServerOptions(max_num_load_retries=-1)
    with pytest.raises(ConfigError, match="load_retry_interval_seconds=-1"):
        ServerOptions(load_retry_interval_seconds=-1)
    parser = argparse.ArgumentParser()
    serve_cli.register(parser.add_subparsers())
    args = parser.parse_args(["serve"])
    assert (args.max_num_load_retries, args.load_retry_interval_micros) == (5, 60_000_000)
    assert (ServerOptions().max_num_load_retries, ServerOptions().load_retry_interval_seconds) == (
        5,
        60.0,
    )
    args = parser.parse_args(
        ["serve", "--max_num_load_retries", "1", "--load_retry_interval_micros", "250000"]
    )
    assert (args.max_num_load_retries, args.load_retry_interval_micros) == (1, 250_000)
    started = []
    monkeypatch.setattr(Server, "serve_forever", lambda self: started.append(self.options))
    log = logging.getLogger("tfrl.serving")
    handlers, level = list(log.handlers), log.level
    try:
        args = parser.parse_args(
            ["serve", "--model_base_path", dqn_base, "--load_retry_interval_micros", "250000"]
        )
        assert args.func(args) == 0
    finally:
        log.handlers[:] = handlers
        log.setLevel(level)
    assert started[0].load_retry_interval_seconds == 0.25
