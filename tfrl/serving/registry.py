"""Served models: their loaded versions, version status and the version watcher.

`ModelRegistry.refresh()` does what TF Serving's file-system poller and
availability-preserving loader do: list the integer version directories
under each base path, load the versions the model's policy wants (latest by
default), and only once a wanted version is AVAILABLE unload the versions no
longer wanted. A request holds its version until it is answered, and a
version's session closes only when no request holds it, so swaps drop
nothing. `watch()` runs `refresh()` every `poll_interval` seconds.

A version that fails to load (say a `saved_model.pb` still being copied) is
retried, as TF Serving retries failed loads (`--max_num_load_retries`,
`--load_retry_interval_micros`): on a later poll as soon as the files in its
directory change (size, mtime or inode of any file under it), or otherwise
every `load_retry_interval` seconds, up to `max_num_load_retries` times for the
same files. Changed files always get a fresh attempt and a fresh retry budget.
Between attempts its status is END with the load error, as TF Serving reports
a failed version; a successful retry makes it AVAILABLE.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import os
import re
import time
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from tfrl.errors import did_you_mean
from tfrl.export.check import sample_input
from tfrl.export.session_model import SessionModel
from tfrl.export.versions import list_versions
from tfrl.serving.batching import Batcher, BatchingOptions
from tfrl.serving.config import ModelConfig
from tfrl.serving.status import Code, ServingError

__all__ = ["ModelRegistry", "ServedVersion", "VersionStatus"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class VersionStatus:
    """One entry of `model_version_status`."""

    version: int
    state: str  # START, LOADING, AVAILABLE, UNLOADING, END
    error_code: str = "OK"
    error_message: str = ""

    def to_json(self) -> dict[str, Any]:
        """The entry as TF Serving's REST status route writes it."""
        return {
            "version": str(self.version),
            "state": self.state,
            "status": {"error_code": self.error_code, "error_message": self.error_message},
        }


class ServedVersion:
    """A loaded version: its session model and one batcher per signature."""

    def __init__(
        self,
        name: str,
        version: int,
        model: SessionModel,
        executor: concurrent.futures.Executor,
        options: BatchingOptions,
    ) -> None:
        self.name = name
        self.version = version
        self.model = model
        self.inflight = 0
        self.batchers = {}
        for signature in model.signature_defs:
            infos = list(model.inputs[signature].values()) + list(model.outputs[signature].values())
            batchable = bool(model.inputs[signature]) and all(
                info.batched and None not in info.shape[1:] for info in infos
            )
            self.batchers[signature] = Batcher(
                lambda feeds, s=signature: model.run(s, feeds), executor, options, batchable
            )

    @contextlib.contextmanager
    def hold(self) -> Iterator[ServedVersion]:
        """Keeps this version loaded while a request uses it (a swap waits for it)."""
        self.inflight += 1
        try:
            yield self
        finally:
            self.inflight -= 1

    async def predict(
        self, signature: str, feeds: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Runs checked `feeds` through `signature` (batched with other requests)."""
        try:
            return await self.batchers[signature].submit(feeds)
        except ServingError:
            raise
        except Exception as e:
            # Inputs were checked, so this is an error inside the model (e.g. a
            # failed assertion on values): the client's argument, as TF Serving says.
            raise ServingError(Code.INVALID_ARGUMENT, _model_error(e)) from e

    def warm_up(self) -> None:
        """Runs each batchable signature once so the first request is not slow."""
        for signature, inputs in self.model.inputs.items():
            if self.batchers[signature]._batchable:
                self.model.run(signature, {k: sample_input(v, 1) for k, v in inputs.items()})


Fingerprint = tuple[tuple[str, int, int, int], ...]


def fingerprint(path: str) -> Fingerprint:
    """(relative path, size, mtime_ns, inode) of every file under a version directory.

    Any change to the SavedModel's files (a copy completing, a file replaced by
    a rename, even with its mtime preserved) changes it. Files that vanish
    while it is computed are left out; a missing directory gives ().
    """
    entries = []
    for root, _dirs, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            try:
                st = os.stat(full)
            except OSError:
                continue
            entries.append((os.path.relpath(full, path), st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(sorted(entries))


@dataclasses.dataclass
class _Failure:
    """A version whose last load failed: the files it failed on and the attempts on them."""

    fingerprint: Fingerprint
    attempts: int  # failed loads of these files (the first load plus retries)
    last_attempt: float  # time.monotonic() when the last one failed


class _Model:
    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self.served: dict[int, ServedVersion] = {}
        self.status: dict[int, VersionStatus] = {}
        self.failed: dict[int, _Failure] = {}
        self.load_failures = 0  # failed loads so far (each retry counts)

    def without_paths(self, text: str) -> str:
        """`text` with this model's base path replaced by its name (errors go to clients)."""
        return text.replace(self.config.base_path, f"<{self.config.name}>")


