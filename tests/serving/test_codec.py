import numpy as np
import pytest
import tensorflow as tf

from tfrl.export.session_model import TensorInfo
from tfrl.serving.codec import (
    decode_inputs,
    decode_request,
    encode_outputs,
    parse_predict_request,
)
from tfrl.serving.status import Code, ServingError

OBS = {"observation": TensorInfo("x:0", tf.float32, (None, 4))}
TWO = {"a": TensorInfo("a:0", tf.int32, (None,)), "b": TensorInfo("b:0", tf.float32, (None, 2))}


TEXT = {"text": TensorInfo("t:0", tf.string, (None,))}


def decode(body: bytes, specs=OBS, max_rows=None):
    return decode_inputs(parse_predict_request(body), specs, max_rows=max_rows)


def test_row_and_columnar_single_input():
    row = decode(b'{"instances": [[1, 2, 3, 4], [5, 6, 7, 8.5]]}')["observation"]
    col = decode(b'{"inputs": [[1, 2, 3, 4], [5, 6, 7, 8.5]]}')["observation"]
    named = decode(b'{"inputs": {"observation": [[1, 2, 3, 4], [5, 6, 7, 8.5]]}}', max_rows=2)[
        "observation"
    ]
    named_rows = decode(b'{"instances": [{"observation": [1, 2, 3, 4]}]}')["observation"]
    assert row.dtype == np.float32 and row.shape == (2, 4)
    np.testing.assert_array_equal(row, col)
    np.testing.assert_array_equal(row, named)
    np.testing.assert_array_equal(named_rows, row[:1])


def test_named_inputs():
    out = decode(b'{"instances": [{"a": 1, "b": [0.5, 1]}, {"a": 2, "b": [3, 4]}]}', TWO)
    assert out["a"].dtype == np.int32 and out["a"].tolist() == [1, 2]
    assert out["b"].tolist() == [[0.5, 1.0], [3.0, 4.0]]


