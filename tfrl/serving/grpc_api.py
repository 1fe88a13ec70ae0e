"""TF Serving's gRPC API (`tensorflow.serving.PredictionService` and `ModelService`).

Served beside the REST API over the same registry, batching and hot swap:

    Predict            run a signature (by version, by label, or the latest)
    GetModelMetadata   signature defs (metadata_field "signature_def")
    GetModelStatus     version states, as GET /v1/models/<name>
    Classify, Regress, MultiInference, HandleReloadConfigRequest   UNIMPLEMENTED

Clients use `tensorflow-serving-api` as with TF Serving:

    channel = grpc.insecure_channel("127.0.0.1:8500")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "cartpole_dqn"
    request.inputs["observation"].CopyFrom(tf.make_tensor_proto(obs))
    response = stub.Predict(request, timeout=5)

Errors carry TF Serving's status codes: INVALID_ARGUMENT (bad input),
NOT_FOUND (unknown model, version or label), FAILED_PRECONDITION (unknown
signature), RESOURCE_EXHAUSTED (batch queue full).

Predict answers with numeric outputs are written straight to protobuf's wire
format (`encode_predict_response`) instead of through `PredictResponse`: the
protobuf runtime TensorFlow 2.15 gets on Python 3.11 (3.20.x) is pure Python,
where building and serializing a two-output response costs ~0.2-0.5 ms, more
than a small model's call. Clients parse the bytes with the usual messages.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow.core.framework import tensor_shape_pb2
from tensorflow.core.protobuf import error_codes_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from tfrl.serving.codec import check_input, signature_inputs
from tfrl.serving.metrics import UNKNOWN_MODEL, Metrics
from tfrl.serving.registry import ModelRegistry, ServedVersion
from tfrl.serving.status import Code, ServingError

__all__ = ["encode_predict_response", "make_grpc_server"]

logger = logging.getLogger(__name__)

INLINE_REQUEST_BYTES = 16 * 1024  # Predict requests up to this size are parsed on the loop

_GRPC_CODE = {
    Code.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    Code.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    Code.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Code.PAYLOAD_TOO_LARGE: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Code.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Code.INTERNAL: grpc.StatusCode.INTERNAL,
    Code.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    Code.METHOD_NOT_ALLOWED: grpc.StatusCode.UNIMPLEMENTED,
}


def _spec_of(model_spec: Any) -> tuple[str, int | None, str | None]:
    version = model_spec.version.value if model_spec.HasField("version") else None
    return model_spec.name, version, model_spec.version_label or None


class _Calls:
    """Shared error handling and metrics of every RPC."""

    def __init__(self, registry: ModelRegistry, metrics: Metrics | None) -> None:
        self.registry = registry
        self.metrics = metrics

    async def run(
        self,
        api: str,
        name: str,
        context: grpc.aio.ServicerContext,
        body: Callable[[list[str]], Any],
    ) -> Any:
        """Awaits `body(version_label_slot)`; maps ServingError to a gRPC status."""
        start = time.perf_counter()
        version = [""]
        code = "OK"
        try:
            return await body(version)
        except ServingError as e:
            code = e.code.name
            await context.abort(_GRPC_CODE[e.code], e.message)
        except Exception as e:  # a bug in the server, not in the request
            code = "INTERNAL"
            logger.exception("Internal error in %s for model %s", api, name)
            await context.abort(grpc.StatusCode.INTERNAL, f"Internal error: {type(e).__name__}")
        finally:
            if self.metrics is not None:
                model = name if name in self.registry else UNKNOWN_MODEL
                self.metrics.observe(
                    model, version[0], api, "GRPC", code, time.perf_counter() - start
                )


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """TF Serving's `tensorflow.serving.PredictionService` over a `ModelRegistry`.

    Predict and GetModelMetadata are served; Classify, Regress and MultiInference
    are answered UNIMPLEMENTED (exports carry predict signatures only).
    """

    def __init__(self, calls: _Calls, max_rows: int | None) -> None:
        self._calls = calls
        self._max_rows = max_rows
        # Protobuf's runtime here is pure Python: parsing a big request (e.g. 400,000
        # float_val values) takes seconds of Python code, which a thread interleaves
        # with the event loop (the GIL switches every few ms) instead of stalling it.
        self._parser = concurrent.futures.ThreadPoolExecutor(1, "tfrl-grpc-parse")

    async def Predict(self, request: bytes, context: Any) -> Any:
        """Runs a signature (default `serving_default`) of the version the request's
        model_spec names (by version, by label, or the latest), batched with other
        requests; returns the outputs in `output_filter` (default all). `request` is
        a serialized `PredictRequest`: large ones are parsed and checked off the loop."""
        off_loop = len(request) > INLINE_REQUEST_BYTES
        loop = asyncio.get_running_loop()
        try:
            if off_loop:
                request = await loop.run_in_executor(self._parser, _parse_predict, request)
            else:
                request = _parse_predict(request)
        except DecodeError:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "The request is not a valid PredictRequest."
            )
        name, version, label = _spec_of(request.model_spec)

        async def body(slot: list[str]) -> predict_pb2.PredictResponse:
            served = self._calls.registry.resolve(name, version, label)
            slot[0] = str(served.version)
            signature = request.model_spec.signature_name or "serving_default"
            with served.hold():
                args = (served, signature, request, self._max_rows)
                if off_loop:
                    feeds = await loop.run_in_executor(self._parser, _feeds, *args)
                else:
                    feeds = _feeds(*args)
                outputs = await served.predict(signature, feeds)
            wanted = list(request.output_filter) or sorted(outputs)
            unknown = sorted(set(wanted) - set(outputs))
            if unknown:
                raise ServingError(
                    Code.INVALID_ARGUMENT,
                    f"output_filter names {unknown}, not outputs of signature {signature!r}: "
                    f"{sorted(outputs)}.",
                )
            chosen = {key: outputs[key] for key in wanted}
            encoded = encode_predict_response(name, served.version, signature, chosen)
            if encoded is not None:
                return encoded
            response = predict_pb2.PredictResponse()
            response.model_spec.name = name
            response.model_spec.version.value = served.version
            response.model_spec.signature_name = signature
            for key, value in chosen.items():
                _fill_tensor(response.outputs[key], value)
            return response

        return await self._calls.run("predict", name, context, body)

    async def GetModelMetadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: Any
    ) -> Any:
        """The version's signature defs, packed as TF Serving packs them
        (`metadata["signature_def"]` holds a `SignatureDefMap`)."""
        name, version, label = _spec_of(request.model_spec)

        async def body(slot: list[str]) -> get_model_metadata_pb2.GetModelMetadataResponse:
            fields = list(request.metadata_field)
            if fields != ["signature_def"]:
                raise ServingError(
                    Code.INVALID_ARGUMENT,
                    f"metadata_field {fields}: only ['signature_def'] is supported.",
                )
            served = self._calls.registry.resolve(name, version, label)
            slot[0] = str(served.version)
            signature_map = get_model_metadata_pb2.SignatureDefMap()
            for key, sig in served.model.all_signature_defs.items():
                signature_map.signature_def[key].CopyFrom(sig)
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            response.model_spec.name = name
            response.model_spec.version.value = served.version
            response.metadata["signature_def"].Pack(signature_map)
            return response

        return await self._calls.run("metadata", name, context, body)

    async def _unimplemented(self, what: str, context: Any) -> None:
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            f"{what} is not supported by tfrl serve: exports carry predict signatures; use "
            "Predict (or TensorFlow Serving for classify/regress signatures).",
        )

    async def Classify(self, request: Any, context: Any) -> Any:
        """Answered UNIMPLEMENTED, with a message."""
        await self._unimplemented("Classify", context)

    async def Regress(self, request: Any, context: Any) -> Any:
        """Answered UNIMPLEMENTED, with a message."""
        await self._unimplemented("Regress", context)

    async def MultiInference(self, request: Any, context: Any) -> Any:
        """Answered UNIMPLEMENTED, with a message."""
        await self._unimplemented("MultiInference", context)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """TF Serving's `tensorflow.serving.ModelService`: version status (no config reload)."""

    def __init__(self, calls: _Calls) -> None:
        self._calls = calls

    async def GetModelStatus(
        self, request: get_model_status_pb2.GetModelStatusRequest, context: Any
    ) -> Any:
        """The status of every version of a model (or of the one named), as the REST
        status route reports it."""
        name, version, label = _spec_of(request.model_spec)

        async def body(slot: list[str]) -> get_model_status_pb2.GetModelStatusResponse:
            response = get_model_status_pb2.GetModelStatusResponse()
            for entry in self._calls.registry.status(name, version, label):
                status = response.model_version_status.add()
                status.version = int(entry["version"])
                status.state = get_model_status_pb2.ModelVersionStatus.State.Value(entry["state"])
                status.status.error_code = error_codes_pb2.Code.Value(entry["status"]["error_code"])
                status.status.error_message = entry["status"]["error_message"]
            return response

        return await self._calls.run("status", name, context, body)

    async def HandleReloadConfigRequest(self, request: Any, context: Any) -> Any:
        """Answered UNIMPLEMENTED: restart the server with the new config instead."""
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            "HandleReloadConfigRequest is not supported by tfrl serve; restart it with the "
            "new --model_config_file.",
        )


