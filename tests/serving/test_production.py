"""Serving under production conditions: big bodies, metrics, the CLI's ports and flags."""

import asyncio
import concurrent.futures
import http.client
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import types

import grpc
import numpy as np
import pytest
import tensorflow as tf
from prometheus_client.parser import text_string_to_metric_families
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.cli.commands import ROOT, TFRL
from tests.serving.client import call, open_loop
from tfrl.serving import ModelConfig, Server

MODEL = "cartpole_dqn"
TINY = json.dumps({"instances": [[0.1, 0.2, 0.3, 0.4]]}).encode()


METRICS = "/monitoring/prometheus/metrics"


@pytest.fixture(scope="module")
def rest_and_grpc(dqn_base):
    """A server with REST, gRPC and Prometheus metrics."""
    with Server([ModelConfig(MODEL, dqn_base)], port=0, grpc_port=0, metrics_path=METRICS) as s:
        yield s


def test_prometheus_metrics_parse_and_count_traffic(rest_and_grpc):
    path, s = METRICS, rest_and_grpc
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(s.grpc_target))

    def scrape():
        connection = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
        connection.request("GET", path)
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type").startswith("text/plain")
        samples = {}
        for family in text_string_to_metric_families(response.read().decode()):
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                samples[key] = sample.value
        return samples

    def requests(samples, entrypoint, status="OK"):
        labels = {
            "model_name": MODEL,
            "version": "1",
            "api": "predict",
            "entrypoint": entrypoint,
            "status": status,
        }
        return samples.get(("tfrl_serving_requests_total", tuple(sorted(labels.items()))), 0)

    before = scrape()
    assert before[("tfrl_serving_loaded_versions", (("model_name", MODEL),))] == 1
    assert before[("tfrl_serving_load_failures_total", (("model_name", MODEL),))] == 0
    url = f"{s.url}/v1/models/{MODEL}:predict"
    for _ in range(3):
        assert call("POST", url, TINY)[0] == 200
    assert call("POST", url, {"instances": [[1, 2]]})[0] == 400
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.inputs["observation"].CopyFrom(tf.make_tensor_proto(np.zeros((2, 4), np.float32)))
    for _ in range(2):
        stub.Predict(request, timeout=30)
    after = scrape()
    assert requests(after, "REST") - requests(before, "REST") == 3
    assert (
        requests(after, "REST", "INVALID_ARGUMENT") - requests(before, "REST", "INVALID_ARGUMENT")
        == 1
    )
    assert requests(after, "GRPC") - requests(before, "GRPC") == 2
    latency = (
        "tfrl_serving_request_latency_seconds_count",
        tuple(
            sorted(
                {
                    "model_name": MODEL,
                    "version": "1",
                    "api": "predict",
                    "entrypoint": "REST",
                }.items()
            )
        ),
    )
    assert after[latency] - before.get(latency, 0) == 4


def test_poll_wait_zero_polls_once(dqn_base, tmp_path, caplog):
    """Versions added later are not loaded, and a version that failed is not retried
    (and the log does not promise a retry)."""
    base = tmp_path / MODEL
    shutil.copytree(os.path.join(dqn_base, "1"), base / "1")
    (base / "3").mkdir()
    (base / "3" / "saved_model.pb").write_bytes(b"not a SavedModel")
    config = ModelConfig(MODEL, str(base), policy="all")
    quiet_but_errors = caplog.at_level(logging.ERROR, logger="tfrl.serving")
    with quiet_but_errors, Server([config], port=0, poll_interval=0) as s:
        shutil.copytree(os.path.join(dqn_base, "1"), base / "2")
        time.sleep(1.0)
        status = call("GET", f"{s.url}/v1/models/{MODEL}")[1]["model_version_status"]
    assert {v["version"]: v["state"] for v in status} == {"1": "AVAILABLE", "3": "END"}
    error = next(v["status"]["error_message"] for v in status if v["version"] == "3")
    assert f"Cannot parse file '<{MODEL}>/3/saved_model.pb': " in error, error  # no b'...'
    assert not error.endswith(".."), error
    failures = [r.getMessage() for r in caplog.records if "failed to load" in r.getMessage()]
    assert len(failures) == 1 and "not retried (the base path is polled only once" in failures[0]


def _env():
    return {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}


def test_cli_port_in_use_fails_with_one_line_before_loading(dqn_base):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [TFRL, "serve", "--model_base_path", dqn_base, "--rest_api_port", str(port)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
            env=_env(),
        )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"tfrl serve: error: Cannot open the REST API on 127.0.0.1:{port}: port {port} is in "
        "use (another server?); pick another with --rest_api_port."
    ]
    assert "available" not in result.stdout + result.stderr  # failed before loading models


