"""`Server`: TensorFlow Serving's REST API on aiohttp, for local use and tests.

Routes (as TF Serving's REST API):

    GET  /v1/models/<name>[/versions/<v>|/labels/<label>]            version status
    GET  /v1/models/<name>[/versions/<v>|/labels/<label>]/metadata   signature defs
    POST /v1/models/<name>[/versions/<v>|/labels/<label>]:predict    run a signature

Errors are `{"error": "..."}` with TF Serving's HTTP statuses (400 bad
argument, 404 unknown model/version/label, 413 body too large, 429 queue
full, 503 nothing loaded yet). Bad requests are answered and logged at DEBUG
level only; the server keeps serving.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import gc
import json
import logging
import sys
import threading
import urllib.parse
from typing import Any

from aiohttp import web
from google.protobuf import json_format

from tfrl.errors import ConfigError
from tfrl.serving.batching import BatchingOptions
from tfrl.serving.codec import decode_inputs, encode_outputs, parse_predict_request
from tfrl.serving.config import ModelConfig, check_name
from tfrl.serving.registry import ModelRegistry
from tfrl.serving.status import Code, ServingError

__all__ = ["Server", "ServerOptions"]

logger = logging.getLogger(__name__)

_JSON = "application/json"


@dataclasses.dataclass(frozen=True)
class ServerOptions:
    """Server settings (TF Serving's flag names in brackets).

    Attributes:
        host: address to bind. Default "127.0.0.1" (this machine only).
        port: REST port [--rest_api_port]. Default 8501; 0 picks a free one.
        poll_interval: seconds between base-path polls
            [--file_system_poll_wait_seconds]. Default 1.0.
        max_body_bytes: largest request body accepted. Default 16 MiB.
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
    poll_interval: float = 1.0
    max_body_bytes: int = 16 * 1024 * 1024
    batching: BatchingOptions = dataclasses.field(default_factory=BatchingOptions)
    num_threads: int = 2
    max_num_load_retries: int = 5
    load_retry_interval_seconds: float = 60.0

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port={self.port}; use 0..65535 (0 picks a free port).")
        if self.poll_interval <= 0:
            raise ConfigError(
                f"poll_interval={self.poll_interval}; use a positive number of seconds."
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
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    @property
    def url(self) -> str:
        """http://host:port once started."""
        return f"http://{self.options.host}:{self.port}"

    # -- running ---------------------------------------------------------

    async def run_async(self, started: asyncio.Event | None = None) -> None:
        """Serves until `stop()` (or cancellation). Loads models before listening."""
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
        )
        self._stopped = asyncio.Event()
        runner = None
        watcher = None
        try:
            await registry.refresh()
            app = _make_app(registry, o.max_body_bytes)
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, o.host, o.port, reuse_address=True)
            await site.start()
            self.port = runner.addresses[0][1]
            watcher = asyncio.get_running_loop().create_task(registry.watch(o.poll_interval))
            logger.info("Serving %s on %s", registry.names, self.url)
            if started is not None:
                started.set()
            self._ready.set()
            await self._stopped.wait()
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            if runner is not None:
                await runner.cleanup()
            await registry.close()
            run_executor.shutdown(wait=True)
            load_executor.shutdown(wait=True)

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
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(self.run_async())

    def start(self, timeout: float = 120.0) -> Server:
        """Serves from a background thread; returns once the port is open."""
        if self._thread is not None:
            raise RuntimeError("Server already started.")

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.run_async())
            except BaseException as e:
                self._startup_error = e
                self._ready.set()
            finally:
                loop.close()

        self._thread = threading.Thread(target=main, name="tfrl-serve", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"Server did not start within {timeout} s.")
        if self._startup_error is not None:
            raise self._startup_error
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stops a server started with `start()` (or running in `run_async`)."""
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


SWITCH_INTERVAL = 0.0005  # seconds; see Server.serve_forever


def freeze_startup_objects() -> None:
    """Collects garbage, then moves every live object to the permanent generation.

    Full collections then walk only objects created afterwards (loaded model
    versions, requests), not the interpreter's and TensorFlow's modules.
    """
    gc.collect()
    gc.freeze()


# -- HTTP ---------------------------------------------------------------------


def _error(code: Code, message: str) -> web.Response:
    return web.Response(
        status=code.http_status, text=json.dumps({"error": message}), content_type=_JSON
    )


def _ok(doc: dict[str, Any]) -> web.Response:
    return web.Response(text=json.dumps(doc), content_type=_JSON)


@dataclasses.dataclass
class _Route:
    name: str
    version: int | None
    label: str | None
    action: str  # "status", "metadata", "predict"


def _parse_path(method: str, raw_path: str) -> _Route:
    malformed = ServingError(Code.INVALID_ARGUMENT, f"Malformed request: {method} {raw_path}")
    segments = raw_path.split("/")
    if segments[:3] != ["", "v1", "models"] or len(segments) < 4:
        raise malformed
    parts = [urllib.parse.unquote(s) for s in segments[3:]]
    action = "status"
    last = parts[-1]
    if method == "POST":
        verb = last.rsplit(":", 1)
        if len(verb) != 2 or verb[1] not in ("predict", "classify", "regress"):
            raise malformed
        if verb[1] != "predict":
            raise ServingError(
                Code.INVALID_ARGUMENT,
                f"{verb[1]} is not supported by tfrl serve; use :predict.",
            )
        parts[-1], action = verb[0], "predict"
    elif method == "GET":
        if len(parts) > 1 and parts[-1] == "metadata":
            parts, action = parts[:-1], "metadata"
    else:
        raise malformed
    name, rest = parts[0], parts[1:]
    _check_segment("model name", name)
    version = label = None
    if len(rest) == 2 and rest[0] == "versions":
        if not (rest[1].isascii() and rest[1].isdigit()):
            raise ServingError(
                Code.INVALID_ARGUMENT,
                f"Version {rest[1]!r} in {raw_path} is not an integer; use /versions/<N>.",
            )
        version = int(rest[1])
    elif len(rest) == 2 and rest[0] == "labels":
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


def _make_app(registry: ModelRegistry, max_body_bytes: int) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            route = _parse_path(request.method, request.raw_path.split("?", 1)[0])
            if route.action == "status":
                status = registry.status(route.name, route.version, route.label)
                return _ok({"model_version_status": status})
            if route.action == "metadata":
                return _ok(_metadata(registry, route))
            return await _predict(registry, route, request, max_body_bytes)
        except ServingError as e:
            logger.debug("%s %s -> %s: %s", request.method, request.path, e.code.name, e.message)
            return _error(e.code, e.message)
        except Exception as e:  # a bug in the server, not in the request
            logger.exception("Internal error on %s %s", request.method, request.path)
            return _error(Code.INTERNAL, f"Internal error: {_first_line(e)}")

    app = web.Application(client_max_size=max_body_bytes)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def _metadata(registry: ModelRegistry, route: _Route) -> dict[str, Any]:
    served = registry.resolve(route.name, route.version, route.label)
    signature_def = {
        name: json_format.MessageToDict(
            sig, preserving_proto_field_name=True, including_default_value_fields=True
        )
        for name, sig in served.model.all_signature_defs.items()
    }
    return {
        "model_spec": {"name": route.name, "signature_name": "", "version": str(served.version)},
        "metadata": {"signature_def": {"signature_def": signature_def}},
    }


async def _predict(
    registry: ModelRegistry, route: _Route, request: web.Request, max_body_bytes: int
) -> web.Response:
    length = request.content_length
    if length is not None and length > max_body_bytes:
        raise ServingError(
            Code.PAYLOAD_TOO_LARGE,
            f"Request body of {length} bytes exceeds the limit of {max_body_bytes} bytes; "
            "send smaller batches or raise --max_body_bytes.",
        )
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ServingError(
            Code.PAYLOAD_TOO_LARGE,
            f"Request body exceeds the limit of {max_body_bytes} bytes; send smaller "
            "batches or raise --max_body_bytes.",
        ) from None
    parsed = parse_predict_request(body)
    served = registry.resolve(route.name, route.version, route.label)
    signature = parsed.signature_name
    if signature not in served.model.signature_defs:
        raise ServingError(
            Code.FAILED_PRECONDITION,
            f'Serving signature key "{signature}" not found. Signatures of {route.name} '
            f"version {served.version}: {sorted(served.model.signature_defs)}.",
        )
    feeds = decode_inputs(parsed, served.model.inputs[signature])
    served.inflight += 1
    try:
        outputs = await served.batchers[signature].submit(feeds)
    except ServingError:
        raise
    except Exception as e:
        # Inputs were checked, so this is an error inside the model (e.g. a
        # failed assertion on values): the client's argument, as TF Serving says.
        raise ServingError(Code.INVALID_ARGUMENT, f"Model call failed: {_first_line(e)}") from e
    finally:
        served.inflight -= 1
    return _ok(encode_outputs(outputs, parsed.format))


def _first_line(e: BaseException) -> str:
    # TF's graph errors open with a generic header; the message (e.g. a failed
    # assertion's text) is on the next non-empty line.
    lines = [s for s in str(e).strip().splitlines() if s.strip()]
    if len(lines) > 1 and lines[0].strip() == "Graph execution error:":
        lines = lines[1:]
    return lines[0].strip() if lines else type(e).__name__