def _feeds(
    served: ServedVersion, signature: str, request: predict_pb2.PredictRequest, max_rows: int | None
) -> dict[str, np.ndarray]:
    """The request's input tensors as arrays, checked against the signature."""
    specs = signature_inputs(
        served.model.inputs, signature, f"{served.name} version {served.version}"
    )
    got, names = set(request.inputs), sorted(specs)
    missing, unknown = sorted(set(names) - got), sorted(got - set(names))
    if missing or unknown:
        raise ServingError(
            Code.INVALID_ARGUMENT,
            f"Input names do not match signature {signature!r}: missing {missing}, unknown "
            f"{unknown}; it takes {names}.",
        )
    feeds = {}
    for key in names:
        proto, spec = request.inputs[key], specs[key]
        if proto.dtype != spec.dtype.as_datatype_enum:
            given = tf.dtypes.as_dtype(proto.dtype).name if proto.dtype else "no dtype"
            raise ServingError(
                Code.INVALID_ARGUMENT,
                f"Input {key!r} must be {spec.dtype.name}, but {given} was sent; e.g. "
                f"tf.make_tensor_proto(x, dtype=tf.{spec.dtype.name}).",
            )
        try:
            array = _to_ndarray(proto, spec.dtype)
        except (ValueError, TypeError) as e:
            raise ServingError(
                Code.INVALID_ARGUMENT, f"Input {key!r} is not a valid TensorProto: {e}"
            ) from None
        check_input(key, array, spec, "columnar", max_rows)
        feeds[key] = array
    return feeds


