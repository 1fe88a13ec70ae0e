"""The gRPC API, through the official tensorflow-serving-api client."""

import os
import re
import shutil

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from tests.export.tiny_agents import greedy_actions, observations
from tfrl.serving import ModelConfig, Server

MODEL = "cartpole_dqn"


@pytest.fixture(scope="module")
def served(dqn_base, other_export, tmp_path_factory):
    """Versions 1 (`dqn_agent`) and 2 (`other_dqn_agent`: other weights) served with
    policy all and labels."""
    base = tmp_path_factory.mktemp("grpc") / MODEL
    shutil.copytree(os.path.join(dqn_base, "1"), base / "1")
    shutil.copytree(other_export, base / "2")
    config = ModelConfig(MODEL, str(base), policy="all", labels={"stable": 1})
    with Server([config], port=0, grpc_port=0, max_request_rows=100) as server:
        channel = grpc.insecure_channel(server.grpc_target)
        yield (
            prediction_service_pb2_grpc.PredictionServiceStub(channel),
            model_service_pb2_grpc.ModelServiceStub(channel),
        )
        channel.close()


def predict_request(obs, version=None, label=None, signature=""):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    request.inputs["observation"].CopyFrom(tf.make_tensor_proto(obs))
    return request


def test_predict_latest_by_version_and_by_label(served, dqn_agent, other_dqn_agent):
    stub, _ = served
    obs = observations(6)
    actions = {
        1: greedy_actions(dqn_agent.policy, obs),
        2: greedy_actions(other_dqn_agent.policy, obs),
    }
    q_values = {}
    for version, label, answered in [(None, None, 2), (1, None, 1), (None, "stable", 1)]:
        response = stub.Predict(predict_request(obs, version, label), timeout=30)
        assert response.model_spec.name == MODEL
        assert response.model_spec.version.value == answered
        assert response.model_spec.signature_name == "serving_default"
        np.testing.assert_array_equal(
            tf.make_ndarray(response.outputs["action"]), actions[answered]
        )
        q = tf.make_ndarray(response.outputs["q_values"])
        assert q.shape == (6, 2)
        q_values.setdefault(answered, q)
        np.testing.assert_array_equal(q, q_values[answered])
    # the versions' weights differ, so an answer from the wrong version would show
    assert not np.allclose(q_values[1], q_values[2], rtol=1e-3)
    request = predict_request(obs)
    request.output_filter.append("action")
    assert set(stub.Predict(request, timeout=30).outputs) == {"action"}


def test_metadata_and_status(served):
    stub, models = served
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = MODEL
    request.metadata_field.append("signature_def")
    response = stub.GetModelMetadata(request, timeout=30)
    assert response.model_spec.version.value == 2
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    serving = signatures.signature_def["serving_default"]
    assert serving.inputs["observation"].dtype == tf.float32.as_datatype_enum
    assert set(serving.outputs) == {"action", "q_values"}

    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = MODEL
    status = models.GetModelStatus(status_request, timeout=30).model_version_status
    available = get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert [(s.version, s.state, s.status.error_code) for s in status] == [
        (2, available, 0),
        (1, available, 0),
    ]


def _code(call, request):
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=30)
    return info.value.code(), info.value.details()


def test_errors_carry_tf_serving_status_codes(served):
    stub, models = served
    obs = observations(2)
    unknown = predict_request(obs)
    unknown.model_spec.name = "nope"
    wrong_dtype = predict_request(obs)
    wrong_dtype.inputs["observation"].CopyFrom(tf.make_tensor_proto(obs.astype(np.float64)))
    wrong_shape = predict_request(obs[:, :3])
    wrong_name = predict_request(obs)
    wrong_name.inputs["obs"].CopyFrom(wrong_name.inputs.pop("observation"))
    too_many = predict_request(observations(101))
    bad_filter = predict_request(obs)
    bad_filter.output_filter.append("logits")
    cases = [
        (unknown, grpc.StatusCode.NOT_FOUND, r"Servable not found for request: Latest\(nope\)"),
        (predict_request(obs, version=9), grpc.StatusCode.NOT_FOUND, r"Specific\(cartpole_dqn, 9"),
        (predict_request(obs, label="canary"), grpc.StatusCode.INVALID_ARGUMENT, "label: canary"),
        (
            predict_request(obs, signature="nope"),
            grpc.StatusCode.FAILED_PRECONDITION,
            'signature key "nope" not found',
        ),
        (wrong_dtype, grpc.StatusCode.INVALID_ARGUMENT, "must be float32, but float64 was sent"),
        (wrong_shape, grpc.StatusCode.INVALID_ARGUMENT, r"shape \[2, 3\], but the signature"),
        (wrong_name, grpc.StatusCode.INVALID_ARGUMENT, r"missing \['observation'\]"),
        (too_many, grpc.StatusCode.INVALID_ARGUMENT, "101 examples, more than the limit of 100"),
        (bad_filter, grpc.StatusCode.INVALID_ARGUMENT, r"output_filter names \['logits'\]"),
    ]
    for request, code, message in cases:
        got_code, details = _code(stub.Predict, request)
        assert got_code == code, details
        assert re.search(message, details), details

    metadata = get_model_metadata_pb2.GetModelMetadataRequest()
    metadata.model_spec.name = MODEL
    assert _code(stub.GetModelMetadata, metadata)[0] == grpc.StatusCode.INVALID_ARGUMENT
    status = get_model_status_pb2.GetModelStatusRequest()
    status.model_spec.name = MODEL
    status.model_spec.version.value = 7
    assert _code(models.GetModelStatus, status)[0] == grpc.StatusCode.NOT_FOUND
    for call, request in [
        (stub.Classify, classification_pb2.ClassificationRequest()),
        (stub.Regress, regression_pb2.RegressionRequest()),
    ]:
        code, details = _code(call, request)
        assert code == grpc.StatusCode.UNIMPLEMENTED and "use Predict" in details
    # Still serving after all that.
    assert stub.Predict(predict_request(obs), timeout=30).model_spec.version.value == 2


