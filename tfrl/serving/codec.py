"""TF Serving's REST JSON ⇄ numpy arrays, checked against a signature.

Requests: `{"signature_name": ..., "instances": [...]}` (row format: one
entry per example, stacked along a new dimension 0) or `{"inputs": ...}`
(columnar: whole tensors). With one input, entries/tensors may be bare
values; with several, objects keyed by input name. Answers mirror the
request: `{"predictions": [...]}` (one entry per example; a bare value when
the signature has one output, else an object) or `{"outputs": ...}` (a bare
tensor for one output, else an object).

Like TF Serving's JSON reader: `NaN`, `Infinity` and `-Infinity` are read as
floats; top-level keys other than these three are ignored; a string or bytes
value may be sent as `{"b64": "<base64>"}`, and string outputs whose name ends
in `_bytes` (or that are not UTF-8) are answered that way.

Everything a client can get wrong raises `ServingError(INVALID_ARGUMENT)`,
including bodies nested too deeply to read.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from tfrl.serving.status import Code, ServingError

if TYPE_CHECKING:  # the codec itself never imports TensorFlow (its workers start fast)
    from tfrl.export.session_model import TensorInfo

__all__ = [
    "PlainSpec",
    "PredictRequest",
    "decode_inputs",
    "decode_request",
    "encode_outputs",
    "parse_predict_request",
    "plain_signatures",
]

ROW, COLUMNAR = "row", "columnar"


@dataclasses.dataclass
class PredictRequest:
    """A parsed `:predict` body, not yet checked against a signature."""

    signature_name: str
    format: str  # ROW or COLUMNAR
    data: Any
    may_have_bools: bool = True  # numpy would silently read true/false as 1/0


@dataclasses.dataclass(frozen=True)
class PlainDType:
    """What the codec needs of a `tf.DType`, without TensorFlow (picklable to a worker
    that never imports it)."""

    name: str
    is_floating: bool
    is_integer: bool
    as_numpy_dtype: Any


@dataclasses.dataclass(frozen=True)
class PlainSpec:
    """A `TensorInfo` whose dtype is a `PlainDType` (same `shape` and `batched`)."""

    tensor_name: str
    dtype: PlainDType
    shape: tuple[int | None, ...] | None

    @property
    def batched(self) -> bool:
        """True when dimension 0 is an open batch dimension."""
        return bool(self.shape) and self.shape[0] is None


def plain_signatures(
    signatures: Mapping[str, Mapping[str, TensorInfo]],
) -> dict[str, dict[str, PlainSpec]]:
    """The signatures' input specs with TensorFlow-free dtypes, for a codec worker."""

    def plain(spec: TensorInfo) -> PlainSpec:
        d = spec.dtype
        dtype = PlainDType(d.name, d.is_floating, d.is_integer, d.as_numpy_dtype)
        return PlainSpec(spec.tensor_name, dtype, spec.shape)

    return {
        name: {key: plain(spec) for key, spec in specs.items()}
        for name, specs in signatures.items()
    }


def _invalid(message: str) -> ServingError:
    return ServingError(Code.INVALID_ARGUMENT, message)


def parse_predict_request(body: bytes) -> PredictRequest:
    """Parses and checks the top level of a `:predict` request body."""
    try:
        doc = json.loads(body)
    except RecursionError:
        raise _too_deep() from None
    except (ValueError, UnicodeDecodeError) as e:
        raise _invalid(f"JSON Parse error: {e}") from None
    if not isinstance(doc, dict):
        raise _invalid(
            f"JSON Value: {_brief(doc)} Is not object; send "
            '{"instances": [...]} or {"inputs": ...}.'
        )
    if "instances" in doc and "inputs" in doc:
        raise _invalid("Request contains both 'instances' and 'inputs'; send only one of them.")
    if "instances" not in doc and "inputs" not in doc:
        raise _invalid("Missing 'inputs' or 'instances' key; send one of them.")
    bools = b"true" in body or b"false" in body
    signature = doc.get("signature_name", "serving_default")
    if not isinstance(signature, str):
        raise _invalid(f"'signature_name' must be a string, got {_brief(signature)}.")
    if "instances" in doc:
        if not isinstance(doc["instances"], list):
            raise _invalid(
                f"Expecting 'instances' to be an list/array, got {_brief(doc['instances'])}."
            )
        return PredictRequest(signature, ROW, doc["instances"], bools)
    return PredictRequest(signature, COLUMNAR, doc["inputs"], bools)


