"""`check_export()`: does TF Serving load this export and run every signature?"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow as tf

from tfrl.errors import ExportError
from tfrl.export.exporter import read_export_info
from tfrl.export.session_model import SessionModel, TensorInfo
from tfrl.export.signature import SERVING_DEFAULT
from tfrl.export.versions import SAVED_MODEL_FILES, is_version_name, list_versions

__all__ = ["CheckReport", "SignatureCheck", "VersionCheck", "check_export", "sample_input"]

SAMPLE_BATCH = 2


Shape = tuple[int | None, ...] | None


@dataclasses.dataclass
class SignatureCheck:
    """One signature, as declared and as run on sample input: (dtype, shape) per tensor.

    Attributes:
        name: the signature's key, e.g. 'serving_default'.
        inputs: declared inputs; None in a shape is an open dimension (any size).
        outputs: what a run on a batch of `SAMPLE_BATCH` returned (concrete shapes).
        declared_outputs: the outputs as the signature declares them.
        sample_inputs: what that run was fed.
    """

    name: str
    inputs: dict[str, tuple[str, Shape]]
    outputs: dict[str, tuple[str, tuple[int, ...]]]
    declared_outputs: dict[str, tuple[str, Shape]] = dataclasses.field(default_factory=dict)
    sample_inputs: dict[str, tuple[str, tuple[int, ...]]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class VersionCheck:
    """One version directory that loaded and ran."""

    version: int
    path: str
    signatures: list[SignatureCheck]


@dataclasses.dataclass
class CheckReport:
    """What `check_export` verified, one entry per version."""

    path: str
    versions: list[VersionCheck]

    def format(self) -> str:
        """A readable multi-line summary: each signature as declared, then as run."""
        lines = [
            f"{self.path}: OK (loaded with TF Serving's loader, tag 'serve')",
            "  signature: declared shapes, ? = any size;"
            f" sample run: shapes fed and returned for a batch of {SAMPLE_BATCH}",
        ]
        for v in self.versions:
            lines.append(f"  version {v.version}: {v.path}")
            for s in v.signatures:
                lines.append(f"    {s.name}")
                lines.append(
                    f"      signature:  {_tensors(s.inputs, _declared)}"
                    f" -> {_tensors(s.declared_outputs, _declared)}"
                )
                lines.append(
                    f"      sample run: {_tensors(s.sample_inputs, _concrete)}"
                    f" -> {_tensors(s.outputs, _concrete)}"
                )
        return "\n".join(lines)


def _declared(shape: Shape) -> str:
    if shape is None:
        return "[...]"  # unknown rank
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def _concrete(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _tensors(tensors: dict, shape_text) -> str:
    if not tensors:
        return "(none)"
    return ", ".join(f"{k} {dtype} {shape_text(shape)}" for k, (dtype, shape) in tensors.items())


def sample_input(info: TensorInfo, batch: int = SAMPLE_BATCH) -> np.ndarray:
    """A sample array for one signature input: batch `batch`, other open dims 1."""
    if info.shape is None:
        shape: tuple[int, ...] = ()
    else:
        shape = tuple(
            (batch if i == 0 else 1) if d is None else d for i, d in enumerate(info.shape)
        )
    dtype = info.dtype
    if dtype == tf.string:
        return np.full(shape, b"", dtype=object)
    if dtype == tf.bool:
        return np.zeros(shape, dtype=bool)
    # 1 for integers: a valid batch_size for get_initial_state, MID for step_type.
    value = 1 if dtype.is_integer else 0
    return np.full(shape, value, dtype=dtype.as_numpy_dtype)


def check_export(path: str) -> CheckReport:
    """Loads an export like TF Serving and runs each signature on sample input.

    Args:
        path: a version directory (`base/<N>`, N an integer) or a model's base
            directory, whose every integer version is checked.

    Returns:
        A `CheckReport` (see `CheckReport.format()`).

    Raises:
        ExportError: naming the first problem (no SavedModel, a non-integer
            version directory, no `serving_default`, a signature that fails, a
            `serving_default` output that is not batch-first or not finite, or
            no `action` from an agent export's `serving_default`; domain
            signatures such as a classifier's need no `action`).
    """
    path = os.path.abspath(path)
    if not os.path.isdir(path):
        raise ExportError(f"{path} does not exist or is not a directory; pass an export path.")
    if any(os.path.isfile(os.path.join(path, f)) for f in SAVED_MODEL_FILES):
        name = os.path.basename(path)
        if not is_version_name(name):
            raise ExportError(
                f"{path} holds a SavedModel, but its directory name {name!r} is not an "
                "integer version, so TF Serving will not load it. Move it to "
                f"<model_base_path>/1/ (tfrl.export writes that layout)."
            )
        return CheckReport(path, [_check_version(path, int(name))])
    if is_version_name(os.path.basename(path)):
        raise ExportError(
            f"{path} has no saved_model.pb: it is not a SavedModel (an interrupted copy?). "
            "Re-export with tfrl.export(agent, base_path)."
        )
    versions = list_versions(path)
    if not versions:
        raise ExportError(
            f"{path} has no saved_model.pb and no integer version directory holding one "
            f"(found: {sorted(os.listdir(path))[:10]}). Pass a path written by tfrl.export()."
        )
    return CheckReport(path, [_check_version(os.path.join(path, str(v)), v) for v in versions])


def _check_version(path: str, version: int) -> VersionCheck:
    if not os.path.isdir(os.path.join(path, "variables")):
        raise ExportError(
            f"{path} has no variables/ directory; TF Serving needs saved_model.pb and "
            "variables/. Re-export it with tfrl.export()."
        )
    model = SessionModel(path)
    try:
        if SERVING_DEFAULT not in model.signature_defs:
            raise ExportError(
                f"{path} has no {SERVING_DEFAULT!r} signature (it has "
                f"{sorted(model.signature_defs)}); TF Serving calls it when a request names "
                "none. Re-export with tfrl.export(), which adds it."
            )
        agent_export = read_export_info(path).get("serving_default") == "agent"
        checks = [
            _check_signature(model, name, require_action=agent_export)
            for name in sorted(model.signature_defs)
        ]
    finally:
        model.close()
    return VersionCheck(version, path, checks)


def _check_signature(model: SessionModel, name: str, require_action: bool) -> SignatureCheck:
    """Runs one signature on a sample batch built from its own inputs.

    Every `serving_default` must return batch-first outputs, finite where
    numeric; an agent export's (`tfrl.export` without a domain signature)
    must also return `action`. Domain signatures (a classifier's labels and
    scores, a recommender's slate) need no `action`.
    """
    inputs = model.inputs[name]
    feeds = {k: sample_input(info) for k, info in inputs.items()}
    try:
        outputs = model.run(name, feeds)
    except Exception as e:
        raise ExportError(
            f"Signature {name!r} of {model.path} fails on sample input "
            f"{ {k: v.tolist() for k, v in feeds.items()} }: {e}"
        ) from e
    if name == SERVING_DEFAULT:
        if not outputs:
            raise ExportError(f"{SERVING_DEFAULT!r} of {model.path} returns no outputs.")
        if require_action and "action" not in outputs:
            raise ExportError(
                f"{SERVING_DEFAULT!r} of {model.path} has no 'action' output (outputs: "
                f"{sorted(outputs)}), but tfrl.export() recorded it as an agent export, "
                "whose serving_default returns 'action'; re-export with tfrl.export()."
            )
        for k, value in outputs.items():
            if np.ndim(value) == 0 or np.shape(value)[0] != SAMPLE_BATCH:
                raise ExportError(
                    f"{SERVING_DEFAULT!r} output {k!r} of {model.path} has shape "
                    f"{np.shape(value)} for a batch of {SAMPLE_BATCH}; outputs must have "
                    "the batch as dimension 0."
                )
            array = np.asarray(value)
            if array.dtype.kind in "fc" and not np.all(np.isfinite(array)):
                raise ExportError(
                    f"{SERVING_DEFAULT!r} output {k!r} of {model.path} is not finite on "
                    f"sample input ({array.tolist()}); check the exported model's weights."
                )
    return SignatureCheck(
        name,
        inputs={k: (info.dtype.name, info.shape) for k, info in inputs.items()},
        outputs={k: (np.asarray(v).dtype.name, tuple(np.shape(v))) for k, v in outputs.items()},
        declared_outputs={
            k: (info.dtype.name, info.shape) for k, info in sorted(model.outputs[name].items())
        },
        sample_inputs={k: (tf.as_dtype(v.dtype).name, v.shape) for k, v in feeds.items()},
    )
