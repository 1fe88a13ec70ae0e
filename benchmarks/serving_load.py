"""Load test of `tfrl serve` (REST and gRPC) on a CartPole policy, with version swaps.

    python benchmarks/serving_load.py                   # 10,000 requests per section
    python benchmarks/serving_load.py --requests 2000   # a cheaper re-run

Three kinds of process, so that no part measures itself:

- this script (the orchestrator) builds 4 versions of a model with DIFFERENT
  weights, computes each version's own q_values for every observation sent,
  times the raw in-process `serving_default` call, starts the server and the
  clients, and checks every answer afterwards;
- the server is `tfrl serve` in its own process, started as users start it,
  with `--monitoring_config_file` so its Prometheus endpoint reports its own
  (server-side) latency histogram beside the clients' numbers;
- each section's load client runs in a process of its own
  (`serving_load.py --client SPEC`). Its timed loop only sends, receives and
  records the raw answers (REST bodies, gRPC responses); it parses nothing.
  The orchestrator decodes and checks them after the section.

Sections, each `--requests` requests after `--warmup` untimed ones:

1. raw in-process call (TF1 session, as the server runs it), one observation
2. REST, 1 connection (closed loop)
3. REST, `--concurrency` connections (closed loop: saturation), with a swap
4. gRPC, 1 call at a time (the official `PredictionServiceStub`, `grpc.aio`)
5. gRPC, `--concurrency` calls in flight, with a swap
6. REST paced at `--rate` requests/s (open loop), with a swap

Closed loop: each connection sends its next request as soon as the previous
one is answered (latency is mostly queueing: Little's law). Paced: request i
is due at start + i / rate and goes out on the first free connection; its
latency counts from the due time, so a stall counts in full for every request
due during it (no coordinated omission). Paced requests use blocking sockets
in threads, since asyncio timers wake up to 1 ms late.

A swap copies the next version into the base path (atomic rename) once
`--swap-at` of the requests are answered, then polls the status until the new
version is AVAILABLE and the old one END. Every answer's q_values must match
exactly one version's own in-process output: the old version's for requests
sent before the swap began, the new one's for requests sent after the server
reported it done (either during). gRPC answers must also name that version.

The results file (written atomically) records the load average at the start
and end of each section: on a shared machine, compare rows of one invocation.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import pickle
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import machine
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = "cartpole_dqn"
METRICS_PATH = "/monitoring/prometheus/metrics"
TARGETS = {"paced_rest_p50": 2.0, "grpc_p50": 1.0, "overhead": 1.0}  # ms, issue 12


def _protobuf() -> str:
    """The protobuf runtime both sides run: 3.20 (what tensorflow-datasets' pins allow) is pure
    Python on Python 3.11; 4.x (what `pip install tfrl` resolves) is the compiled upb."""
    from google.protobuf import __version__
    from google.protobuf.internal import api_implementation

    return f"protobuf {__version__} ({api_implementation.Type()} implementation)"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=10_000, help="timed requests per section")
    p.add_argument("--concurrency", type=int, default=16, help="requests in flight (at most)")
    p.add_argument("--rate", type=float, default=1000.0, help="paced section: requests/s")
    p.add_argument("--warmup", type=int, default=1_000, help="untimed requests per section")
    p.add_argument("--swap-at", type=float, default=0.1, help="fraction answered, then swap")
    p.add_argument("--time-limit", type=float, default=300.0, help="seconds per section")
    p.add_argument("--output", default=os.path.join(REPO, "benchmarks/results/serving_load.md"))
    p.add_argument("--client", help=argparse.SUPPRESS)  # internal: run one section's client
    args = p.parse_args(argv)
    if args.rate <= 0 or args.requests < 1 or args.concurrency < 1 or args.warmup < 0:
        p.error("--rate, --requests and --concurrency must be positive, --warmup >= 0")
    if not 0 <= args.swap_at < 1:
        p.error("--swap-at must be in [0, 1)")
    return args


# -- the orchestrator's model work (TensorFlow) -------------------------------------


def build_versions(scratch: str, count: int) -> list[str]:
    """`count` exports of separately initialized DQNs: same specs, different weights."""
    sys.path.insert(0, REPO)
    import tensorflow as tf
    from tf_agents.agents.dqn import dqn_agent
    from tf_agents.networks import q_network
    from tf_agents.specs import tensor_spec
    from tf_agents.trajectories import time_step as ts

    import tfrl.export

    obs = tensor_spec.BoundedTensorSpec((4,), tf.float32, -4.8, 4.8, name="observation")
    act = tensor_spec.BoundedTensorSpec((), tf.int64, 0, 1, name="action")
    paths = []
    for i in range(count):
        tf.random.set_seed(100 + i)
        net = q_network.QNetwork(obs, act, fc_layer_params=(256, 256))
        agent = dqn_agent.DqnAgent(
            ts.time_step_spec(obs), act, q_network=net, optimizer=tf.keras.optimizers.Adam()
        )
        agent.initialize()
        paths.append(tfrl.export.export(agent, os.path.join(scratch, f"built{i}")))
    return paths


class VersionCheck:
    """Tells which version answered, from the q_values of an answer.

    `expected[v][i]` is version v's in-process q_values for observation i; an
    answer matches a version when all its values agree to float32 precision.
    """

    def __init__(self, expected: dict[int, np.ndarray]) -> None:
        self.expected = expected
        for i in range(len(next(iter(expected.values())))):
            for a in expected:
                for b in expected:
                    if a < b and np.allclose(expected[a][i], expected[b][i], rtol=1e-4):
                        raise ValueError(f"versions {a} and {b} agree on observation {i}")

    def version(self, index: int, q_values: np.ndarray) -> int | None:
        """The one version whose answer this is, or None (none or several match)."""
        matches = [
            v
            for v, q in self.expected.items()
            if q_values.shape == q[index % len(q)].shape
            and np.allclose(q[index % len(q)], q_values, rtol=1e-4, atol=1e-6)
        ]
        return matches[0] if len(matches) == 1 else None


def expected_q_values(version_dir: str, obs: np.ndarray) -> np.ndarray:
    """A version's q_values for each observation, one call each, in-process."""
    from tfrl.export.session_model import SessionModel

    model = SessionModel(version_dir)
    try:
        return np.stack(
            [model.run("serving_default", {"observation": row[None]})["q_values"][0] for row in obs]
        )
    finally:
        model.close()


def raw_call_section(version_dir: str, obs: np.ndarray, n: int, warmup: int) -> dict:
    """`n` in-process `serving_default` calls, one observation each, as the server runs them."""
    from tfrl.export.session_model import SessionModel

    model = SessionModel(version_dir)
    try:
        for i in range(max(warmup, 1)):
            model.run("serving_default", {"observation": obs[i % len(obs)][None]})
        feeds = [{"observation": row[None]} for row in obs]
        times = np.empty((n, 2))
        start = time.perf_counter()
        for i in range(n):
            t0 = time.perf_counter()
            model.run("serving_default", feeds[i % len(feeds)])
            times[i] = t0, time.perf_counter()
    finally:
        model.close()
    ms = (times[:, 1] - times[:, 0]) * 1e3
    return {
        "requests": n,
        "concurrency": 1,
        "throughput": n / (times[-1, 1] - start),
        **percentiles(ms),
    }


def percentiles(ms: np.ndarray) -> dict:
    return {
        "p50": float(np.percentile(ms, 50)),
        "p90": float(np.percentile(ms, 90)),
        "p99": float(np.percentile(ms, 99)),
        "max": float(ms.max()),
    }


# -- the client process: sends, receives and records; checks nothing ----------------


def http_requests(path: str, bodies: list[bytes]) -> list[bytes]:
    """Raw keep-alive HTTP/1.1 POSTs, one per body."""
    return [
        (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(b)}\r\n\r\n"
        ).encode()
        + b
        for b in bodies
    ]