def _too_deep() -> ServingError:
    return _invalid("JSON Parse error: the request is nested too deeply; send flat tensors.")


def _brief(value: Any) -> str:
    try:
        text = json.dumps(value)
    except RecursionError:
        return "(deeply nested value)"
    return text if len(text) <= 60 else text[:57] + "..."


def decode_inputs(
    request: PredictRequest, specs: Mapping[str, TensorInfo], max_rows: int | None = None
) -> dict[str, np.ndarray]:
    """The request's named input arrays, checked against the signature's `specs`.

    `max_rows` caps the examples in one request (dimension 0 of batched inputs).
    """
    names = sorted(specs)
    try:
        if request.format == ROW:
            if max_rows is not None and len(request.data) > max_rows:
                raise _too_many(len(request.data), max_rows)
            raw = _rows(request.data, names)
        else:
            raw = _columns(request.data, names)
        arrays = {
            name: _to_array(name, raw[name], specs[name], request.format, request.may_have_bools)
            for name in names
        }
    except RecursionError:
        raise _too_deep() from None
    if max_rows is not None:
        for name, array in arrays.items():
            if specs[name].batched and array.ndim and len(array) > max_rows:
                raise _too_many(len(array), max_rows)
    return arrays


def _too_many(rows: int, max_rows: int) -> ServingError:
    return _invalid(
        f"The request holds {rows} examples, more than the limit of {max_rows}; split it "
        "into smaller requests or raise --max_request_rows."
    )


def decode_request(
    body: bytes,
    signatures: Mapping[str, Mapping[str, TensorInfo]],
    servable: str,
    max_rows: int | None = None,
) -> tuple[str, str, dict[str, np.ndarray]]:
    """Parses and decodes a whole `:predict` body: (signature, format, input arrays).

    `signatures` maps each signature name to its input specs; `servable` names
    the model version in errors (e.g. "cartpole_dqn version 1"). Plain data in,
    plain data out, so a worker process can run it.
    """
    parsed = parse_predict_request(body)
    specs = signature_inputs(signatures, parsed.signature_name, servable)
    return parsed.signature_name, parsed.format, decode_inputs(parsed, specs, max_rows)


def signature_inputs(
    signatures: Mapping[str, Mapping[str, TensorInfo]], signature: str, servable: str
) -> Mapping[str, TensorInfo]:
    """The input specs of `signature`, or FAILED_PRECONDITION naming the known ones
    (REST and gRPC alike)."""
    specs = signatures.get(signature)
    if specs is None:
        raise ServingError(
            Code.FAILED_PRECONDITION,
            f'Serving signature key "{signature}" not found. Signatures of '
            f"{servable}: {sorted(signatures)}.",
        )
    return specs


def check_input(
    name: str, array: np.ndarray, spec: TensorInfo, fmt: str, max_rows: int | None
) -> None:
    """Checks one decoded input against its spec: shape, then the row limit."""
    _check_shape(name, array.shape, spec, fmt)
    if max_rows is not None and spec.batched and array.ndim and len(array) > max_rows:
        raise _too_many(len(array), max_rows)


