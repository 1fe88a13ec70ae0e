import concurrent.futures
import json
import logging
import os
import re
import shutil
import time

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

import tfrl.export
from tests.export.tiny_agents import greedy_actions, make_agent, observations
from tests.serving.client import call
from tfrl.serving import ModelConfig, Server, load_model_config_file

MODEL = "cartpole_dqn"


def predict_url(server, suffix=""):
    return f"{server.url}/v1/models/{MODEL}{suffix}:predict"


def test_status_and_metadata(server):
    status, body = call("GET", f"{server.url}/v1/models/{MODEL}")
    assert status == 200
    assert body == {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    assert call("GET", f"{server.url}/v1/models/{MODEL}/versions/1") == (200, body)
    status, meta = call("GET", f"{server.url}/v1/models/{MODEL}/metadata")
    assert status == 200
    assert meta["model_spec"] == {"name": MODEL, "signature_name": "", "version": "1"}
    sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    obs = sig["inputs"]["observation"]
    assert obs["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in obs["tensor_shape"]["dim"]] == ["-1", "4"]
    assert set(sig["outputs"]) == {"action", "q_values"}
    assert sig["method_name"] == "tensorflow/serving/predict"


def test_row_and_columnar_give_the_policy_actions(server, dqn_agent):
    obs = observations(8)
    expected = greedy_actions(dqn_agent.policy, obs).tolist()
    status, rows = call("POST", predict_url(server), {"instances": obs.tolist()})
    assert status == 200
    assert [p["action"] for p in rows["predictions"]] == expected
    assert all(len(p["q_values"]) == 2 for p in rows["predictions"])
    status, cols = call("POST", predict_url(server, "/versions/1"), {"inputs": obs.tolist()})
    assert status == 200
    assert cols["outputs"]["action"] == expected
    assert cols["outputs"]["q_values"] == [p["q_values"] for p in rows["predictions"]]


def test_tensorflow_serving_api_request_shapes(server, dqn_agent):
    """A PredictRequest built with tensorflow-serving-api, sent as its REST JSON mirror."""
    obs = observations(5)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = "serving_default"
    request.inputs["observation"].CopyFrom(tf.make_tensor_proto(obs))
    body = {
        "signature_name": request.model_spec.signature_name,
        "inputs": {k: tf.make_ndarray(v).tolist() for k, v in request.inputs.items()},
    }
    status, answer = call("POST", predict_url(server), body)
    assert status == 200
    response = predict_pb2.PredictResponse()
    for name, value in answer["outputs"].items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(np.asarray(value)))
    actions = tf.make_ndarray(response.outputs["action"])
    np.testing.assert_array_equal(actions, greedy_actions(dqn_agent.policy, obs))
    # TF-Agents' own signature, with its nest-path input names.
    status, answer = call(
        "POST",
        predict_url(server),
        {
            "signature_name": "action",
            "inputs": {
                "0/observation": obs.tolist(),
                "0/step_type": [0] * 5,
                "0/reward": [0.0] * 5,
                "0/discount": [1.0] * 5,
            },
        },
    )
    assert status == 200
    assert answer["outputs"] == actions.tolist()
    assert call(
        "POST", predict_url(server), {"signature_name": "get_train_step", "inputs": {}}
    ) == (
        200,
        {"outputs": 0},
    )


GOOD = {"instances": [[0.1, 0.2, 0.3, 0.4]]}
BAD = [
    ("", b"{oops", 400, "JSON Parse error"),
    ("", b"", 400, "JSON Parse error"),
    ("", {"instances": GOOD["instances"], "inputs": GOOD["instances"]}, 400, "both 'instances'"),
    ("", {"signature_name": "serving_default"}, 400, "Missing 'inputs' or 'instances'"),
    (
        "",
        {"instances": [{"obs": [1, 2, 3, 4]}]},
        400,
        r"missing named input\(s\) \['observation'\]",
    ),
    ("", {"inputs": {"observation": [[1, 2, 3, 4]], "x": 1}}, 400, r"unknown input\(s\) \['x'\]"),
    ("", {"instances": [[1, 2, 3]]}, 400, r"has shape \[1, 3\]"),
    ("", {"instances": [["a", "b", "c", "d"]]}, 400, "must hold float32 values"),
    ("", {"instances": [[1e300, 0, 0, 0]]}, 400, "values too large for float32"),
    ("", b'{"instances": ' + b"[" * 30_000 + b"]" * 30_000 + b"}", 400, "nested too deeply"),
    ("", {"instances": []}, 400, "'instances' is an empty list"),
    ("", {"inputs": np.zeros((0, 4)).tolist()}, 400, "empty batch"),
    ("", {"instances": [[0, 0, 0, 0]], "signature_name": "nope"}, 400, 'signature key "nope" not'),
    ("/versions/9", GOOD, 404, r"Specific\(cartpole_dqn, 9\)"),
    ("/versions/x", GOOD, 400, "'x' in .* is not an integer"),
    ("/labels/stable", GOOD, 400, "Unrecognized servable version label: stable"),
    ("/labels/..", GOOD, 400, "Invalid label '..'"),
]


@pytest.mark.parametrize(("suffix", "body", "status", "message"), BAD)
def test_bad_input_gets_4xx_and_server_keeps_serving(server, suffix, body, status, message, caplog):
    caplog.set_level(logging.WARNING)
    got_status, got = call("POST", predict_url(server, suffix), body)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []  # no crash log
    assert got_status == status, got
    assert set(got) == {"error"}
    assert re.search(message, got["error"]), got["error"]
    assert call("POST", predict_url(server), GOOD)[0] == 200


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("POST", "/v1/models/nope:predict", 404, r"Servable not found for request: Latest\(nope\)"),
        ("POST", "/v1/models/cartpole_dq:predict", 404, "Did you mean 'cartpole_dqn'"),
        ("GET", "/v1/models/nope", 404, "Servable not found"),
        ("GET", "/v1/models/nope/metadata", 404, "Servable not found"),
        (
            "POST",
            "/v1/models/..%2Fcartpole_dqn:predict",
            400,
            "Invalid model name '../cartpole_dqn'",
        ),
        ("POST", "/v1/models/a%2Fb:predict", 400, "Invalid model name 'a/b'"),
        ("POST", "/v1/models/cartpole_dqn/x/y:predict", 400, "Malformed request"),
        ("POST", "/v1/models/cartpole_dqn:classify", 400, "classify is not supported"),
        ("GET", "/v1/models/cartpole_dqn/versions/7", 404, "Could not find version 7"),
        ("GET", "/v2/anything", 400, "Malformed request: GET /v2/anything"),
        ("DELETE", "/v1/models/cartpole_dqn", 400, "Malformed request"),
        ("GET", "/v1/models/cartpole_dqn:predict", 405, "Method GET is not allowed on .*:predict"),
        ("GET", "/v1/models/Cartpole_dqn", 404, "Servable not found"),  # names keep their case
    ],
)
def test_bad_paths(server, method, path, status, message):
    got_status, got = call(method, server.url + path, GOOD if method == "POST" else None)
    assert (got_status, set(got)) == (status, {"error"})
    assert re.search(message, got["error"]), got["error"]
    assert call("POST", predict_url(server), GOOD)[0] == 200


