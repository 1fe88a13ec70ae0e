import numpy as np
import pytest
import tensorflow as tf

from tfrl.export.session_model import TensorInfo
from tfrl.serving.codec import decode_inputs, encode_outputs, parse_predict_request
from tfrl.serving.status import Code, ServingError

OBS = {"observation": TensorInfo("x:0", tf.float32, (None, 4))}
TWO = {"a": TensorInfo("a:0", tf.int32, (None,)), "b": TensorInfo("b:0", tf.float32, (None, 2))}


def decode(body: bytes, specs=OBS):
    return decode_inputs(parse_predict_request(body), specs)


def test_row_and_columnar_single_input():
    row = decode(b'{"instances": [[1, 2, 3, 4], [5, 6, 7, 8.5]]}')["observation"]
    col = decode(b'{"inputs": [[1, 2, 3, 4], [5, 6, 7, 8.5]]}')["observation"]
    named = decode(b'{"inputs": {"observation": [[1, 2, 3, 4], [5, 6, 7, 8.5]]}}')["observation"]
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
        (b'{"instances": [[1,2,3,4]], "extra": 1}', OBS, r"Unknown key\(s\) \['extra'\]"),
        (b'{"instances": {"observation": 1}}', OBS, r"'instances' to be an list"),
        (b'{"instances": []}', OBS, r"'instances' is empty"),
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
        (b'{"instances": [[NaN, 1, 2, 3]]}', OBS, r"NaN is not a valid number"),
        (b'{"instances": [[-Infinity, 1, 2, 3]]}', OBS, r"-Infinity is not a valid number"),
        (b'{"instances": [[1e39, 1, 2, 3]]}', OBS, r"NaN or infinite values"),
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