def content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


class Recorder:
    """Per-request times and raw answers, preallocated; `progress` feeds the swap."""

    def __init__(self, total: int, on_progress=None) -> None:
        self.times = np.full((total, 3), np.nan)  # due, sent, answered (perf_counter)
        self.status: list[int | str | None] = [None] * total
        self.answers: list[bytes | object | None] = [None] * total
        self.done = 0
        self.on_progress = on_progress

    def record(self, i: int, due: float, sent: float, answered: float, status, answer) -> None:
        self.times[i] = due, sent, answered
        self.status[i] = status
        self.answers[i] = answer
        self.done += 1
        if self.on_progress is not None:
            self.on_progress(self.done)


async def rest_closed(port: int, requests: list[bytes], total: int, conc: int, rec: Recorder):
    """Closed loop: `conc` keep-alive connections, each sending its next request as soon
    as the previous one is answered."""
    sent = 0

    async def connection() -> None:
        nonlocal sent
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while sent < total:
                i = sent
                sent += 1
                t0 = time.perf_counter()
                writer.write(requests[i % len(requests)])
                head = await reader.readuntil(b"\r\n\r\n")
                body = await reader.readexactly(content_length(head))
                rec.record(i, t0, t0, time.perf_counter(), int(head.split(b" ", 2)[1]), body)
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(conc)))