def _to_ndarray(proto: Any, dtype: tf.DType) -> np.ndarray:
    """A TensorProto's values; numeric `tensor_content` read without a copy loop."""
    if proto.tensor_content and dtype != tf.string:
        shape = [d.size for d in proto.tensor_shape.dim]
        array = np.frombuffer(proto.tensor_content, dtype=dtype.as_numpy_dtype)
        return array.reshape(shape)
    return tf.make_ndarray(proto)


def _fill_tensor(proto: Any, array: np.ndarray) -> None:
    """Writes `array` into a TensorProto (fast path for numeric arrays)."""
    array = np.asarray(array)
    if array.dtype.kind in "biuf":
        proto.dtype = tf.dtypes.as_dtype(array.dtype).as_datatype_enum
        for size in array.shape:
            proto.tensor_shape.dim.add().size = size
        proto.tensor_content = np.ascontiguousarray(array).tobytes()
    else:
        proto.CopyFrom(tf.make_tensor_proto(array))


# -- Predict answers in protobuf's wire format ----------------------------------------

_VARINT, _LENGTH = 0, 2  # wire types
_DATATYPE_ENUM: dict[np.dtype, int] = {}  # numpy dtype -> tensorflow.DataType value


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 fields: ten bytes of two's complement
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (string, bytes or message)."""
    return _varint(number << 3 | _LENGTH) + _varint(len(payload)) + payload


def _varint_field(number: int, value: int) -> bytes:
    return _varint(number << 3 | _VARINT) + _varint(value) if value else b""


def _tensor_bytes(array: np.ndarray) -> bytes:
    """A numeric array as a serialized TensorProto: dtype, shape, tensor_content."""
    enum = _DATATYPE_ENUM.get(array.dtype)
    if enum is None:
        enum = _DATATYPE_ENUM[array.dtype] = tf.dtypes.as_dtype(array.dtype).as_datatype_enum
    shape = b"".join(_field(2, _varint_field(1, size)) for size in array.shape)
    content = np.ascontiguousarray(array).tobytes()
    shape_field = _field(2, shape) if shape else b""  # a scalar has no tensor_shape
    return _varint_field(1, enum) + shape_field + (_field(4, content) if content else b"")


def encode_predict_response(
    name: str, version: int, signature: str, outputs: dict[str, np.ndarray]
) -> bytes | None:
    """A serialized `PredictResponse` (model_spec and outputs as `tensor_content`),
    written directly; None when an output is not numeric (strings go through the
    protobuf messages). Parses to the same message as building it field by field."""
    arrays = [(key, np.asarray(value)) for key, value in outputs.items()]
    if any(a.dtype.kind not in "biuf" or a.dtype.byteorder == ">" for _, a in arrays):
        return None
    spec = (
        _field(1, name.encode())
        + _field(2, _varint_field(1, version))
        + _field(3, signature.encode())
    )
    entries = b"".join(
        _field(1, _field(1, key.encode()) + _field(2, _tensor_bytes(a))) for key, a in arrays
    )
    return entries + _field(2, spec)


def _serialize_predict_response(response: bytes | predict_pb2.PredictResponse) -> bytes:
    return response if isinstance(response, bytes) else response.SerializeToString()


def _prediction_handlers(servicer: PredictionService) -> grpc.GenericRpcHandler:
    """`add_PredictionServiceServicer_to_server`'s handlers, but Predict takes the
    request's bytes (parsed off the loop when large) and may answer with bytes
    already serialized (`encode_predict_response`)."""
    methods = {
        "Classify": (classification_pb2.ClassificationRequest, None),
        "Regress": (regression_pb2.RegressionRequest, None),
        "Predict": (predict_pb2.PredictRequest, _serialize_predict_response),
        "MultiInference": (inference_pb2.MultiInferenceRequest, None),
        "GetModelMetadata": (get_model_metadata_pb2.GetModelMetadataRequest, None),
    }
    handlers = {
        method: grpc.unary_unary_rpc_method_handler(
            getattr(servicer, method),
            request_deserializer=None if method == "Predict" else request.FromString,
            response_serializer=serialize or (lambda message: message.SerializeToString()),
        )
        for method, (request, serialize) in methods.items()
    }
    return grpc.method_handlers_generic_handler("tensorflow.serving.PredictionService", handlers)


def make_grpc_server(
    registry: ModelRegistry,
    metrics: Metrics | None,
    max_message_bytes: int,
    max_rows: int | None,
) -> grpc.aio.Server:
    """A `grpc.aio` server with both services (add a port, then start it)."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 0),
        ]
    )
    calls = _Calls(registry, metrics)
    server.add_generic_rpc_handlers((_prediction_handlers(PredictionService(calls, max_rows)),))
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(calls), server)
    return server


