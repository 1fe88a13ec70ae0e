"""Load test of `tfrl serve` (REST and gRPC) on a CartPole policy, with version swaps mid-load.

    .venv/bin/python benchmarks/serving_load.py                 # both runs below
    .venv/bin/python benchmarks/serving_load.py --runs paced --rate 500 --requests 5000

Starts `tfrl serve` in a subprocess on 127.0.0.1 and sends a bounded number of
`:predict` requests (one CartPole observation each, row format) over
keep-alive connections, in two ways, each with a version swap (a new version
copied into the base path) during the run:

- closed loop (saturation): `--concurrency` connections, each sending its next
  request as soon as the previous one is answered. This measures the most
  requests/s the server sustains; its latency is mostly queueing (Little's
  law: latency = concurrency / throughput).
- paced (open loop): `--rate` requests/s in total at fixed times (request i is
  due at start + i / rate), over up to `--concurrency` connections. Latency is
  measured from the due time, not from when the request was actually sent, so
  a stalled server shows up in full instead of delaying the requests that
  would have measured it (coordinated omission). This is the latency at a
  given throughput, e.g. the issue's 1,000 requests/s.

It also runs gRPC (`tensorflow-serving-api`'s `PredictionServiceStub` on a
`grpc.aio` channel) at concurrency 1 and in a closed loop with a swap, REST at
concurrency 1, and the raw in-process `serving_default` call, so the
serving overhead shows side by side. Every version holds DIFFERENT weights
(separately initialized Q-networks), and every answer's q_values are matched
against each version's own in-process output: each must come from exactly one
version, the old one before the swap starts and the new one once the server
reports it AVAILABLE and the old one END. Results go to
benchmarks/results/serving_load.md.

The closed-loop client is asyncio streams; the paced client uses one thread
per connection with blocking sockets, because asyncio timers wake up to 1 ms
late (epoll's millisecond timeout) and that lateness would count as latency.
Both are stdlib only, so the client costs little CPU next to the server on a
2-core machine.

The model is an untrained DQN built from CartPole's specs (4 float
observations, 2 actions, Q-network fc (256, 256)), one per version with its
own random initialization: the timing does not depend on the weights.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import machine
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = "cartpole_dqn"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--runs",
        choices=("both", "closed", "paced"),
        default="both",
        help="closed-loop saturation run, paced run at --rate, or both (default)",
    )
    p.add_argument("--requests", type=int, default=10_000, help="requests in each main run")
    p.add_argument("--concurrency", type=int, default=16, help="connections (at most) in flight")
    p.add_argument("--rate", type=float, default=1000.0, help="paced run: requests/s in total")
    p.add_argument("--warmup", type=int, default=1_000, help="requests before measuring")
    p.add_argument("--serial-requests", type=int, default=2_000, help="concurrency-1 run size")
    p.add_argument("--swap-at", type=float, default=0.1, help="fraction of requests, then swap")
    p.add_argument("--time-limit", type=float, default=300.0, help="seconds before giving up")
    p.add_argument("--output", default=os.path.join(REPO, "benchmarks/results/serving_load.md"))
    args = p.parse_args()
    if args.rate <= 0 or args.requests < 1 or args.concurrency < 1:
        p.error("--rate, --requests and --concurrency must be positive")
    return args


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
            if np.allclose(q[index % len(q)], q_values, rtol=1e-4, atol=1e-6)
        ]
        return matches[0] if len(matches) == 1 else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


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


def summarize(records: list[tuple], start: float, errors: list[str]) -> dict:
    """Latency percentiles (ms) from (due or sent, sent, answered, version) records."""
    rec = np.array(records, dtype=np.float64)
    ms = (rec[:, 2] - rec[:, 0]) * 1e3
    end = float(rec[:, 2].max())
    return {
        "requests": len(records),
        "seconds": end - start,
        "throughput": len(records) / (end - start),
        "p50": float(np.percentile(ms, 50)),
        "p90": float(np.percentile(ms, 90)),
        "p99": float(np.percentile(ms, 99)),
        "max": float(ms.max()),
        "errors": errors,
        "records": rec,
    }


class Client:
    """Closed loop: keep-alive POSTs over asyncio streams, each connection sending its
    next request as soon as the previous one is answered."""

    def __init__(self, port: int, requests: list[bytes], check: VersionCheck) -> None:
        self.port = port
        self.requests = requests
        self.check = check

    async def run(self, total: int, concurrency: int, on_progress=None) -> dict:
        records: list[tuple[float, float, float]] = []
        errors: list[str] = []
        sent = 0

        async def worker() -> None:
            nonlocal sent
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            try:
                while sent < total:
                    i = sent
                    sent += 1
                    t0 = time.perf_counter()
                    writer.write(self.requests[i % len(self.requests)])
                    head = await reader.readuntil(b"\r\n\r\n")
                    status = int(head.split(b" ", 2)[1])
                    body = await reader.readexactly(content_length(head))
                    done = time.perf_counter()
                    version = rest_version(self.check, i, status, body, errors)
                    records.append((t0, t0, done, version))
                    if on_progress is not None:
                        on_progress(len(records))
            finally:
                writer.close()

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result = summarize(records, start, errors)
        result["concurrency"] = concurrency
        return result


class GrpcClient:
    """Closed loop over gRPC: `concurrency` tasks on one `grpc.aio` channel, each
    calling Predict as soon as its previous call is answered (official client)."""

    def __init__(self, target: str, obs: np.ndarray, check: VersionCheck) -> None:
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        self.target = target
        self.check = check
        self.requests = []
        for row in obs:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = MODEL
            request.inputs["observation"].CopyFrom(tf.make_tensor_proto(row[None]))
            self.requests.append(request)

    async def run(self, total: int, concurrency: int, on_progress=None) -> dict:
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        records: list[tuple] = []
        errors: list[str] = []
        sent = 0
        async with grpc.aio.insecure_channel(self.target) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

            async def worker() -> None:
                nonlocal sent
                while sent < total:
                    i = sent
                    sent += 1
                    t0 = time.perf_counter()
                    try:
                        response = await stub.Predict(
                            self.requests[i % len(self.requests)], timeout=30
                        )
                    except grpc.RpcError as e:
                        errors.append(f"{e.code().name} {e.details()[:200]}")
                        records.append((t0, t0, time.perf_counter(), float("nan")))
                        continue
                    done = time.perf_counter()
                    q = np.frombuffer(response.outputs["q_values"].tensor_content, np.float32)
                    version = self.check.version(i, q)
                    if version is None:
                        errors.append(f"request {i}: q_values {q.tolist()} match no single version")
                    records.append((t0, t0, done, float("nan") if version is None else version))
                    if on_progress is not None:
                        on_progress(len(records))

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
        result = summarize(records, start, errors)
        result["concurrency"] = concurrency
        return result


def rest_version(check: VersionCheck, i: int, status: int, body: bytes, errors: list) -> float:
    """The version that answered request i (NaN and an error if none or unclear)."""
    if status != 200:
        errors.append(f"{status} {body[:200]!r}")
        return float("nan")
    q = np.asarray(json.loads(body)["predictions"][0]["q_values"], np.float32)
    version = check.version(i, q)
    if version is None:
        errors.append(f"request {i}: q_values {q.tolist()} match no single version")
        return float("nan")
    return float(version)


def paced_run(
    port: int,
    requests: list[bytes],
    check: VersionCheck,
    total: int,
    rate: float,
    concurrency: int,
    time_limit: float,
    on_progress=None,
) -> dict:
    """Open loop: request i is due at start + i / rate and goes out on the first of
    `concurrency` connections that is free by then. Its latency counts from the due
    time, so time spent waiting for a free connection (a slow server) is included."""
    records: list[tuple[float, float, float]] = []
    errors: list[str] = []
    lock = threading.Lock()
    state = {"next": 0, "failed": None}
    start = time.perf_counter() + 0.2  # every connection is open by then
    deadline = start + time_limit

    def worker() -> None:
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
                    if due > deadline:
                        raise TimeoutError(f"paced run exceeded its {time_limit} s time limit")
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
                    done = time.perf_counter()
                    status = int(head.split(b" ", 2)[1])
                    version = rest_version(check, i, status, body, errors)
                    with lock:
                        records.append((due, sent, done, version))
                        if on_progress is not None:
                            on_progress(len(records))
        except BaseException as e:
            state["failed"] = e

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(time_limit + 60)
    if state["failed"] is not None:
        raise RuntimeError(f"paced run failed: {state['failed']!r}") from state["failed"]
    result = summarize(records, start, errors)
    rec = result["records"]
    lag = (rec[:, 1] - rec[:, 0]) * 1e3
    service = (rec[:, 2] - rec[:, 1]) * 1e3
    result.update(
        concurrency=concurrency,
        rate=rate,
        lag_p50=float(np.percentile(lag, 50)),
        lag_p99=float(np.percentile(lag, 99)),
        service_p50=float(np.percentile(service, 50)),
        service_p99=float(np.percentile(service, 99)),
    )
    return result


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
        self._lock = threading.Lock()

    def progress(self, done: int) -> None:
        with self._lock:
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
                status = get(self.status_url)[1]
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

    def in_time(self, total: int) -> bool:
        return self.completed_at_request is not None and self.completed_at_request < total

    @property
    def seconds(self) -> float:
        if self.started is None or self.finished is None:
            return float("nan")
        return self.finished - self.started

    def worst_inside_outside(self, run: dict) -> tuple[float, float]:
        """Max latency (ms) of requests due during the swap, and of the others."""
        rec = run["records"]
        ms = (rec[:, 2] - rec[:, 0]) * 1e3
        if self.started is None or self.finished is None:
            return float("nan"), float(ms.max())
        inside = (rec[:, 0] >= self.started) & (rec[:, 0] <= self.finished)
        return (
            float(ms[inside].max()) if inside.any() else float("nan"),
            float(ms[~inside].max()) if (~inside).any() else float("nan"),
        )

    def check_versions(self, run: dict) -> str:
        """Checks each answer's version: old before the swap, new once it completed.

        Adds wrong answers to the run's errors; returns a one-line summary.
        """
        rec = run["records"]
        sent, version = rec[:, 1], rec[:, 3]
        old, new = self.version - 1, self.version
        before = sent < (self.started if self.started is not None else np.inf)
        after = sent > (self.finished if self.finished is not None else np.inf)
        wrong_before = int(np.sum(before & (version != old) & ~np.isnan(version)))
        wrong_after = int(np.sum(after & (version != new) & ~np.isnan(version)))
        during = ~before & ~after
        for count, what in [(wrong_before, "before"), (wrong_after, "after")]:
            if count:
                run["errors"].append(f"{count} answers {what} the swap came from the wrong version")
        counts = {int(v): int(np.sum(version == v)) for v in np.unique(version[~np.isnan(version)])}
        return (
            f"answers by version {counts}; sent during the swap: {int(during.sum())} "
            f"(either version is right), of which {int(np.sum(during & (version == new)))} new; "
            f"wrong version before the swap: {wrong_before}, after it: {wrong_after}; "
            f"matching no single version: {int(np.isnan(version).sum())}"
        )

    def describe(self, total: int) -> str:
        text = (
            f"version {self.version} copied in (atomic rename) after request {self.at_request}; "
            f"the server reported version {self.version} AVAILABLE and version "
            f"{self.version - 1} END {self.seconds:.2f} s later"
        )
        if self.error:
            return text + f": swap FAILED ({self.error})."
        if self.in_time(total):
            return text + f", at request {self.completed_at_request} of {total}: under load."
        return text + ", after the run ended: the swap was NOT under load (use more requests)."


def expected_q_values(version_dir: str, obs: np.ndarray) -> np.ndarray:
    """A version's q_values for each observation, one call each, in-process."""
    sys.path.insert(0, REPO)
    from tfrl.export.session_model import SessionModel

    model = SessionModel(version_dir)
    try:
        return np.stack(
            [model.run("serving_default", {"observation": row[None]})["q_values"][0] for row in obs]
        )
    finally:
        model.close()