async def grpc_closed(target: str, requests: list, total: int, conc: int, rec: Recorder):
    """Closed loop over gRPC: `conc` tasks on one `grpc.aio` channel (official stub)."""
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    sent = 0
    async with grpc.aio.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

        async def caller() -> None:
            nonlocal sent
            while sent < total:
                i = sent
                sent += 1
                t0 = time.perf_counter()
                try:
                    response = await stub.Predict(requests[i % len(requests)], timeout=30)
                except grpc.RpcError as e:
                    status = f"{e.code().name} {e.details()[:200]}"
                    rec.record(i, t0, t0, time.perf_counter(), status, None)
                    continue
                rec.record(i, t0, t0, time.perf_counter(), "OK", response)

        await asyncio.gather(*(caller() for _ in range(conc)))


def rest_paced(
    port: int, requests: list[bytes], total: int, rate: float, conc: int, rec: Recorder
) -> None:
    """Open loop: request i is due at start + i / rate and goes out on the first of
    `conc` connections that is free by then; its latency counts from the due time."""
    lock = threading.Lock()
    state = {"next": 0, "failed": None}
    start = time.perf_counter() + 0.2  # every connection is open by then

    def connection() -> None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                stream = sock.makefile("rb")
                while True:
                    with lock:
                        i = state["next"]
                        state["next"] += 1
                    if i >= total or state["failed"] is not None:
                        return
                    due = start + i / rate
                    wait = due - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                    sent = time.perf_counter()
                    sock.sendall(requests[i % len(requests)])
                    head = b""
                    while not head.endswith(b"\r\n\r\n"):
                        line = stream.readline()
                        if not line:
                            raise ConnectionError("server closed the connection")
                        head += line
                    body = stream.read(content_length(head))
                    answered = time.perf_counter()
                    with lock:
                        rec.record(i, due, sent, answered, int(head.split(b" ", 2)[1]), body)
        except Exception as e:
            state["failed"] = repr(e)

    threads = [threading.Thread(target=connection) for _ in range(conc)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if state["failed"] is not None:
        raise RuntimeError(f"paced client failed: {state['failed']}")


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def copy_version(src: str, base: str, version: int) -> None:
    """Copies a version in atomically (hidden temp name, then rename), like tfrl.export."""
    tmp = os.path.join(base, f".{version}.tmp")
    shutil.copytree(src, tmp)
    os.rename(tmp, os.path.join(base, str(version)))


class Swap:
    """Copies in a new version once `at_request` requests are answered, then polls the
    status until the new version is AVAILABLE and the previous one END."""

    def __init__(self, src: str, base: str, version: int, status_url: str, at_request: int):
        self.src, self.base, self.version = src, base, version
        self.status_url = status_url
        self.at_request = at_request
        self.done = 0
        self.started: float | None = None
        self.finished: float | None = None
        self.completed_at_request: int | None = None
        self.error: str | None = None
        self._thread: threading.Thread | None = None

    def progress(self, done: int) -> None:
        self.done = done
        if self._thread is None and done >= self.at_request:
            self.started = time.perf_counter()
            self._thread = threading.Thread(target=self._swap, daemon=True)
            self._thread.start()

    def _swap(self) -> None:
        try:
            copy_version(self.src, self.base, self.version)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                status = json.loads(get(self.status_url)[1])
                states = {v["version"]: v["state"] for v in status["model_version_status"]}
                if (
                    states.get(str(self.version)) == "AVAILABLE"
                    and states.get(str(self.version - 1)) == "END"
                ):
                    self.finished = time.perf_counter()
                    self.completed_at_request = self.done
                    return
                time.sleep(0.05)
            self.error = "the new version was not swapped in within 60 s"
        except Exception as e:
            self.error = repr(e)

    def wait(self, timeout: float = 90) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def summary(self) -> dict:
        keys = ("version", "at_request", "started", "finished", "completed_at_request", "error")
        return {k: getattr(self, k) for k in keys}


def client_main(spec_path: str) -> int:
    """One section's load, in this process: warm-up, metrics scrape, timed run, scrape."""
    with open(spec_path, "rb") as f:
        spec = pickle.load(f)
    kind, total, conc = spec["kind"], spec["requests"], spec["concurrency"]
    if kind == "grpc":
        from tensorflow_serving.apis import predict_pb2

        requests = [predict_pb2.PredictRequest.FromString(b) for b in spec["grpc_requests"]]
    else:
        requests = http_requests(f"/v1/models/{MODEL}:predict", spec["rest_bodies"])

    def run(n: int, rec: Recorder) -> None:
        if kind == "grpc":
            asyncio.run(grpc_closed(spec["grpc_target"], requests, n, conc, rec))
        elif kind == "rest":
            asyncio.run(rest_closed(spec["port"], requests, n, conc, rec))
        else:
            rest_paced(spec["port"], requests, n, spec["rate"], conc, rec)

    if spec["warmup"]:
        run(spec["warmup"], Recorder(spec["warmup"]))
    swap = None
    if spec["swap"] is not None:
        swap = Swap(**spec["swap"])
    metrics_before = get(spec["metrics_url"])[1].decode()
    rec = Recorder(total, swap.progress if swap else None)
    run(total, rec)
    metrics_after = get(spec["metrics_url"])[1].decode()
    if swap is not None:
        swap.wait()
    answers = [a.SerializeToString() if hasattr(a, "SerializeToString") else a for a in rec.answers]
    out = {
        "times": rec.times,
        "status": rec.status,
        "answers": answers,
        "swap": swap.summary() if swap else None,
        "metrics_before": metrics_before,
        "metrics_after": metrics_after,
    }
    with open(spec["out"], "wb") as f:
        pickle.dump(out, f)
    return 0


# -- the orchestrator: sections, checks, results ---------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def subprocess_env() -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join([REPO, *filter(None, [env.get("PYTHONPATH")])])
    return env


def start_server(base: str, port: int, grpc_port: int, scratch: str) -> subprocess.Popen:
    """`tfrl serve` in its own process, as users run it, with Prometheus metrics on."""
    monitoring = os.path.join(scratch, "monitoring.config")
    log_path = os.path.join(scratch, "server.log")
    with open(monitoring, "w") as f:
        f.write(f'prometheus_config {{ enable: true, path: "{METRICS_PATH}" }}\n')
    tfrl = os.path.join(os.path.dirname(sys.executable), "tfrl")
    command = [tfrl] if os.path.exists(tfrl) else [sys.executable, "-m", "tfrl.cli.main"]
    with open(log_path, "wb") as log:  # the server keeps its own descriptor
        server = subprocess.Popen(
            [
                *command,
                "serve",
                f"--model_name={MODEL}",
                f"--model_base_path={base}",
                f"--rest_api_port={port}",
                f"--port={grpc_port}",
                f"--monitoring_config_file={monitoring}",
            ],
            cwd=scratch,
            env=subprocess_env(),
            stdout=subprocess.DEVNULL,
            stderr=log,  # a file: a pipe nobody reads would block the server once full
        )
    status_url = f"http://127.0.0.1:{port}/v1/models/{MODEL}"
    deadline = time.monotonic() + 120
    while True:
        if server.poll() is not None:
            with open(log_path, errors="replace") as f:
                raise RuntimeError(f"tfrl serve exited: {f.read()[-2000:]}")
        try:
            if get(status_url)[0] == 200:
                return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("tfrl serve did not start within 120 s")
        time.sleep(0.2)


def run_client(spec: dict, scratch: str, time_limit: float) -> dict:
    """Runs one section's client process and returns what it recorded."""
    name = f"section{len(os.listdir(scratch))}"
    spec_path = os.path.join(scratch, name + ".spec")
    spec["out"] = os.path.join(scratch, name + ".out")
    with open(spec_path, "wb") as f:
        pickle.dump(spec, f)
    result = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--client", spec_path],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=time_limit + 120,  # + the client's imports and warm-up
    )
    if result.returncode != 0:
        raise RuntimeError(f"client for {spec['kind']} failed:\n{result.stderr[-3000:]}")
    with open(spec["out"], "rb") as f:
        return pickle.load(f)