# -- Predict requests: packed float values read as bytes -----------------------------
#
# Protobuf's pure-Python runtime decodes a packed `float_val` value by value (~1.4 s
# for 400,000 values). A DT_FLOAT/DT_DOUBLE tensor whose packed values match its shape
# holds exactly the bytes `tensor_content` would, so those fields are moved there
# before parsing (a slice, then `np.frombuffer` in `_to_ndarray`). Anything else is
# left for protobuf to parse as sent.

_FIXED64, _FIXED32 = 1, 5
_PACKED_FLOATS = {1: (5, 4), 2: (6, 8)}  # DataType -> (field of its values, bytes each)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise DecodeError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise DecodeError("varint too long")


def _scan(data: bytes) -> list[tuple[int, int, int, int, int]]:
    """A message's fields as (number, wire type, field start, payload start, end);
    raises DecodeError on malformed bytes."""
    fields, pos = [], 0
    while pos < len(data):
        begin = pos
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            start = pos
            _, pos = _read_varint(data, pos)
        elif wire == _LENGTH:
            size, start = _read_varint(data, pos)
            pos = start + size
        elif wire in (_FIXED64, _FIXED32):
            start, pos = pos, pos + (8 if wire == _FIXED64 else 4)
        else:
            raise DecodeError(f"unsupported wire type {wire}")
        if pos > len(data) or number == 0:
            raise DecodeError("truncated message")
        fields.append((number, wire, begin, start, pos))
    return fields