def test_tf_serving_json_and_paths(server):
    """NaN/Infinity are values, unknown keys are ignored, fixed path words ignore case."""
    body = b'{"instances": [[NaN, Infinity, -Infinity, 0]], "client_id": "x"}'
    status, answer = call("POST", predict_url(server), body)
    assert status == 200 and len(answer["predictions"]) == 1
    for path in ("/V1/Models/cartpole_dqn/VERSIONS/1:PREDICT", "/v1/MODELS/cartpole_dqn:Predict"):
        assert call("POST", server.url + path, GOOD)[0] == 200
    assert call("GET", f"{server.url}/v1/models/{MODEL}/Metadata")[0] == 200


def test_body_over_limit_is_413(server):
    big = {"instances": [[0.125, 0.25, 0.5, 1.0]] * 4000}  # > 64 KiB
    assert len(json.dumps(big)) > 64 * 1024
    status, body = call("POST", predict_url(server), big)
    assert status == 413
    assert "exceeds the limit of 65536 bytes" in body["error"]
    assert call("POST", predict_url(server), GOOD)[0] == 200


def test_models_config_with_labels(dqn_base, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(os.path.join(dqn_base, "1"), other / "1")
    shutil.copytree(os.path.join(dqn_base, "1"), other / "2")
    config = tmp_path / "models.config"
    config.write_text(
        "model_config_list {\n"
        f'  config {{ name: "a" base_path: "{dqn_base}" model_platform: "tensorflow" }}\n'
        f'  config {{ name: "b" base_path: "{other}" model_platform: "tensorflow"\n'
        "    model_version_policy { all {} }\n"
        '    version_labels { key: "stable" value: 1 } version_labels { key: "canary" value: 2 }\n'
        "  }\n}\n"
    )
    with Server(load_model_config_file(str(config)), port=0) as s:
        assert call("POST", f"{s.url}/v1/models/a:predict", GOOD)[0] == 200
        for label in ("stable", "canary"):
            assert call("POST", f"{s.url}/v1/models/b/labels/{label}:predict", GOOD)[0] == 200
        body = call("GET", f"{s.url}/v1/models/b")[1]
        assert [v["version"] for v in body["model_version_status"]] == ["2", "1"]
        body = call("GET", f"{s.url}/v1/models/b/labels/canary")[1]
        assert body["model_version_status"][0]["version"] == "2"
        body = call("GET", f"{s.url}/v1/models/b/labels/canary/metadata")[1]
        assert body["model_spec"]["version"] == "2"


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_hot_swap_under_load_loses_no_request(tmp_path):
    base = str(tmp_path / "m")
    old, new = make_agent("dqn", seed=0), make_agent("dqn", seed=7)
    tfrl.export.export(old, base)
    obs = observations(4)
    body = {"inputs": obs.tolist()}
    with Server([ModelConfig(MODEL, base)], port=0, poll_interval=0.1) as s:
        url = predict_url(s)
        q_old = call("POST", url, body)[1]["outputs"]["q_values"]
        stop = time.monotonic() + 60

        def client(_):
            results = []
            while time.monotonic() < stop and len(results) < 400:
                results.append(call("POST", url, body))
                answer = results[-1][1].get("outputs", {}).get("q_values")
                if answer not in (None, q_old) and len(results) > 20:
                    break
            return results

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(client, i) for i in range(8)]
            time.sleep(0.3)
            tfrl.export.export(new, base)  # version 2 appears mid-load
            results = [r for f in futures for r in f.result()]
        errors = [r for r in results if r[0] != 200]
        assert errors == []
        answers = {json.dumps(r[1]["outputs"]["q_values"]) for r in results}
        assert len(answers) == 2  # both versions answered, nothing else

        def states():
            status = call("GET", f"{s.url}/v1/models/{MODEL}")[1]["model_version_status"]
            return [(v["version"], v["state"]) for v in status]

        # Version 1 is UNLOADING until its last request is answered and its session closed.
        assert wait_for(lambda: states() == [("2", "AVAILABLE"), ("1", "END")]), states()
        q_new = call("POST", url, body)[1]["outputs"]["q_values"]
        assert q_new != q_old


def test_model_without_versions_is_unavailable_until_exported(tmp_path, dqn_agent):
    base = tmp_path / "later"
    base.mkdir()
    (base / ".1.tmp-xyz").mkdir()  # an export in progress: ignored
    with Server([ModelConfig(MODEL, str(base))], port=0, poll_interval=0.1) as s:
        status, body = call("POST", predict_url(s), GOOD)
        assert status == 404  # as TF Serving
        assert f"Servable not found for request: Latest({MODEL})" in body["error"]
        assert str(tmp_path) not in body["error"]
        tfrl.export.export(dqn_agent, str(base))
        assert wait_for(lambda: call("POST", predict_url(s), GOOD)[0] == 200)