def server_latency(before: str, after: str, entrypoint: str) -> dict:
    """Server-side p50/p99 (ms) of the predict requests between two scrapes, from the
    latency histogram (linear within a bucket, so only as fine as the buckets)."""
    from prometheus_client.parser import text_string_to_metric_families

    def buckets(text: str) -> dict[float, float]:
        counts: dict[float, float] = {}
        for family in text_string_to_metric_families(text):
            if family.name != "tfrl_serving_request_latency_seconds":
                continue
            for s in family.samples:
                if (
                    s.name.endswith("_bucket")
                    and s.labels.get("api") == "predict"
                    and s.labels.get("entrypoint") == entrypoint
                ):
                    le = float(s.labels["le"])
                    counts[le] = counts.get(le, 0.0) + s.value
        return counts

    b0, b1 = buckets(before), buckets(after)
    edges = sorted(b1)
    cumulative = np.array([b1[e] - b0.get(e, 0.0) for e in edges])
    total = cumulative[-1] if len(cumulative) else 0

    def quantile(q: float) -> float:
        rank = q * total
        i = int(np.searchsorted(cumulative, rank))
        if i >= len(edges) - 1 and np.isinf(edges[min(i, len(edges) - 1)]):
            return float("inf")
        lo_edge, lo_count = (0.0, 0.0) if i == 0 else (edges[i - 1], cumulative[i - 1])
        span = cumulative[i] - lo_count
        frac = (rank - lo_count) / span if span else 1.0
        return (lo_edge + frac * (edges[i] - lo_edge)) * 1e3

    if not total:
        return {"server_count": 0, "server_p50": float("nan"), "server_p99": float("nan")}
    return {"server_count": int(total), "server_p50": quantile(0.5), "server_p99": quantile(0.99)}