def _with_float_content(tensor: bytes) -> bytes | None:
    """The TensorProto with its packed float_val/double_val moved to tensor_content,
    or None when that does not apply (other dtypes, unpacked values, a count that
    does not match the shape, content already there)."""
    fields = _scan(tensor)
    dtypes = [_read_varint(tensor, s)[0] for n, w, _, s, _ in fields if n == 1 and w == _VARINT]
    if not dtypes or dtypes[-1] not in _PACKED_FLOATS or any(n == 4 for n, *_ in fields):
        return None
    values_field, width = _PACKED_FLOATS[dtypes[-1]]
    values = [(w, s, e) for n, w, _, s, e in fields if n == values_field]
    if not values or any(w != _LENGTH for w, _, _ in values):
        return None
    content = b"".join(tensor[s:e] for _, s, e in values)
    shape = tensor_shape_pb2.TensorShapeProto()
    for n, w, _, s, e in fields:
        if n == 2 and w == _LENGTH:
            shape.MergeFromString(tensor[s:e])
    if shape.unknown_rank or any(d.size < 0 for d in shape.dim):
        return None
    if len(content) != width * int(np.prod([d.size for d in shape.dim])):
        return None  # left to protobuf's own reading (e.g. one value filling the shape)
    kept = b"".join(tensor[b:e] for n, _, b, _, e in fields if n != values_field)
    return kept + _field(4, content)


def _pack_float_inputs(data: bytes) -> bytes:
    """The PredictRequest bytes with each input's packed floats in tensor_content."""
    out, changed = [], False
    for number, wire, begin, start, end in _scan(data):
        tensor = None
        if number == 2 and wire == _LENGTH:  # an `inputs` map entry: key 1, value 2
            entry = _scan(data[start:end])
            values = [(s, e) for n, w, _, s, e in entry if n == 2 and w == _LENGTH]
            if len(values) == 1:
                tensor = _with_float_content(data[start + values[0][0] : start + values[0][1]])
        if tensor is None:
            out.append(data[begin:end])
            continue
        key = b"".join(data[start + b : start + e] for n, _, b, _, e in entry if n != 2)
        out.append(_field(2, key + _field(2, tensor)))
        changed = True
    return b"".join(out) if changed else data


def _parse_predict(data: bytes) -> predict_pb2.PredictRequest:
    """A serialized PredictRequest, parsed; large packed float inputs are moved to
    tensor_content first (see above)."""
    if len(data) > INLINE_REQUEST_BYTES:
        data = _pack_float_inputs(data)
    return predict_pb2.PredictRequest.FromString(data)