class ModelRegistry:
    """The models a server serves (call its coroutines from one event loop).

    Args:
        configs: the models.
        batching: `BatchingOptions` for every signature.
        run_executor: threads for model calls.
        load_executor: a thread for loading and unloading versions.
        max_num_load_retries: how many times a version that failed to load is
            retried while its files stay the same. Default 5, as TF Serving.
        load_retry_interval: seconds between those retries. Default 60, as
            TF Serving. A version whose files change is retried on the next poll.
        polls: False when the base paths are polled only once (a server with
            `poll_interval=0`): nothing is retried then, and the log says so.
            Default True.
    """

    def __init__(
        self,
        configs: list[ModelConfig],
        batching: BatchingOptions,
        run_executor: concurrent.futures.Executor,
        load_executor: concurrent.futures.Executor,
        max_num_load_retries: int = 5,
        load_retry_interval: float = 60.0,
        polls: bool = True,
    ) -> None:
        self._models = {c.name: _Model(c) for c in configs}
        self._batching = batching
        self._run_executor = run_executor
        self._load_executor = load_executor
        self._max_num_load_retries = max_num_load_retries
        self._load_retry_interval = load_retry_interval
        self._polls = polls
        self._unloading: set[asyncio.Task] = set()

    @property
    def names(self) -> list[str]:
        """The served models' names, sorted."""
        return sorted(self._models)

    def __contains__(self, name: object) -> bool:
        return name in self._models

    def loaded_versions(self) -> dict[str, int]:
        """{model name: number of AVAILABLE versions}."""
        return {name: len(m.served) for name, m in self._models.items()}

    def load_failures(self) -> dict[str, int]:
        """{model name: version loads that failed so far}."""
        return {name: m.load_failures for name, m in self._models.items()}

    async def refresh(self) -> None:
        """One poll: load newly wanted versions, then unload unwanted ones."""
        for model in self._models.values():
            await self._refresh_model(model)

    async def _refresh_model(self, model: _Model) -> None:
        loop = asyncio.get_running_loop()
        base_path = model.config.base_path
        available = await loop.run_in_executor(self._load_executor, list_versions, base_path)
        for version in set(model.failed) - set(available):
            del model.failed[version]  # gone from disk: if it comes back, it is new
        wanted = model.config.wanted(available)
        for version in wanted:
            if version in model.served:
                continue
            path = os.path.join(base_path, str(version))
            files = await loop.run_in_executor(self._load_executor, fingerprint, path)
            if version in model.failed and not self._should_retry(model.failed[version], files):
                continue
            await self._load(model, version, files)
        if not any(v in model.served for v in wanted):
            return  # keep serving what we have until a wanted version is available
        for version in sorted(set(model.served) - set(wanted)):
            served = model.served.pop(version)
            model.status[version].state = "UNLOADING"
            task = loop.create_task(self._unload(model, served))
            self._unloading.add(task)
            task.add_done_callback(self._unloading.discard)

    def _should_retry(self, failure: _Failure, files: Fingerprint) -> bool:
        """Retry a failed version now? Yes if its files changed, or once per interval
        while retries are left."""
        if files != failure.fingerprint:
            return True
        return (
            failure.attempts <= self._max_num_load_retries
            and time.monotonic() - failure.last_attempt >= self._load_retry_interval
        )

    async def _load(self, model: _Model, version: int, files: Fingerprint) -> None:
        name = model.config.name
        path = os.path.join(model.config.base_path, str(version))
        model.status[version] = VersionStatus(version, "LOADING")
        loop = asyncio.get_running_loop()

        def load() -> ServedVersion:
            session_model = SessionModel(path)
            try:
                served = ServedVersion(
                    name, version, session_model, self._run_executor, self._batching
                )
                served.warm_up()
            except BaseException:
                session_model.close()
                raise
            return served

        try:
            served = await loop.run_in_executor(self._load_executor, load)
        except Exception as e:
            previous = model.failed.get(version)
            attempts = 1
            if previous is not None and previous.fingerprint == files:
                attempts = previous.attempts + 1
            model.failed[version] = _Failure(files, attempts, time.monotonic())
            model.load_failures += 1
            model.status[version] = VersionStatus(
                version, "END", "UNKNOWN", model.without_paths(_load_error_text(e))
            )
            retries_left = self._max_num_load_retries - (attempts - 1)
            if not self._polls:
                then = "not retried (the base path is polled only once: poll interval 0)"
            elif retries_left > 0:
                then = (
                    f"retrying when its files change or in {self._load_retry_interval:g} s "
                    f"({retries_left} retries left)"
                )
            else:
                then = "retrying only when its files change"
            logger.error(
                "Model %s version %d failed to load (attempt %d); %s: %s",
                name,
                version,
                attempts,
                then,
                _load_error_text(e),
            )
            return
        model.failed.pop(version, None)
        model.served[version] = served
        model.status[version] = VersionStatus(version, "AVAILABLE")
        logger.info("Model %s version %d is available", name, version)

    async def _unload(self, model: _Model, served: ServedVersion) -> None:
        while served.inflight:
            await asyncio.sleep(0.005)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._load_executor, served.model.close)
        model.status[served.version].state = "END"
        logger.info("Model %s version %d unloaded", model.config.name, served.version)

    async def watch(self, poll_interval: float) -> None:
        """Refreshes forever, every `poll_interval` seconds (cancel to stop)."""
        while True:
            try:
                await self.refresh()
            except Exception:
                logger.exception("Version watcher poll failed; retrying")
            await asyncio.sleep(poll_interval)

    async def close(self) -> None:
        """Unloads every version."""
        for task in list(self._unloading):
            await task
        for model in self._models.values():
            for served in model.served.values():
                served.model.close()
            model.served.clear()

    def _model(self, name: str) -> _Model:
        model = self._models.get(name)
        if model is None:
            raise ServingError(
                Code.NOT_FOUND,
                f"Servable not found for request: Latest({name}). Served models: "
                f"{self.names}.{did_you_mean(name, self._models)}",
            )
        return model

    def resolve(
        self, name: str, version: int | None = None, label: str | None = None
    ) -> ServedVersion:
        """The version a request for (name, version or label, or latest) runs on."""
        model = self._model(name)
        if label is not None:
            version = _label_version(model, name, label)
        if version is not None:
            served = model.served.get(version)
            if served is None:
                raise ServingError(
                    Code.NOT_FOUND,
                    f"Servable not found for request: Specific({name}, {version}). Available "
                    f"versions: {sorted(model.served)}.",
                )
            return served
        if not model.served:
            raise ServingError(
                Code.NOT_FOUND,
                f"Servable not found for request: Latest({name}). Model {name} has no "
                "loaded version yet: export one into its base path with tfrl.export().",
            )
        return model.served[max(model.served)]

    def status(self, name: str, version: int | None = None, label: str | None = None) -> list[dict]:
        """`model_version_status` entries for a model, or one version/label of it."""
        model = self._model(name)
        if label is not None:
            version = _label_version(model, name, label)
        if version is not None:
            if version not in model.status:
                raise ServingError(
                    Code.NOT_FOUND, f"Could not find version {version} of model {name}."
                )
            return [model.status[version].to_json()]
        if not model.status:
            raise ServingError(Code.NOT_FOUND, f"Could not find any versions of model {name}.")
        return [model.status[v].to_json() for v in sorted(model.status, reverse=True)]