def answer_versions(kind: str, out: dict, check: VersionCheck) -> tuple[np.ndarray, list[str]]:
    """The version behind each answer (NaN where none), and the errors found."""
    errors: list[str] = []
    versions = np.full(len(out["answers"]), np.nan)
    if kind == "grpc":
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2
    for i, (status, answer) in enumerate(zip(out["status"], out["answers"])):
        if status not in (200, "OK"):
            errors.append(f"request {i}: {status} {answer!r:.200}")
            continue
        if kind == "grpc":
            response = predict_pb2.PredictResponse.FromString(answer)
            q = tf.make_ndarray(response.outputs["q_values"])[0]
            named = response.model_spec.version.value
        else:
            q = np.asarray(json.loads(answer)["predictions"][0]["q_values"], np.float32)
            named = None
        version = check.version(i, q)
        if version is None:
            errors.append(f"request {i}: q_values {q.tolist()} match no single version")
        elif named is not None and named != version:
            errors.append(f"request {i}: answered by version {version}, response names {named}")
        else:
            versions[i] = version
    return versions, errors


def check_swap(swap: dict, times: np.ndarray, versions: np.ndarray, errors: list[str]) -> str:
    """Old version before the swap began, new one once the server reported it done."""
    sent = times[:, 1]
    old, new = swap["version"] - 1, swap["version"]
    started = swap["started"] if swap["started"] is not None else np.inf
    finished = swap["finished"] if swap["finished"] is not None else np.inf
    before, after = sent < started, sent > finished
    valid = ~np.isnan(versions)
    wrong_before = int(np.sum(before & valid & (versions != old)))
    wrong_after = int(np.sum(after & valid & (versions != new)))
    during = ~before & ~after
    wrong_during = int(np.sum(during & valid & (versions != old) & (versions != new)))
    for count, what in [
        (wrong_before, "before"),
        (wrong_after, "after"),
        (wrong_during, "during"),
    ]:
        if count:
            errors.append(f"{count} answers {what} the swap came from the wrong version")
    if swap["error"]:
        errors.append(f"swap to version {new} failed: {swap['error']}")
    elif swap["completed_at_request"] is None or swap["completed_at_request"] >= len(times):
        errors.append(f"the swap to version {new} ended after the section: not under load")
    counts = {int(v): int(np.sum(versions == v)) for v in np.unique(versions[valid])}
    return (
        f"version {new} copied in after request {swap['at_request']}; the server reported it "
        f"AVAILABLE and version {old} END {finished - started:.2f} s later, at request "
        f"{swap['completed_at_request']}. Answers by version {counts}; sent during the swap: "
        f"{int(during.sum())} (either version is right), {int(np.sum(during & (versions == new)))}"
        f" of them new; wrong version before the swap: {wrong_before}, during it (neither "
        f"version): {wrong_during}, after it: {wrong_after}."
    )