def _rows(instances: list[Any], names: list[str]) -> dict[str, list[Any]]:
    if not instances:
        raise _invalid("'instances' is an empty list; send at least one instance.")
    named = all(isinstance(x, dict) and not _is_b64(x) for x in instances)
    if not named and any(isinstance(x, dict) and not _is_b64(x) for x in instances):
        raise _invalid("'instances' mixes named (object) and unnamed entries; use one form.")
    if not named:
        if len(names) != 1:
            raise _invalid(
                f"The signature has {len(names)} inputs {names}; each instance must be an "
                "object keyed by input name."
            )
        return {names[0]: instances}
    for i, instance in enumerate(instances):
        _check_names(set(instance), names, f"instance {i}")
    return {name: [x[name] for x in instances] for name in names}


def _columns(inputs: Any, names: list[str]) -> dict[str, Any]:
    if isinstance(inputs, dict) and not _is_b64(inputs):
        _check_names(set(inputs), names, "'inputs'")
        return inputs
    if len(names) != 1:
        raise _invalid(
            f"The signature has {len(names)} inputs {names}; 'inputs' must be an object "
            "keyed by input name."
        )
    return {names[0]: inputs}


def _check_names(got: set[str], names: list[str], where: str) -> None:
    missing = sorted(set(names) - got)
    if missing:
        raise _invalid(f"{where} is missing named input(s) {missing}; the signature takes {names}.")
    unknown = sorted(got - set(names))
    if unknown:
        raise _invalid(f"{where} has unknown input(s) {unknown}; the signature takes {names}.")


def _has_bool(value: Any) -> bool:
    if isinstance(value, list):
        return any(_has_bool(v) for v in value)
    return isinstance(value, bool)


def _to_array(
    name: str, value: Any, spec: TensorInfo, fmt: str, may_have_bools: bool
) -> np.ndarray:
    if spec.dtype.name == "string":
        array = _string_array(name, value)
        _check_shape(name, array.shape, spec, fmt)
        return array
    try:
        array = np.asarray(value)
    except (ValueError, OverflowError) as e:
        raise _invalid(
            f"Input {name!r} is not a rectangular array of numbers ({e}); every row must "
            "have the same length."
        ) from None
    dtype = spec.dtype
    kind = array.dtype.kind
    if dtype.is_floating:
        ok = kind in "iuf"
    elif dtype.is_integer:
        ok = kind in "iu"
    elif dtype.name == "bool":
        ok = kind == "b"
    else:
        ok = False
    if ok and kind in "iuf" and may_have_bools and _has_bool(value):
        ok = False
        kind = "b"
    if not ok or array.dtype == object:
        raise _invalid(
            f"Input {name!r} must hold {dtype.name} values, but got {_kind_name(kind)} "
            f"values; e.g. send {_example(dtype)}."
        )
    target = dtype.as_numpy_dtype
    if dtype.is_integer:
        info = np.iinfo(target)
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise _invalid(
                f"Input {name!r} has values outside the {dtype.name} range "
                f"[{info.min}, {info.max}]."
            )
    with np.errstate(over="ignore", invalid="ignore"):
        cast = array.astype(target, copy=False)
        # NaN and +-Infinity are values (TF Serving reads them); a finite number
        # that becomes infinite in a narrower float type is not.
        if dtype.is_floating and cast is not array and np.isinf(cast[np.isfinite(array)]).any():
            raise _invalid(
                f"Input {name!r} has values too large for {dtype.name}; send values within "
                f"+-{np.finfo(target).max:.4g}."
            )
    array = cast
    _check_shape(name, array.shape, spec, fmt)
    return array


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and "b64" in value


def _string_array(name: str, value: Any) -> np.ndarray:
    """An object array of bytes from nested lists of str and {"b64": ...} values."""

    def convert(v: Any) -> Any:
        if isinstance(v, list):
            return [convert(x) for x in v]
        if isinstance(v, str):
            return v.encode("utf-8")
        if _is_b64(v) and isinstance(v["b64"], str):
            try:
                return base64.b64decode(v["b64"], validate=True)
            except ValueError:
                raise _invalid(
                    f"Input {name!r} has a 'b64' value that is not valid base64."
                ) from None
        kind = "boolean" if isinstance(v, bool) else type(v).__name__
        raise _invalid(
            f"Input {name!r} must hold string values, but got {kind} values; e.g. send "
            '"text" or {"b64": "aGk="}.'
        )

    nested = convert(value)
    flat: list[Any] = []
    shape = _shape_of(nested, flat, name)
    array = np.empty(len(flat), dtype=object)
    array[:] = flat
    return array.reshape(shape)