@pytest.mark.parametrize(
    "stop, sigint_ignored",
    [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGTERM, True)],
    ids=["ctrl-c", "sigterm", "sigterm-background-job"],
)
def test_cli_serves_rest_grpc_and_metrics(dqn_base, tmp_path, stop, sigint_ignored):
    """REST, gRPC and metrics from one `tfrl serve`; Ctrl-C and SIGTERM both stop it
    cleanly (exit 0, no traceback, nothing leaked), SIGTERM also when SIGINT is
    ignored, as in a script's background job (`tfrl serve ... &`)."""
    config = tmp_path / "monitoring.config"
    config.write_text('prometheus_config { enable: true, path: "/metrics" }\n')
    process = subprocess.Popen(
        [
            TFRL,
            "serve",
            "--model_name",
            MODEL,
            "--model_base_path",
            dqn_base,
            "--rest_api_port",
            "0",
            "--port",
            "0",
            "--monitoring_config_file",
            config,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env=_env(),
        start_new_session=True,  # its own process group, as a terminal's job
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        if sigint_ignored
        else None,
    )
    try:
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            lines.append(process.stdout.readline())
            found = re.search(r"on http://127.0.0.1:(\d+) and gRPC on 127.0.0.1:(\d+)", lines[-1])
            if found or process.poll() is not None:
                break
        assert found, "".join(lines)
        rest, grpc_port = found.groups()
        obs = np.zeros((1, 4), np.float32)
        status, answer = call(
            "POST",
            f"http://127.0.0.1:{rest}/v1/models/{MODEL}:predict",
            {"instances": obs.tolist()},
        )
        assert status == 200 and len(answer["predictions"]) == 1
        stub = prediction_service_pb2_grpc.PredictionServiceStub(
            grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        )
        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL
        request.inputs["observation"].CopyFrom(tf.make_tensor_proto(obs))
        response = stub.Predict(request, timeout=30)
        assert tf.make_ndarray(response.outputs["action"]).tolist() == [
            p["action"] for p in answer["predictions"]
        ]
        connection = http.client.HTTPConnection("127.0.0.1", int(rest), timeout=30)
        connection.request("GET", "/metrics")
        metrics = connection.getresponse().read().decode()
        assert 'entrypoint="GRPC"' in metrics and 'entrypoint="REST"' in metrics
    finally:
        # Ctrl-C in a terminal reaches the whole group (the server and its workers);
        # a process manager's SIGTERM reaches the server.
        if stop == signal.SIGINT:
            os.killpg(process.pid, stop)
        else:
            process.send_signal(stop)
        try:
            output = process.communicate(timeout=60)[0]
        except subprocess.TimeoutExpired:
            # Still a failure, but the server (and its codec workers, which die with it)
            # must not outlive the test.
            process.kill()
            process.communicate()
            raise
    assert process.returncode == 0, output
    assert "Traceback" not in output and "leaked" not in output, output


def test_large_bodies_are_decoded_in_a_worker_beside_grpc(rest_and_grpc, tmp_path, monkeypatch):
    """Bodies over 16 KiB are decoded in a worker process, also while gRPC is active;
    its errors come back intact. Workers are started clean (never a fork of the threaded
    test process, which can hang); a worker killed while gRPC serves is replaced by one
    that does not re-run the program's main script nor import TensorFlow, and the next
    request is answered."""
    script = tmp_path / "main.py"
    script.write_text(f"open({str(tmp_path / 'main-ran')!r}, 'w').close()\n")
    main = types.ModuleType("__main__")
    main.__file__, main.__spec__ = str(script), None
    server = rest_and_grpc
    stub = prediction_service_pb2_grpc.PredictionServiceStub(
        grpc.insecure_channel(server.grpc_target)
    )
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.inputs["observation"].CopyFrom(tf.make_tensor_proto(np.zeros((1, 4), np.float32)))
    stub.Predict(request, timeout=30)
    url = f"{server.url}/v1/models/{MODEL}:predict"
    body = json.dumps({"instances": [[0.5, 0.25, 0.125]] * 1200}).encode()  # 3 values, not 4
    assert len(body) > 16 * 1024
    status, answer = call("POST", url, body)
    assert status == 400
    assert answer["error"].startswith("Input 'observation' has shape [1200, 3]")
    big = {"instances": [[0.5, 0.25, 0.125, 1.0]] * 1200}
    status, answer = call("POST", url, big)
    assert status == 200 and len(answer["predictions"]) == 1200
    assert stub.Predict(request, timeout=30).model_spec.version.value == 1

    medium = server.codec.lanes[0]
    assert [(f["start"], f["tensorflow"]) for f in medium.facts()] == [("spawn", False)]
    killed = medium.pids()
    assert killed, "no medium-body worker was started with the server"
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    monkeypatch.setitem(sys.modules, "__main__", main)  # a script without a main guard
    status, answer = call("POST", url, big, timeout=60)  # bounded: a hang fails here
    monkeypatch.undo()
    assert not (tmp_path / "main-ran").exists(), "the worker re-ran the main script"
    assert status == 200 and len(answer["predictions"]) == 1200
    assert set(medium.pids()).isdisjoint(killed)
    # The replacement says so itself: started clean, without TensorFlow (fast to start).
    assert [(f["start"], f["tensorflow"]) for f in medium.facts()] == [("spawn", False)]
    assert stub.Predict(request, timeout=30).model_spec.version.value == 1


def test_cli_port_errors_come_before_tensorflow_is_imported(dqn_base):
    """A port in use, or --port equal to --rest_api_port, fails in one line naming the
    flags, and before TensorFlow is imported (in well under a second)."""
    script = (
        "import sys; from tfrl.cli.main import main; rc = main(sys.argv[1:]); "
        "print('tensorflow' in sys.modules); sys.exit(rc)"
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cases = {
            ("--rest_api_port", "0", "--port", str(port)): (
                f"Cannot open the gRPC API on 127.0.0.1:{port}: port {port} is in use "
                "(another server?); pick another with --port."
            ),
            ("--rest_api_port", "8601", "--port", "8601"): (
                "--port and --rest_api_port are both 8601; REST and gRPC need different ports "
                "(--port is the gRPC port, as in TF Serving)."
            ),
        }
        for flags, message in cases.items():
            result = subprocess.run(
                [sys.executable, "-c", script, "serve", "--model_base_path", dqn_base, *flags],
                capture_output=True,
                text=True,
                cwd=ROOT,
                timeout=120,
                env=_env(),
            )
            assert result.returncode == 2, result.stderr
            assert result.stderr.strip().splitlines() == [f"tfrl serve: error: {message}"]
            assert result.stdout.strip() == "False"  # TensorFlow was never imported


def test_a_big_grpc_request_is_parsed_off_the_event_loop(rest_and_grpc, monkeypatch):
    """A 100,000-row gRPC Predict sent as float_val (which protobuf's pure-Python runtime
    parses value by value, ~1.4 s) is parsed off the event loop that REST shares, its
    packed floats read as bytes: tiny REST requests sent beside it keep a bounded p99.

    The bound is loose: on the shared 2-core machine p99 measured 87-274 ms with this
    fix against 1,450 ms with parsing on the loop; the 50 ms the 10 MiB REST body
    meets is not met for a big gRPC request yet (the model calls of its 64-row
    batches compete with the tiny requests)."""
    from tfrl.serving import grpc_api

    server, rows, threads = rest_and_grpc, 100_000, []
    parse = grpc_api._parse_predict

    def recording_parse(data):
        threads.append((len(data), threading.current_thread().name))
        return parse(data)

    monkeypatch.setattr(grpc_api, "_parse_predict", recording_parse)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    tensor = request.inputs["observation"]
    tensor.CopyFrom(tf.make_tensor_proto(np.zeros((rows, 4), np.float32)))
    tensor.tensor_content = b""
    tensor.float_val.extend(np.random.default_rng(0).uniform(-1, 1, rows * 4).tolist())
    raw = request.SerializeToString()  # built once here: the client's own cost is not timed
    channel = grpc.insecure_channel(server.grpc_target)
    predict = channel.unary_unary(
        "/tensorflow.serving.PredictionService/Predict",
        request_serializer=None,
        response_deserializer=predict_pb2.PredictResponse.FromString,
    )
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        big = pool.submit(predict, raw, timeout=120)
        latencies = asyncio.run(open_loop(f"{server.url}/v1/models/{MODEL}:predict", big))
        response = big.result()
    channel.close()
    assert response.outputs["action"].tensor_shape.dim[0].size == rows
    assert [name for size, name in threads if size == len(raw)] == ["tfrl-grpc-parse_0"]
    p99 = np.percentile(latencies, 99)
    assert p99 < 0.5, f"tiny REST requests' p99 {p99 * 1e3:.1f} ms beside a big gRPC request"