def section_result(kind: str, out: dict, check: VersionCheck, conc: int) -> dict:
    times = out["times"]
    versions, errors = answer_versions(kind, out, check)
    ms = (times[:, 2] - times[:, 0]) * 1e3
    result = {
        "requests": len(times),
        "concurrency": conc,
        "throughput": len(times) / (np.nanmax(times[:, 2]) - np.nanmin(times[:, 0])),
        **percentiles(ms),
        **server_latency(
            out["metrics_before"], out["metrics_after"], "GRPC" if kind == "grpc" else "REST"
        ),
        "errors": errors,
    }
    if out["swap"] is not None:
        result["swap_note"] = check_swap(out["swap"], times, versions, errors)
        swap = out["swap"]
        if swap["started"] is not None and swap["finished"] is not None:
            inside = (times[:, 0] >= swap["started"]) & (times[:, 0] <= swap["finished"])
            result["swap_worst"] = (
                float(ms[inside].max()) if inside.any() else float("nan"),
                float(ms[~inside].max()) if (~inside).any() else float("nan"),
            )
    if kind == "paced":
        lag = (times[:, 1] - times[:, 0]) * 1e3
        service = (times[:, 2] - times[:, 1]) * 1e3
        result["client_note"] = (
            f"requests went out {np.percentile(lag, 50):.3f} ms (p50) / "
            f"{np.percentile(lag, 99):.3f} ms (p99) after their due time; send to answer "
            f"took {np.percentile(service, 50):.2f} ms (p50) / "
            f"{np.percentile(service, 99):.2f} ms (p99)"
        )
    return result


def library_versions() -> str:
    import aiohttp
    import grpc
    import tensorflow as tf
    import tf_agents

    return (
        f"Python {platform.python_version()}, tensorflow {tf.__version__}, tf-agents "
        f"{tf_agents.__version__}, aiohttp {aiohttp.__version__}, grpcio {grpc.__version__}, "
        f"numpy {np.__version__}"
    )