def _shape_of(value: Any, flat: list[Any], name: str) -> tuple[int, ...]:
    """The shape of nested lists (checked rectangular); leaves appended to `flat`."""
    if not isinstance(value, list):
        flat.append(value)
        return ()
    shapes = {_shape_of(v, flat, name) for v in value}
    if len(shapes) > 1:
        raise _invalid(
            f"Input {name!r} is not a rectangular array; every row must have the same length."
        )
    return (len(value), *(shapes.pop() if shapes else ()))


def _kind_name(kind: str) -> str:
    names = {"i": "integer", "u": "integer", "f": "floating-point", "b": "boolean", "U": "string"}
    return names.get(kind, "mixed or nested")


def _example(dtype: Any) -> str:
    if dtype.is_floating:
        return "0.5"
    if dtype.is_integer:
        return "1"
    return "true" if dtype.name == "bool" else '"text"'


def _check_shape(name: str, shape: tuple[int, ...], spec: TensorInfo, fmt: str) -> None:
    if spec.shape is None:
        return
    if spec.batched and shape[:1] == (0,):
        raise _invalid(f"Input {name!r} is an empty batch; send at least one example.")
    expected = "[" + ", ".join("-1" if d is None else str(d) for d in spec.shape) + "]"
    fits = len(shape) == len(spec.shape) and all(
        d is None or d == s for d, s in zip(spec.shape, shape)
    )
    if not fits:
        per = " (the instances stacked along dimension 0)" if fmt == ROW else ""
        raise _invalid(
            f"Input {name!r} has shape {list(shape)}{per}, but the signature expects "
            f"{expected} (-1: any size)."
        )


def encode_outputs(outputs: Mapping[str, np.ndarray], fmt: str) -> dict[str, Any]:
    """The JSON-ready answer for outputs of a request in format `fmt`."""
    names = sorted(outputs)
    if fmt == COLUMNAR:
        if len(names) == 1:
            return {"outputs": _jsonable(outputs[names[0]], names[0])}
        return {"outputs": {n: _jsonable(outputs[n], n) for n in names}}
    sizes = {n: (np.shape(outputs[n])[0] if np.ndim(outputs[n]) else None) for n in names}
    batch = {s for s in sizes.values()}
    if len(batch) != 1 or None in batch:
        raise _invalid(
            f"Outputs {sizes} do not share a batch dimension 0, so they cannot be returned "
            "as 'predictions'; send the request in the columnar 'inputs' format."
        )
    (size,) = batch
    lists = {n: _jsonable(outputs[n], n) for n in names}
    if len(names) == 1:
        return {"predictions": lists[names[0]]}
    return {"predictions": [{n: lists[n][i] for n in names} for i in range(size)]}


def _jsonable(array: np.ndarray, name: str = "") -> Any:
    array = np.asarray(array)
    if array.dtype == object or array.dtype.kind == "S":
        if name.endswith("_bytes"):  # TF Serving's rule: such outputs are always base64
            return np.vectorize(_b64, otypes=[object])(array).tolist()
        return np.vectorize(_text, otypes=[object])(array).tolist()
    if array.dtype in (np.float32, np.float16) and array.size:
        # Shortest text that reads back as the same float32 (0.1, not 0.100000001).
        return array.astype(str).astype(np.float64).tolist()
    return array.tolist()


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return _b64(value)  # type: ignore[return-value]
    return str(value)


def _b64(value: Any) -> dict[str, str]:
    data = value if isinstance(value, bytes) else str(value).encode("utf-8")
    return {"b64": base64.b64encode(data).decode("ascii")}