def in_process_times(version_dir: str, obs: np.ndarray, n: int = 2000) -> dict:
    """Median time of a serving_default call without HTTP, two ways."""
    sys.path.insert(0, REPO)
    import tensorflow as tf

    from tfrl.export.session_model import SessionModel

    model = SessionModel(version_dir)
    feeds = {"observation": obs[:1]}
    for _ in range(100):
        model.run("serving_default", feeds)
    times = []
    for i in range(n):
        feeds = {"observation": obs[i % len(obs)][None]}
        t0 = time.perf_counter()
        model.run("serving_default", feeds)
        times.append(time.perf_counter() - t0)
    session_ms = float(np.median(times) * 1e3)
    model.close()
    fn = tf.saved_model.load(version_dir).signatures["serving_default"]
    for _ in range(100):
        fn(observation=tf.constant(obs[:1]))
    times = []
    for i in range(n):
        x = tf.constant(obs[i % len(obs)][None])
        t0 = time.perf_counter()
        fn(observation=x)
        times.append(time.perf_counter() - t0)
    return {"session_ms": session_ms, "eager_ms": float(np.median(times) * 1e3)}


def copy_version(src: str, base: str, version: int) -> None:
    """Copies a version in atomically (hidden temp name, then rename), like tfrl.export."""
    tmp = os.path.join(base, f".{version}.tmp")
    shutil.copytree(src, tmp)
    os.rename(tmp, os.path.join(base, str(version)))