def loadavg() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main(args: argparse.Namespace) -> int:
    sys.path.insert(0, REPO)
    from tfrl.console import quiet

    quiet()  # TensorFlow's start-up logs off (TFRL_VERBOSE=1 shows them)
    scratch = tempfile.mkdtemp(prefix="tfrl-serving-load-")
    clients = os.path.join(scratch, "clients")
    os.makedirs(clients)
    server = None
    sections: list[tuple[str, str, dict]] = []  # (name, kind, result)
    try:
        rng = np.random.default_rng(0)
        obs = rng.uniform(-2, 2, size=(256, 4)).astype(np.float32)
        paths = build_versions(scratch, 4)
        check = VersionCheck({v + 1: expected_q_values(p, obs) for v, p in enumerate(paths)})

        load_start = loadavg()
        raw = raw_call_section(paths[0], obs, args.requests, args.warmup)
        raw["load"] = (load_start, loadavg())
        raw["errors"] = []
        sections.append(("raw in-process `serving_default` call (TF1 session)", "raw", raw))

        base = os.path.join(scratch, MODEL)
        os.makedirs(base)
        copy_version(paths[0], base, 1)
        port, grpc_port = free_port(), free_port()
        server = start_server(base, port, grpc_port, scratch)

        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        grpc_requests = []
        for row in obs:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = MODEL
            request.inputs["observation"].CopyFrom(tf.make_tensor_proto(row[None]))
            grpc_requests.append(request.SerializeToString())
        common = {
            "port": port,
            "grpc_target": f"127.0.0.1:{grpc_port}",
            "metrics_url": f"http://127.0.0.1:{port}{METRICS_PATH}",
            "rest_bodies": [json.dumps({"instances": [row.tolist()]}).encode() for row in obs],
            "grpc_requests": grpc_requests,
            "requests": args.requests,
            "warmup": args.warmup,
            "rate": args.rate,
        }
        plan = [
            ("REST, 1 connection", "rest", 1, False),
            (f"REST, {args.concurrency} connections (closed loop), with swap", "rest", 0, True),
            ("gRPC, 1 call at a time", "grpc", 1, False),
            (f"gRPC, {args.concurrency} calls in flight (closed loop), with swap", "grpc", 0, True),
            (f"REST paced at {args.rate:,.0f} req/s, with swap", "paced", 0, True),
        ]
        version = 1
        status_url = f"http://127.0.0.1:{port}/v1/models/{MODEL}"
        for name, kind, conc, swap in plan:
            conc = conc or args.concurrency
            spec = dict(common, kind=kind, concurrency=conc, swap=None)
            if swap:
                at = int(args.requests * args.swap_at)
                spec["swap"] = dict(
                    src=paths[version], base=base, version=version + 1, status_url=status_url,
                    at_request=at,
                )  # fmt: skip
                version += 1
            time.sleep(1.0)  # let the server settle after the last section
            load_start = loadavg()
            out = run_client(spec, clients, args.time_limit)
            result = section_result(kind, out, check, conc)
            result["load"] = (load_start, loadavg())
            if kind == "paced":
                result["rate"] = args.rate
            sections.append((name, kind, result))
        final_status = json.loads(get(status_url)[1])["model_version_status"]
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(scratch, ignore_errors=True)

    text = report(args, sections, final_status)
    from tfrl.atomic import atomic_write_text

    atomic_write_text(args.output, text)
    print(text)
    return 0 if not any(r["errors"] for _, _, r in sections) else 1