@pytest.mark.parametrize(
    ("body", "specs", "message"),
    [
        (b"{not json", OBS, r"JSON Parse error"),
        (b"[1, 2]", OBS, r"Is not object"),
        (b'{"instances": [[1,2,3,4]], "inputs": [[1,2,3,4]]}', OBS, r"both 'instances' and"),
        (b'{"signature_name": "serving_default"}', OBS, r"Missing 'inputs' or 'instances'"),
        (b'{"instances": {"observation": 1}}', OBS, r"'instances' to be an list"),
        (
            b'{"instances": []}',
            OBS,
            r"^'instances' is an empty list; send at least one instance\.$",
        ),
        (b'{"inputs": []}', OBS, r"is an empty batch"),
        (b'{"inputs": [[[1, 2, 3, 4]]]}', OBS, r"shape \[1, 1, 4\], but the signature expects"),
        (b'{"instances": [[1, 2, 3]]}', OBS, r"shape \[1, 3\] \(the instances stacked"),
        (b'{"instances": [[1, 2, 3, 4], [1, 2]]}', OBS, r"not a rectangular array"),
        (
            b'{"instances": [["a", "b", "c", "d"]]}',
            OBS,
            r"must hold float32 values, but got string",
        ),
        (b'{"instances": [[true, 1, 2, 3]]}', OBS, r"must hold float32 values, but got boolean"),
        (b'{"instances": [[1e39, 1, 2, 3]]}', OBS, r"values too large for float32"),
        (b"[" * 100_000 + b"]" * 100_000, OBS, r"nested too deeply"),
        (b'{"inputs": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", OBS, r"nested too deeply"),
        (b'{"instances": [[1, 2, 3, 4]], "signature_name": 3}', OBS, r"must be a string"),
        (b'{"instances": [{"a": 1}]}', TWO, r"missing named input\(s\) \['b'\]"),
        (b'{"inputs": {"a": [1], "b": [[1, 2]], "c": 1}}', TWO, r"unknown input\(s\) \['c'\]"),
        (b'{"instances": [{"a": 1.5, "b": [1, 2]}]}', TWO, r"'a' must hold int32 values"),
        (b'{"instances": [{"a": 3000000000, "b": [1, 2]}]}', TWO, r"outside the int32 range"),
        (b'{"instances": [[1, 2]]}', TWO, r"has 2 inputs \['a', 'b'\]; each instance must be"),
    ],
)
def test_bad_requests(body, specs, message):
    with pytest.raises(ServingError, match=message) as info:
        decode(body, specs)
    assert info.value.code is Code.INVALID_ARGUMENT


def test_encode_single_and_multi_output():
    action = np.array([1, 0])
    q = np.array([[0.1, 0.2], [0.3, 0.4]], np.float32)
    assert encode_outputs({"action": action}, "row") == {"predictions": [1, 0]}
    assert encode_outputs({"action": action}, "columnar") == {"outputs": [1, 0]}
    assert encode_outputs({"action": action, "q_values": q}, "row") == {
        "predictions": [
            {"action": 1, "q_values": [0.1, 0.2]},
            {"action": 0, "q_values": [0.3, 0.4]},
        ]
    }
    assert encode_outputs({"action": action, "q_values": q}, "columnar") == {
        "outputs": {"action": [1, 0], "q_values": [[0.1, 0.2], [0.3, 0.4]]}
    }
    assert encode_outputs({"int64": np.array(5)}, "columnar") == {"outputs": 5}
    with pytest.raises(ServingError, match="send the request in the columnar 'inputs' format"):
        encode_outputs({"int64": np.array(5)}, "row")


def test_nan_infinity_and_unknown_keys_are_read_as_tf_serving_does():
    body = b'{"instances": [[NaN, Infinity, -Infinity, 1]], "extra": {"ignored": true}}'
    x = decode(body)["observation"]
    assert np.isnan(x[0, 0]) and x[0, 1] == np.inf and x[0, 2] == -np.inf and x[0, 3] == 1
    assert encode_outputs({"y": x}, "columnar") == {
        "outputs": [[pytest.approx(np.nan, nan_ok=True), np.inf, -np.inf, 1.0]]
    }


def test_b64_and_text_strings():
    rows = decode(b'{"instances": [{"b64": "AAH/"}, "caf\xc3\xa9"]}', TEXT)["text"]
    assert rows.dtype == object and rows.tolist() == [b"\x00\x01\xff", "café".encode()]
    named = decode(b'{"instances": [{"text": {"b64": "aGk="}}]}', TEXT, 1)["text"]
    assert named.tolist() == [b"hi"]
    cols = decode(b'{"inputs": {"text": [{"b64": "aGk="}, "yo"]}}', TEXT)["text"]
    assert cols.tolist() == [b"hi", b"yo"]
    for body, message in [
        (b'{"instances": [{"b64": "not base64!"}]}', "not valid base64"),
        (b'{"instances": [1]}', "must hold string values, but got int"),
        (b'{"inputs": [["a"], "b"]}', "not a rectangular array"),
    ]:
        with pytest.raises(ServingError, match=message):
            decode(body, TEXT)
    out = {"text": np.array([b"hi", b"\xff"], object), "raw_bytes": np.array([b"hi", b"x"], object)}
    assert encode_outputs(out, "row") == {
        "predictions": [
            {"text": "hi", "raw_bytes": {"b64": "aGk="}},
            {"text": {"b64": "/w=="}, "raw_bytes": {"b64": "eA=="}},
        ]
    }


def test_row_limit():
    for body in (b'{"instances": [[1, 2, 3, 4], [1, 2, 3, 4]]}', b'{"inputs": [[1, 2, 3, 4]] }'):
        assert decode(body, max_rows=2)["observation"].shape[1] == 4
    with pytest.raises(ServingError, match=r"holds 3 examples, more than the limit of 2"):
        decode(b'{"instances": [[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4]]}', max_rows=2)
    with pytest.raises(ServingError, match=r"holds 3 examples, more than the limit of 2"):
        decode(b'{"inputs": [[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4]]}', max_rows=2)


def test_decode_request_checks_the_signature():
    signature, fmt, feeds = decode_request(
        b'{"inputs": [[1, 2, 3, 4]]}', {"serving_default": OBS}, "m version 1"
    )
    assert (signature, fmt, feeds["observation"].shape) == ("serving_default", "columnar", (1, 4))
    with pytest.raises(ServingError, match=r'key "x" not found. Signatures of m version 1') as info:
        decode_request(
            b'{"signature_name": "x", "inputs": []}', {"serving_default": OBS}, "m version 1"
        )
    assert info.value.code is Code.FAILED_PRECONDITION
