"""`Server`: TensorFlow Serving's REST API (aiohttp) and gRPC API (grpc.aio).

REST routes (as TF Serving's; the fixed words are case-insensitive, names are not):

    GET  /v1/models/<name>[/versions/<v>|/labels/<label>]            version status
    GET  /v1/models/<name>[/versions/<v>|/labels/<label>]/metadata   signature defs
    POST /v1/models/<name>[/versions/<v>|/labels/<label>]:predict    run a signature
    GET  <metrics_path>   Prometheus metrics, when enabled (see `tfrl.serving.metrics`)

Errors are `{"error": "..."}` with TF Serving's HTTP statuses (400 bad
argument, 404 unknown model/version/label or nothing loaded yet, 405 wrong
method, 413 body too large, 429 queue full). Bad requests are answered and
logged at DEBUG level only; the server keeps serving. The gRPC API
(`tfrl.serving.grpc_api`) runs on the same event loop over the same registry.

Large bodies are decoded and large answers encoded in a worker process
(`tfrl.serving.workers`), so one big request never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import gc
import json
import logging
import signal
import sys
import threading
import time
import urllib.parse
from typing import Any

from aiohttp import web
from google.protobuf import json_format

from tfrl.errors import ConfigError
from tfrl.ports import listen, start_error
from tfrl.serving.batching import BatchingOptions
from tfrl.serving.config import ModelConfig, check_name
from tfrl.serving.metrics import UNKNOWN_MODEL, Metrics
from tfrl.serving.registry import ModelRegistry, ServedVersion
from tfrl.serving.status import Code, ServingError
from tfrl.serving.workers import CodecPool

__all__ = ["Server", "ServerOptions"]

logger = logging.getLogger(__name__)

_JSON = "application/json"


@dataclasses.dataclass(frozen=True)
class ServerOptions:
    """Server settings (TF Serving's flag names in brackets).

    Attributes:
        host: address to bind. Default "127.0.0.1" (this machine only).
        port: REST port [--rest_api_port]. Default 8501; 0 picks a free one.
        grpc_port: gRPC port [--port]. Default None: no gRPC (`tfrl serve`
            opens 8500); 0 picks a free one.
        poll_interval: seconds between base-path polls
            [--file_system_poll_wait_seconds]. Default 1.0; 0 polls once, at start.
        max_body_bytes: largest request body (REST) or message (gRPC) accepted;
            larger gets HTTP 413 / RESOURCE_EXHAUSTED. Default 16 MiB.
        max_request_rows: most examples in one request (HTTP 400 /
            INVALID_ARGUMENT beyond). Default 100,000; None: no limit.
            Requests larger than the batch size are split across model calls.
        metrics_path: REST path of Prometheus metrics, e.g.
            "/monitoring/prometheus/metrics" [--monitoring_config_file].
            Default None: no metrics.
        codec_processes: worker processes in each lane (medium and large bodies)
            decoding requests and encoding answers. Default 1.
        batching: `BatchingOptions`.
        num_threads: threads running model calls. Default 2.
        max_num_load_retries: how many times a version that failed to load is
            retried while its files stay the same [--max_num_load_retries].
            Default 5. A version whose files change is retried on the next poll.
        load_retry_interval_seconds: seconds between those retries
            [--load_retry_interval_micros]. Default 60.0.
    """

    host: str = "127.0.0.1"
    port: int = 8501
    grpc_port: int | None = None
    poll_interval: float = 1.0
    max_body_bytes: int = 16 * 1024 * 1024
    max_request_rows: int | None = 100_000
    metrics_path: str | None = None
    codec_processes: int = 1
    batching: BatchingOptions = dataclasses.field(default_factory=BatchingOptions)
    num_threads: int = 2
    max_num_load_retries: int = 5
    load_retry_interval_seconds: float = 60.0

    def __post_init__(self) -> None:
        for flag, port in (("port", self.port), ("grpc_port", self.grpc_port)):
            if port is not None and not 0 <= port <= 65535:
                raise ConfigError(f"{flag}={port}; use 0..65535 (0 picks a free port).")
        if self.grpc_port is not None and self.grpc_port == self.port != 0:
            raise ConfigError(
                f"port and grpc_port are both {self.port}; REST and gRPC need different ports."
            )
        if self.poll_interval < 0:
            raise ConfigError(
                f"poll_interval={self.poll_interval}; use 0 (poll once, at start) or a "
                "positive number of seconds."
            )
        if self.max_request_rows is not None and self.max_request_rows < 1:
            raise ConfigError(f"max_request_rows={self.max_request_rows}; use 1 or more.")
        if self.codec_processes < 1:
            raise ConfigError(f"codec_processes={self.codec_processes}; use 1 or more.")
        if self.metrics_path is not None and (
            not self.metrics_path.startswith("/") or self.metrics_path.startswith("/v1/")
        ):
            raise ConfigError(
                f"metrics_path={self.metrics_path!r}; use an absolute path outside /v1/, "
                "e.g. /monitoring/prometheus/metrics."
            )
        if self.max_body_bytes < 1024:
            raise ConfigError(f"max_body_bytes={self.max_body_bytes}; use at least 1024.")
        if self.num_threads < 1:
            raise ConfigError(f"num_threads={self.num_threads}; use 1 or more.")
        if self.max_num_load_retries < 0:
            raise ConfigError(
                f"max_num_load_retries={self.max_num_load_retries}; use 0 or more "
                "(0: retry a failed version only when its files change)."
            )
        if self.load_retry_interval_seconds < 0:
            raise ConfigError(
                f"load_retry_interval_seconds={self.load_retry_interval_seconds}; use 0 or "
                "more seconds."
            )


class Server:
    """A local TF-Serving-compatible REST server for one or more models.

    Args:
        models: what to serve (see `tfrl.serving.config`).
        options: `ServerOptions`; keyword arguments override its fields.

    Example:
        >>> with Server([ModelConfig("cartpole_dqn", "saved_models/cartpole_dqn")], port=0) as s:
        ...     print(s.url)   # http://127.0.0.1:<port>, models loaded
    """

    def __init__(
        self, models: list[ModelConfig], options: ServerOptions | None = None, **overrides: Any
    ) -> None:
        if not models:
            raise ConfigError("Server() needs at least one ModelConfig.")
        self.models = list(models)
        self.options = dataclasses.replace(options or ServerOptions(), **overrides)
        self.port: int | None = None
        self.grpc_port: int | None = None
        self.codec: CodecPool | None = None  # the decoding workers, once started
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    @property
    def url(self) -> str:
        """http://host:port once started."""
        return f"http://{self.options.host}:{self.port}"

    @property
    def grpc_target(self) -> str:
        """host:port of the gRPC API once started (with `grpc_port` set)."""
        return f"{self.options.host}:{self.grpc_port}"

    # -- running ---------------------------------------------------------

    async def run_async(self, started: asyncio.Event | None = None) -> None:
        """Serves until `stop()` (or cancellation).

        Binds the ports first (a port in use fails at once, with
        `ServerStartError`), then loads the models, then serves and reports
        ready; connections made meanwhile wait and are then answered.
        """
        o = self.options
        run_executor = concurrent.futures.ThreadPoolExecutor(o.num_threads, "tfrl-serve-run")
        load_executor = concurrent.futures.ThreadPoolExecutor(1, "tfrl-serve-load")
        registry = ModelRegistry(
            self.models,
            o.batching,
            run_executor,
            load_executor,
            max_num_load_retries=o.max_num_load_retries,
            load_retry_interval=o.load_retry_interval_seconds,
            polls=o.poll_interval > 0,
        )
        metrics = None
        if o.metrics_path is not None:
            metrics = Metrics(registry.loaded_versions, registry.load_failures)
        codec = self.codec = CodecPool(o.codec_processes)
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        runner = None
        rest_socket = None
        grpc_server = None
        watcher = None
        try:
            # Bind (and listen on) the ports first, so a port in use fails before any
            # model loads; connections that arrive while models load wait in the
            # listen backlog and are answered once serving starts, as with TF Serving.
            rest_socket = listen("REST", o.host, o.port)
            if o.grpc_port is not None:
                listen("gRPC", o.host, o.grpc_port).close()  # probe; grpc binds it below
            await codec.start()
            await registry.refresh()
            app = _make_app(registry, o, codec, metrics)
            # On stop, requests under way get SHUTDOWN_GRACE seconds (aiohttp's own
            # default, 60 s, made Ctrl-C look ignored while a request waited).
            runner = web.AppRunner(
                app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_GRACE
            )
            await runner.setup()
            await web.SockSite(runner, rest_socket).start()
            self.port = rest_socket.getsockname()[1]
            if o.grpc_port is not None:
                from tfrl.serving.grpc_api import make_grpc_server

                grpc_server = make_grpc_server(
                    registry, metrics, o.max_body_bytes, o.max_request_rows
                )
                try:
                    self.grpc_port = grpc_server.add_insecure_port(f"{o.host}:{o.grpc_port}")
                except RuntimeError as e:
                    raise start_error("gRPC", o.host, o.grpc_port, e) from None
                await grpc_server.start()
            if o.poll_interval > 0:
                watcher = asyncio.get_running_loop().create_task(registry.watch(o.poll_interval))
            grpc_note = f" and gRPC on {self.grpc_target}" if grpc_server is not None else ""
            logger.info("Serving %s on %s%s", registry.names, self.url, grpc_note)
            if started is not None:
                started.set()
            self._ready.set()
            await self._stopped.wait()
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            if grpc_server is not None:
                await grpc_server.stop(grace=1.0)
            if runner is not None:
                await runner.cleanup()
            if rest_socket is not None:
                rest_socket.close()  # already closed by the runner if it served
            await registry.close()
            codec.close()
            run_executor.shutdown(wait=True)
            load_executor.shutdown(wait=True)
            self._loop = self._stopped = None  # a later stop() has nothing to do

    def serve_forever(self) -> None:
        """Serves in this thread until interrupted (Ctrl-C).

        Meant for a process of its own (`tfrl serve`, `tfrl.serving.serve`): it
        first freezes every object alive so far (`gc.freeze()`: TensorFlow's
        modules, about half a million objects) out of the garbage collector's
        reach. Otherwise loading a new version tends to trigger a full
        collection that walks them all while holding the GIL, stalling every
        request for ~200 ms in the middle of a hot swap. Models are loaded after
        the freeze, so unloaded versions are still collected. It also shortens
        the GIL switch interval to 0.5 ms (Python's default is 5 ms): while the
        loader thread runs Python code, the event loop, which gives up the GIL at
        every socket call, would otherwise wait up to 5 ms each time to get it
        back, stalling requests for tens of ms. `start()` leaves the host
        process's collector and switch interval alone.
        """
        freeze_startup_objects()
        sys.setswitchinterval(SWITCH_INTERVAL)

        def terminate(signum: int, frame: Any) -> None:
            # SIGTERM (what process managers send) stops serving exactly as Ctrl-C
            # does, also while models load: asyncio's SIGINT handler cancels the
            # server's task, requests under way get their grace, workers are stopped.
            if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
                # SIGINT is ignored (a background job of a script), so raising it would
                # do nothing: interrupt the loop directly; asyncio.run then cancels the
                # server's task and its clean-up runs as after Ctrl-C.
                raise KeyboardInterrupt
            signal.raise_signal(signal.SIGINT)

        previous = signal.signal(signal.SIGTERM, terminate)
        try:
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(self.run_async())
        finally:
            signal.signal(signal.SIGTERM, previous)

    def start(self, timeout: float = 120.0) -> Server:
        """Serves from a background thread; returns once the port is open."""
        if self._thread is not None:
            raise RuntimeError("Server already started.")

        def main() -> None:
            try:
                asyncio.run(self.run_async())  # also cancels what a stop left pending
            except BaseException as e:
                self._startup_error = e
                self._ready.set()

        self._thread = threading.Thread(target=main, name="tfrl-serve", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"Server did not start within {timeout} s.")
        if self._startup_error is not None:
            raise self._startup_error
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stops a server started with `start()` (or running in `run_async`)."""
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None:
            with contextlib.suppress(RuntimeError):  # it stopped meanwhile: loop closed
                loop.call_soon_threadsafe(stopped.set)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


SWITCH_INTERVAL = 0.0005  # seconds; see Server.serve_forever
SHUTDOWN_GRACE = 10.0  # seconds requests under way get to finish when the server stops


def freeze_startup_objects() -> None:
    """Collects garbage, then moves every live object to the permanent generation.

    Full collections then walk only objects created afterwards (loaded model
    versions, requests), not the interpreter's and TensorFlow's modules.
    """
    gc.collect()
    gc.freeze()


# -- HTTP ---------------------------------------------------------------------


def _error(code: Code, message: str) -> web.Response:
    headers = {"Allow": "POST"} if code is Code.METHOD_NOT_ALLOWED else None
    return web.Response(
        status=code.http_status,
        text=json.dumps({"error": message}),
        content_type=_JSON,
        headers=headers,
    )


def _ok(doc: dict[str, Any]) -> web.Response:
    return web.Response(text=json.dumps(doc), content_type=_JSON)


@dataclasses.dataclass
class _Route:
    name: str
    version: int | None
    label: str | None
    action: str  # "status", "metadata", "predict"


_VERBS = ("predict", "classify", "regress")


def _parse_path(method: str, raw_path: str) -> _Route:
    """TF Serving's routes; like its URL patterns, fixed words match in any case."""
    malformed = ServingError(Code.INVALID_ARGUMENT, f"Malformed request: {method} {raw_path}")
    segments = raw_path.split("/")
    if [s.lower() for s in segments[:3]] != ["", "v1", "models"] or len(segments) < 4:
        raise malformed
    parts = [urllib.parse.unquote(s) for s in segments[3:]]
    action = "status"
    verb = parts[-1].rsplit(":", 1)
    if len(verb) == 2 and verb[1].lower() in _VERBS:
        if method != "POST":
            raise ServingError(
                Code.METHOD_NOT_ALLOWED,
                f"Method {method} is not allowed on {raw_path}: :{verb[1].lower()} takes "
                "POST with a JSON body.",
            )
        if verb[1].lower() != "predict":
            raise ServingError(
                Code.INVALID_ARGUMENT,
                f"{verb[1].lower()} is not supported by tfrl serve; use :predict.",
            )
        parts[-1], action = verb[0], "predict"
    elif method == "GET":
        if len(parts) > 1 and parts[-1].lower() == "metadata":
            parts, action = parts[:-1], "metadata"
    else:
        raise malformed
    name, rest = parts[0], parts[1:]
    _check_segment("model name", name)
    version = label = None
    kind = rest[0].lower() if rest else ""
    if len(rest) == 2 and kind == "versions":
        if not (rest[1].isascii() and rest[1].isdigit()):
            raise ServingError(
                Code.INVALID_ARGUMENT,
                f"Version {rest[1]!r} in {raw_path} is not an integer; use /versions/<N>.",
            )
        version = int(rest[1])
    elif len(rest) == 2 and kind == "labels":
        _check_segment("label", rest[1])
        label = rest[1]
    elif rest:
        raise malformed
    return _Route(name, version, label, action)


def _check_segment(what: str, value: str) -> None:
    if not check_name(value):
        raise ServingError(
            Code.INVALID_ARGUMENT,
            f"Invalid {what} {value!r}: use letters, digits, '_', '-' and '.' (no '/' or '..').",
        )


def _make_app(
    registry: ModelRegistry, options: ServerOptions, codec: CodecPool, metrics: Metrics | None
) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        start = time.perf_counter()
        path = request.raw_path.split("?", 1)[0]
        if metrics is not None and path == options.metrics_path and request.method == "GET":
            body, content_type = metrics.exposition()
            return web.Response(body=body, headers={"Content-Type": content_type})
        route = None
        version = [""]
        try:
            route = _parse_path(request.method, path)
            response = await _answer(registry, route, request, options, codec, version)
            code = "OK"
        except ServingError as e:
            logger.debug("%s %s -> %s: %s", request.method, request.path, e.code.name, e.message)
            response, code = _error(e.code, e.message), e.code.name
        except Exception as e:  # a bug in the server, not in the request
            logger.exception("Internal error on %s %s", request.method, request.path)
            response = _error(Code.INTERNAL, f"Internal error: {type(e).__name__}")
            code = "INTERNAL"
        if metrics is not None and route is not None:
            model = route.name if route.name in registry else UNKNOWN_MODEL
            metrics.observe(
                model, version[0], route.action, "REST", code, time.perf_counter() - start
            )
        return response

    app = web.Application(client_max_size=options.max_body_bytes)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def _answer(
    registry: ModelRegistry,
    route: _Route,
    request: web.Request,
    options: ServerOptions,
    codec: CodecPool,
    version: list[str],
) -> web.Response:
    if route.action == "status":
        return _ok(
            {"model_version_status": registry.status(route.name, route.version, route.label)}
        )
    if route.action == "metadata":
        served = registry.resolve(route.name, route.version, route.label)
        version[0] = str(served.version)
        return _ok(_metadata(served, route.name))
    body = await _read_body(request, options.max_body_bytes)
    served = registry.resolve(route.name, route.version, route.label)
    version[0] = str(served.version)
    with served.hold():
        signature, fmt, feeds = await codec.decode(
            body,
            served.model.inputs,
            f"{route.name} version {served.version}",
            options.max_request_rows,
        )
        outputs = await served.predict(signature, feeds)
    return web.Response(body=await codec.encode(outputs, fmt), content_type=_JSON)


def _metadata(served: ServedVersion, name: str) -> dict[str, Any]:
    signature_def = {
        key: json_format.MessageToDict(
            sig, preserving_proto_field_name=True, including_default_value_fields=True
        )
        for key, sig in served.model.all_signature_defs.items()
    }
    return {
        "model_spec": {"name": name, "signature_name": "", "version": str(served.version)},
        "metadata": {"signature_def": {"signature_def": signature_def}},
    }


async def _read_body(request: web.Request, max_body_bytes: int) -> bytes:
    length = request.content_length
    if length is not None and length > max_body_bytes:
        raise ServingError(
            Code.PAYLOAD_TOO_LARGE,
            f"Request body of {length} bytes exceeds the limit of {max_body_bytes} bytes; "
            "send smaller batches or raise --max_body_bytes.",
        )
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ServingError(
            Code.PAYLOAD_TOO_LARGE,
            f"Request body exceeds the limit of {max_body_bytes} bytes; send smaller "
            "batches or raise --max_body_bytes.",
        ) from None
