"""A SavedModel loaded the way TensorFlow Serving loads it.

TF Serving (and `saved_model_cli run`) import the MetaGraph tagged `serve`
into a TF1 graph, restore the variables in a session and feed/fetch the
tensors each `SignatureDef` names. `SessionModel` does the same, so a model
that works here works there, and it is also the fastest way to call a
signature from Python (no eager tensors are built per call).
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow.python.saved_model import loader_impl

from tfrl.errors import ExportError

__all__ = ["SERVE_TAG", "SessionModel", "TensorInfo"]

SERVE_TAG = "serve"


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """One input or output of a signature.

    Attributes:
        tensor_name: the graph tensor, e.g. 'serving_default_observation:0'.
        dtype: its TensorFlow dtype.
        shape: its shape, None for unknown dimensions; None for unknown rank.
    """

    tensor_name: str
    dtype: tf.DType
    shape: tuple[int | None, ...] | None

    @classmethod
    def from_proto(cls, info: meta_graph_pb2.TensorInfo) -> TensorInfo:
        if info.tensor_shape.unknown_rank:
            shape = None
        else:
            shape = tuple(d.size if d.size >= 0 else None for d in info.tensor_shape.dim)
        return cls(info.name, tf.dtypes.as_dtype(info.dtype), shape)

    @property
    def batched(self) -> bool:
        """True when dimension 0 is an open batch dimension."""
        return bool(self.shape) and self.shape[0] is None


class SessionModel:
    """A SavedModel version in its own graph and session (thread-safe to run).

    Args:
        path: the version directory (holding `saved_model.pb` and `variables/`).
        tags: MetaGraph tags to load. Default ('serve',), like TF Serving.

    Raises:
        ExportError: the directory holds no SavedModel, or it does not load.
    """

    def __init__(self, path: str, tags: tuple[str, ...] = (SERVE_TAG,)) -> None:
        self.path = os.path.abspath(path)
        if not os.path.isdir(self.path):
            raise ExportError(f"{self.path} is not a directory; pass a SavedModel version dir.")
        if not any(
            os.path.isfile(os.path.join(self.path, f))
            for f in ("saved_model.pb", "saved_model.pbtxt")
        ):
            raise ExportError(
                f"{self.path} has no saved_model.pb: it is not a SavedModel. Export one with "
                "tfrl.export(agent, base_path) and point at base_path/<version>."
            )
        self._graph = tf.Graph()
        self._session = tf.compat.v1.Session(graph=self._graph)
        try:
            meta_graph = loader_impl.SavedModelLoader(self.path).load(self._session, list(tags))
        except Exception as e:  # TF raises many types for a bad SavedModel.
            self._session.close()
            raise ExportError(
                f"TF Serving's loader cannot load {self.path} with tags {list(tags)}: {e}"
            ) from e
        # Every SignatureDef, as TF Serving's metadata lists them ...
        self.all_signature_defs: dict[str, meta_graph_pb2.SignatureDef] = dict(
            meta_graph.signature_def
        )
        # ... and those a request can run ('__saved_model_init_op' is internal).
        self.signature_defs = {
            k: v for k, v in self.all_signature_defs.items() if not k.startswith("__")
        }
        self.inputs = {
            name: {k: TensorInfo.from_proto(v) for k, v in sig.inputs.items()}
            for name, sig in self.signature_defs.items()
        }
        self.outputs = {
            name: {k: TensorInfo.from_proto(v) for k, v in sig.outputs.items()}
            for name, sig in self.signature_defs.items()
        }
        self._callables: dict[str, Any] = {}
        self._lock = threading.Lock()

    def run(self, signature: str, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs `signature` on named input arrays; returns its named outputs.

        Inputs must already match the signature (names, dtypes, shapes); the
        server's codec checks them first.
        """
        fn = self._callables.get(signature)
        if fn is None:
            fn = self._make_callable(signature)
        input_names, output_names, call = fn
        values = call(*[feeds[name] for name in input_names])
        return dict(zip(output_names, values))

    def _make_callable(self, signature: str) -> tuple[list[str], list[str], Any]:
        if signature not in self.signature_defs:
            raise KeyError(signature)
        with self._lock:
            inputs = sorted(self.inputs[signature])
            outputs = sorted(self.outputs[signature])
            with self._graph.as_default():
                call = self._session.make_callable(
                    [self.outputs[signature][n].tensor_name for n in outputs],
                    [self.inputs[signature][n].tensor_name for n in inputs],
                )
            entry = (inputs, outputs, call)
            self._callables[signature] = entry
            return entry

    def close(self) -> None:
        """Releases the session (the model's memory)."""
        self._session.close()

    def __repr__(self) -> str:
        return f"SessionModel({self.path!r}, signatures={sorted(self.signature_defs)})"