def _model_error(e: BaseException) -> str:
    """A model call's error for the client: a `tf.debugging.Assert`'s own message
    (the model's author wrote it for them), else "Model call failed: <first line>"."""
    line = _first_line(e)
    # "assertion failed: [text] [value]..." (eager calls add " [Op:Assert] ..."):
    # the Assert's data items, joined as they read ("max_length must be ...; got 0").
    asserted = re.match(r"assertion failed: \[(.*)\]", re.sub(r"\s*\[Op:.*$", "", line))
    if asserted is None:
        return f"Model call failed: {line}"
    # The Assert's summary escapes quotes and backslashes (C style); undo that.
    text = re.sub(r"\\(['\"\\])", r"\1", asserted.group(1))
    return " ".join(text.split("] ["))


def _load_error_text(e: BaseException) -> str:
    """A load error as a person reads it: TF writes paths as bytes reprs
    (`Cannot parse file b'.../saved_model.pb': Truncated message..`)."""
    text = re.sub(r"\bb'([^']*)'", r"'\1'", str(e).strip())
    return re.sub(r"\.\.$", ".", text)


def _first_line(e: BaseException) -> str:
    # TF's graph errors open with a generic header; the message (e.g. a failed
    # assertion's text) is on the next non-empty line.
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    if len(lines) > 1 and lines[0] == "Graph execution error:":
        lines = lines[1:]
    return lines[0] if lines else type(e).__name__


def _label_version(model: _Model, name: str, label: str) -> int:
    """The version `label` names. An unknown label is a bad argument (as in TF
    Serving: INVALID_ARGUMENT, HTTP 400), not a missing servable."""
    if label not in model.config.labels:
        raise ServingError(
            Code.INVALID_ARGUMENT,
            f"Unrecognized servable version label: {label} for model {name}; known "
            f"labels: {sorted(model.config.labels)}.",
        )
    return model.config.labels[label]
