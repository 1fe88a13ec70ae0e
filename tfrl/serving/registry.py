"""Served models: their loaded versions, version status and the version watcher.

`ModelRegistry.refresh()` does what TF Serving's file-system poller and
availability-preserving loader do: list the integer version directories
under each base path, load the versions the model's policy wants (latest by
default), and only once a wanted version is AVAILABLE unload the versions no
longer wanted. A request holds its version until it is answered, and a
version's session closes only when no request holds it, so swaps drop
nothing. `watch()` runs `refresh()` every `poll_interval` seconds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import os
from typing import Any

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

    def warm_up(self) -> None:
        """Runs each batchable signature once so the first request is not slow."""
        for signature, inputs in self.model.inputs.items():
            if self.batchers[signature]._batchable:
                self.model.run(signature, {k: sample_input(v, 1) for k, v in inputs.items()})


class _Model:
    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self.served: dict[int, ServedVersion] = {}
        self.status: dict[int, VersionStatus] = {}
        self.failed: set[int] = set()


class ModelRegistry:
    """The models a server serves (call its coroutines from one event loop).

    Args:
        configs: the models.
        batching: `BatchingOptions` for every signature.
        run_executor: threads for model calls.
        load_executor: a thread for loading and unloading versions.
    """

    def __init__(
        self,
        configs: list[ModelConfig],
        batching: BatchingOptions,
        run_executor: concurrent.futures.Executor,
        load_executor: concurrent.futures.Executor,
    ) -> None:
        self._models = {c.name: _Model(c) for c in configs}
        self._batching = batching
        self._run_executor = run_executor
        self._load_executor = load_executor
        self._unloading: set[asyncio.Task] = set()

    @property
    def names(self) -> list[str]:
        return sorted(self._models)

    async def refresh(self) -> None:
        """One poll: load newly wanted versions, then unload unwanted ones."""
        for model in self._models.values():
            await self._refresh_model(model)

    async def _refresh_model(self, model: _Model) -> None:
        loop = asyncio.get_running_loop()
        available = await loop.run_in_executor(
            self._load_executor, list_versions, model.config.base_path
        )
        wanted = model.config.wanted(available)
        for version in wanted:
            if version in model.served or version in model.failed:
                continue
            await self._load(model, version)
        if not any(v in model.served for v in wanted):
            return  # keep serving what we have until a wanted version is available
        for version in sorted(set(model.served) - set(wanted)):
            served = model.served.pop(version)
            model.status[version].state = "UNLOADING"
            task = loop.create_task(self._unload(model, served))
            self._unloading.add(task)
            task.add_done_callback(self._unloading.discard)

    async def _load(self, model: _Model, version: int) -> None:
        name = model.config.name
        path = os.path.join(model.config.base_path, str(version))
        model.status[version] = VersionStatus(version, "LOADING")
        loop = asyncio.get_running_loop()

        def load() -> ServedVersion:
            served = ServedVersion(
                name, version, SessionModel(path), self._run_executor, self._batching
            )
            served.warm_up()
            return served

        try:
            served = await loop.run_in_executor(self._load_executor, load)
        except Exception as e:
            model.failed.add(version)
            model.status[version] = VersionStatus(version, "END", "UNKNOWN", str(e))
            logger.error("Model %s version %d failed to load: %s", name, version, e)
            return
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
            if label not in model.config.labels:
                raise ServingError(
                    Code.NOT_FOUND,
                    f"Unrecognized servable version label: {label} for model {name}; known "
                    f"labels: {sorted(model.config.labels)}.",
                )
            version = model.config.labels[label]
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
                Code.UNAVAILABLE,
                f"Model {name} has no available version yet: no loadable integer version "
                f"directory under {model.config.base_path}. Export one with tfrl.export().",
            )
        return model.served[max(model.served)]

    def status(self, name: str, version: int | None = None, label: str | None = None) -> list[dict]:
        """`model_version_status` entries for a model, or one version/label of it."""
        model = self._model(name)
        if label is not None:
            if label not in model.config.labels:
                raise ServingError(
                    Code.NOT_FOUND,
                    f"Unrecognized servable version label: {label} for model {name}.",
                )
            version = model.config.labels[label]
        if version is not None:
            if version not in model.status:
                raise ServingError(
                    Code.NOT_FOUND, f"Could not find version {version} of model {name}."
                )
            return [model.status[version].to_json()]
        if not model.status:
            raise ServingError(Code.NOT_FOUND, f"Could not find any versions of model {name}.")
        return [model.status[v].to_json() for v in sorted(model.status, reverse=True)]