def versions() -> str:
    import aiohttp
    import tensorflow as tf
    import tf_agents

    return (
        f"Python {platform.python_version()}, tensorflow {tf.__version__}, tf-agents "
        f"{tf_agents.__version__}, aiohttp {aiohttp.__version__}, numpy {np.__version__}"
    )


def cpu_times() -> list[int] | None:
    """The aggregate `cpu` line of /proc/stat (jiffies), or None off Linux."""
    try:
        with open("/proc/stat") as f:
            return [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None


def machine_load(before: list[int] | None, after: list[int] | None) -> str:
    """How busy the machine was during the runs (this script and its server included)."""
    try:
        with open("/proc/loadavg") as f:
            loadavg = " ".join(f.read().split()[:3])
    except OSError:
        loadavg = "unknown"
    text = f"load average after the runs (1, 5, 15 min): {loadavg}"
    if before and after:
        delta = [a - b for a, b in zip(after, before)]
        total = sum(delta) or 1
        idle = delta[3] + (delta[4] if len(delta) > 4 else 0)
        steal = delta[7] if len(delta) > 7 else 0
        text += (
            f"; over the runs the CPUs were {100 * (total - idle) / total:.0f}% busy, "
            f"{100 * steal / total:.1f}% stolen by the hypervisor"
        )
    return text


def start_server(base: str, port: int, grpc_port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tfrl.cli.main",
            "serve",
            "--model_name",
            MODEL,
            "--model_base_path",
            base,
            "--rest_api_port",
            str(port),
            "--port",
            str(grpc_port),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    status_url = f"http://127.0.0.1:{port}/v1/models/{MODEL}"
    deadline = time.monotonic() + 120
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"tfrl serve exited: {server.stderr.read().decode()[-2000:]}")
        try:
            if get(status_url)[0] == 200:
                return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("tfrl serve did not start within 120 s")
        time.sleep(0.2)


def main() -> int:
    args = parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    scratch = tempfile.mkdtemp(prefix="tfrl-serving-load-")
    server = None
    runs: list[tuple[str, dict, Swap | None]] = []
    try:
        rng = np.random.default_rng(0)
        obs = rng.uniform(-2, 2, size=(256, 4)).astype(np.float32)
        paths = build_versions(scratch, 4)
        check = VersionCheck({v + 1: expected_q_values(p, obs) for v, p in enumerate(paths)})
        origin = (
            "4 untrained DqnAgents from CartPole specs, Q-network fc (256, 256), each "
            "separately initialized (versions 1-4 hold different weights)"
        )
        base = os.path.join(scratch, MODEL)
        os.makedirs(base)
        copy_version(paths[0], base, 1)
        port, grpc_port = free_port(), free_port()
        cpu_before = cpu_times()
        server = start_server(base, port, grpc_port)
        status_url = f"http://127.0.0.1:{port}/v1/models/{MODEL}"

        bodies = [json.dumps({"instances": [row.tolist()]}).encode() for row in obs]
        requests = http_requests(f"/v1/models/{MODEL}:predict", bodies)
        client = Client(port, requests, check)
        grpc_client = GrpcClient(f"127.0.0.1:{grpc_port}", obs, check)
        swap_at = int(args.requests * args.swap_at)
        version = 1

        def timed(coro):
            return asyncio.run(asyncio.wait_for(coro, timeout=args.time_limit))

        timed(client.run(args.warmup, args.concurrency))
        timed(grpc_client.run(args.warmup, args.concurrency))
        runs.append(("REST, 1 connection", timed(client.run(args.serial_requests, 1)), None))
        runs.append(
            ("gRPC, 1 call at a time", timed(grpc_client.run(args.serial_requests, 1)), None)
        )
        if args.runs != "paced":
            for name, runner in [
                ("REST closed loop (saturation), with swap", client),
                ("gRPC closed loop (saturation), with swap", grpc_client),
            ]:
                time.sleep(1.0)  # let the server settle after the last run
                swap = Swap(paths[version], base, version + 1, status_url, swap_at)
                run = timed(runner.run(args.requests, args.concurrency, swap.progress))
                swap.wait()
                version += 1
                runs.append((name, run, swap))
        if args.runs != "closed":
            time.sleep(1.0)
            swap = Swap(paths[version], base, version + 1, status_url, swap_at)
            paced = paced_run(
                port,
                requests,
                check,
                args.requests,
                args.rate,
                args.concurrency,
                args.time_limit,
                swap.progress,
            )
            swap.wait()
            runs.append((f"REST paced {args.rate:,.0f} req/s, with swap", paced, swap))
        swap_status = get(status_url)[1]["model_version_status"]
        inproc = in_process_times(paths[0], obs)
        load = machine_load(cpu_before, cpu_times())
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(scratch, ignore_errors=True)

    version_notes = {name: swap.check_versions(run) for name, run, swap in runs if swap}
    command = " ".join(["python", os.path.relpath(sys.argv[0], REPO), *sys.argv[1:]])
    total_errors = sum(len(r["errors"]) for _, r, _ in runs)
    swaps_ok = all(s.in_time(r["requests"]) and not s.error for _, r, s in runs if s)
    row = (
        "| {name} | {requests} | {concurrency} | {offered} | {throughput:,.0f} | {p50:.2f} "
        "| {p90:.2f} | {p99:.2f} | {max:.1f} | {n_err} |"
    )

    def table_row(name: str, run: dict) -> str:
        offered = f"{run['rate']:,.0f}" if "rate" in run else "as fast as answered"
        return row.format(name=name, offered=offered, n_err=len(run["errors"]), **run)

    by_name = {name: run for name, run, _ in runs}
    raw = inproc["session_ms"]
    lines = [
        "# tfrl serve load test (REST and gRPC)",
        "",
        f"Command: `{command}` (from the repository root, in the project's venv)",
        f"Date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"Versions: {versions()}",
        f"Machine: {machine.describe()}; {load}; this script ran at niceness "
        f"{os.nice(0)}. The machine was SHARED with other jobs "
        "during the run (see the load average): absolute times are noisy; compare rows of "
        "this one invocation with each other.",
        f"Model: {origin}; each request is one observation, REST in row format "
        '(`{"instances": [[x0, x1, x2, x3]]}`), gRPC a `PredictRequest` built with '
        "`tf.make_tensor_proto`; answered with action and q_values. Every answer's q_values "
        "are matched against each version's in-process output (must match exactly one).",
        "Server: `tfrl serve` defaults (batching on, max batch 64, no batch timeout, 2 "
        "model threads, watcher polling every 1 s), REST and gRPC in one process.",
        "Clients: stdlib HTTP/1.1 keep-alive (one connection per concurrent request) and "
        "`tensorflow-serving-api`'s `PredictionServiceStub` on one `grpc.aio` channel, "
        f"in this script, same machine, loopback; {args.warmup} warm-up requests per API "
        "not counted.",
        "",
        "| run | requests | concurrency | offered req/s | achieved req/s | p50 ms | p90 ms "
        "| p99 ms | max ms | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| raw in-process `serving_default` call (TF1 session, as the server runs it) | "
        f"2000 | 1 | - | {1e3 / raw:,.0f} | {raw:.3f} | - | - | - | - |",
        *[table_row(name, run) for name, run, _ in runs],
        "",
        "- **closed loop (saturation)**: each connection (or gRPC task) sends its next "
        "request as soon as the previous one is answered, so the server runs flat out; this "
        "row is the throughput, and its latency is queueing (Little's law: "
        f"{args.concurrency} in flight / throughput).",
        "- **paced**: requests due at fixed times (request i at start + i / rate), each "
        "on the first free connection; latency counts from the due time, so a stall "
        "delays and counts every request due during it (no coordinated omission). This "
        "row is the latency at that offered load.",
    ]
    for name, run, swap in runs:
        if swap is None:
            continue
        inside, outside = swap.worst_inside_outside(run)
        lines += [
            "",
            f"{name}: {swap.describe(run['requests'])} Worst latency of requests due during "
            f"the swap: {inside:.1f} ms; of the others: {outside:.1f} ms. "
            f"Version check: {version_notes[name]}.",
        ]
        if "rate" in run:
            lines.append(
                f"Client timing in the paced run: requests went out {run['lag_p50']:.3f} ms "
                f"(p50) / {run['lag_p99']:.3f} ms (p99) after their due time; from send to "
                f"answer took {run['service_p50']:.2f} ms (p50) / {run['service_p99']:.2f} ms "
                "(p99)."
            )
    lines += [
        f"Status after the runs: `{json.dumps(swap_status)}`.",
        "",
        "In-process `serving_default`, one observation, median of 2,000 calls: "
        f"{inproc['session_ms']:.3f} ms through the TF1 session loader tfrl serve uses, "
        f"{inproc['eager_ms']:.3f} ms through `tf.saved_model.load(...).signatures`.",
        "",
        "Targets (issue 12, 2 cores): REST p50 <= 2 ms paced at 1,000 req/s; gRPC p50 <= "
        "1 ms; overhead over the raw call <= 1 ms at concurrency 1; 0 errors over 10,000 "
        f"requests per run, every answer from the right version. Errors in total: "
        f"{total_errors}.",
    ]

    def verdict(ok: bool) -> str:
        return "meets" if ok else "MISSES"

    for name, run, _ in runs:
        if "rate" in run:
            lines.append(
                f"- {name}: p50 {run['p50']:.2f} ms: {verdict(run['p50'] <= 2.0)} the 2 ms target."
            )
    for name in ("REST, 1 connection", "gRPC, 1 call at a time"):
        run = by_name[name]
        overhead = run["p50"] - raw
        lines.append(
            f"- {name}: p50 {run['p50']:.2f} ms, {overhead:.2f} ms over the raw call: "
            f"{verdict(overhead <= 1.0)} the 1 ms overhead target"
            + (
                f"; {verdict(run['p50'] <= 1.0)} the gRPC 1 ms p50 target."
                if "gRPC" in name
                else "."
            )
        )
    if total_errors:
        errors = [e for _, r, _ in runs for e in r["errors"]]
        lines += ["", "First errors:", *[f"- {e}" for e in errors[:5]]]
    text = "\n".join(lines) + "\n"
    from tfrl.atomic import atomic_write_text

    atomic_write_text(args.output, text)
    print(text)
    return 0 if total_errors == 0 and swaps_ok else 1


if __name__ == "__main__":
    sys.exit(main())