@pytest.mark.parametrize("version", [0, 1, 300])
def test_predict_responses_written_directly_parse_as_built_by_protobuf(version):
    """encode_predict_response's bytes parse to exactly the message built with protobuf
    (`_fill_tensor`, the fallback path), for every numeric dtype and shape (scalars,
    empty tensors, negative values): same dtypes, shapes and values; strings fall back."""
    from tfrl.serving.grpc_api import _fill_tensor, encode_predict_response

    rng = np.random.default_rng(0)
    outputs = {
        "action": np.array([1, 0, -5], np.int64),
        "q_values": rng.random((3, 2), np.float32),
        "half": rng.random((300, 7)).astype(np.float16),
        "scalar": np.float64(3.5),
        "flags": np.array([True, False]),
        "empty": np.zeros((0, 3), np.int32),
        "bytes": np.arange(5, dtype=np.uint8),
    }
    expected = predict_pb2.PredictResponse()
    expected.model_spec.name = MODEL
    expected.model_spec.version.value = version
    expected.model_spec.signature_name = "serving_default"
    for key, value in outputs.items():
        _fill_tensor(expected.outputs[key], value)
    encoded = encode_predict_response(MODEL, version, "serving_default", outputs)
    parsed = predict_pb2.PredictResponse.FromString(encoded)
    assert parsed == expected
    for key, value in outputs.items():
        np.testing.assert_array_equal(
            tf.make_ndarray(parsed.outputs[key]), np.asarray(value), strict=True
        )
    assert encode_predict_response(MODEL, 1, "serving_default", {"text": np.array([b"a"])}) is None


def test_large_requests_read_packed_floats_as_bytes_with_the_same_values():
    """A large PredictRequest's packed float_val/double_val inputs are moved to
    tensor_content before parsing; every input reads as protobuf's own parse would."""
    from tfrl.serving.grpc_api import _parse_predict, _to_ndarray

    rng = np.random.default_rng(0)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.model_spec.version_label = "stable"
    request.output_filter.append("action")
    floats = rng.uniform(-1, 1, (5000, 4)).astype(np.float32)
    cases = {
        "floats": (floats, "float_val"),
        "doubles": (rng.uniform(-1, 1, (3, 700)), "double_val"),
        "filled": (np.full((50, 4), 2.5, np.float32), "float_val"),  # one value, broadcast
        "ints": (np.arange(12, dtype=np.int32).reshape(3, 4), "int_val"),
        "content": (floats[:3], None),
        "text": (np.array([b"a", b"bc"], object), None),
    }
    for key, (array, field) in cases.items():
        tensor = request.inputs[key]
        tensor.CopyFrom(tf.make_tensor_proto(array))
        if field is not None:
            tensor.tensor_content = b""
            values = array.ravel()[:1] if key == "filled" else array.ravel()
            getattr(tensor, field).extend(values.tolist())
    raw = request.SerializeToString()
    assert len(raw) > 16 * 1024
    expected, parsed = predict_pb2.PredictRequest.FromString(raw), _parse_predict(raw)
    assert parsed.model_spec == expected.model_spec
    assert parsed.output_filter == expected.output_filter
    assert set(parsed.inputs) == set(cases)
    for key, (array, _) in cases.items():
        got = _to_ndarray(parsed.inputs[key], tf.dtypes.as_dtype(parsed.inputs[key].dtype))
        np.testing.assert_array_equal(got, array, strict=True)
        np.testing.assert_array_equal(got, tf.make_ndarray(expected.inputs[key]), strict=True)
    assert parsed.inputs["floats"].tensor_content and not parsed.inputs["floats"].float_val
    assert parsed.inputs["doubles"].tensor_content and parsed.inputs["filled"].float_val
    for cut in (raw[:-3], raw + b"\x80"):  # a truncated value; a truncated field key
        with pytest.raises(DecodeError):
            _parse_predict(cut)