def report(args: argparse.Namespace, sections: list, final_status: list) -> str:
    command = " ".join(["python", os.path.relpath(os.path.abspath(__file__), REPO), *sys.argv[1:]])
    raw = next(r for _, kind, r in sections if kind == "raw")
    lines = [
        "# tfrl serve load test (REST and gRPC)",
        "",
        f"Command: `{command}` (from the repository root, in the project's venv)",
        f"Date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"Versions: {library_versions()}; {_protobuf()}",
        f"Machine: {machine.describe()}; this script ran at niceness {os.nice(0)}. The machine "
        "may have been SHARED with other jobs: the load average (1/5/15 min) at the start and "
        "end of each section is in the table. Absolute times are noisy; compare rows of this "
        "one invocation.",
        "Model: 4 untrained DqnAgents from CartPole specs, Q-network fc (256, 256), each "
        "separately initialized (versions 1-4 hold different weights). Each request is one "
        'observation: REST in row format (`{"instances": [[x0, x1, x2, x3]]}`), gRPC a '
        "`PredictRequest` built with `tf.make_tensor_proto`; answered with action and q_values.",
        "Server: `tfrl serve` in its own process with its defaults (batching on, max batch 64, "
        "no batch timeout, 2 model threads, polling every 1 s) and `--monitoring_config_file`; "
        "REST and gRPC in one process. Clients: one process per section (stdlib HTTP/1.1 "
        "keep-alive, one connection per request in flight; `tensorflow-serving-api`'s "
        "`PredictionServiceStub` on one `grpc.aio` channel), same machine, loopback; "
        f"{args.warmup:,} warm-up requests per section not counted. The timed loops record "
        "raw answers only; every answer is decoded and checked after its section.",
        "Client ms: from due (paced) or sent (closed loop) to the whole answer read. Server ms: "
        "the server's own `tfrl_serving_request_latency_seconds` histogram over the section "
        "(from the request handler's start to the answer built; linear within its buckets).",
        "",
        "| section | requests | in flight | offered req/s | achieved req/s | client p50 ms "
        "| p90 | p99 | max | server p50 ms | server p99 | errors | load avg start -> end |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, kind, r in sections:
        offered = f"{r['rate']:,.0f}" if "rate" in r else "-" if kind == "raw" else "closed loop"
        server = f"{r['server_p50']:.2f} | {r['server_p99']:.2f}" if "server_p50" in r else "- | -"
        lines.append(
            f"| {name} | {r['requests']:,} | {r['concurrency']} | {offered} "
            f"| {r['throughput']:,.0f} | {r['p50']:.3f} | {r['p90']:.3f} | {r['p99']:.3f} "
            f"| {r['max']:.1f} | {server} | {len(r['errors'])} | {r['load'][0]} -> "
            f"{r['load'][1]} |"
        )
    lines.append("")
    for name, _, r in sections:
        if "swap_note" in r:
            worst = r.get("swap_worst", (float("nan"), float("nan")))
            lines.append(
                f"- {name}: {r['swap_note']} Worst latency of requests due during the swap: "
                f"{worst[0]:.1f} ms; of the others: {worst[1]:.1f} ms."
            )
        if "client_note" in r:
            lines.append(f"- {name}, client timing: {r['client_note']}.")
    lines += [f"- Status after the runs: `{json.dumps(final_status)}`.", ""]

    def verdict(ok: bool) -> str:
        return "meets" if ok else "MISSES"

    by_kind = {}
    for name, kind, r in sections:
        if r["concurrency"] == 1 or kind == "paced":
            by_kind[kind] = (name, r)
    total_errors = sum(len(r["errors"]) for _, _, r in sections)
    lines.append(
        f"Targets (issue 12, 2 cores), with errors in total {total_errors} "
        f"({verdict(total_errors == 0)} the 0-errors target):"
    )
    if "paced" in by_kind:
        name, r = by_kind["paced"]
        lines.append(
            f"- {name}: p50 {r['p50']:.2f} ms: {verdict(r['p50'] <= TARGETS['paced_rest_p50'])} "
            "the 2 ms target."
        )
    for kind in ("rest", "grpc"):
        name, r = by_kind[kind]
        overhead = r["p50"] - raw["p50"]
        text = (
            f"- {name}: p50 {r['p50']:.3f} ms, {overhead:.3f} ms over the raw call's "
            f"{raw['p50']:.3f} ms: {verdict(overhead <= TARGETS['overhead'])} the 1 ms "
            "overhead target"
        )
        if kind == "grpc":
            text += f"; {verdict(r['p50'] <= TARGETS['grpc_p50'])} the gRPC 1 ms p50 target"
        lines.append(text + ".")
    lines += [
        "",
        "Where the time goes at concurrency 1 (p50s of this run; medians do not add exactly):",
    ]
    for kind in ("rest", "grpc"):
        name, r = by_kind[kind]
        lines.append(
            f"- {name}: model call {raw['p50']:.3f} ms (raw row); the rest of the server's "
            f"handler {r['server_p50'] - raw['p50']:.3f} ms (decode, checks, batcher and its "
            f"thread hop, encode); outside the handler {r['p50'] - r['server_p50']:.3f} ms "
            "(the client library, loopback, "
            + (
                "HTTP/2, gRPC's own server machinery, and protobuf (de)serialization with "
                f"{_protobuf()})."
                if kind == "grpc"
                else "HTTP/1.1, aiohttp's request parsing and response writing)."
            )
        )
    errors = [f"{name}: {e}" for name, _, r in sections for e in r["errors"]]
    if errors:
        lines += ["", "First errors:", *[f"- {e}" for e in errors[:10]]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.client:
        sys.exit(client_main(arguments.client))
    sys.exit(main(arguments))
