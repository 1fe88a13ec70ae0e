"""The exported text generator: TF Serving's loader, saved_model_cli, `tfrl serve`'s REST API."""

import base64
import os
import subprocess
import sys

import pytest

import tfrl.export
from tests.serving.client import call
from tfrl.serving import ModelConfig, Server


@pytest.fixture(scope="module")
def exported(generator, tmp_path_factory):
    base = tmp_path_factory.mktemp("models") / "text_generator"
    return tfrl.export(generator, str(base))


def test_export_passes_the_tf_serving_check(exported):
    report = tfrl.export.check_export(exported)
    names = {s.name: s for s in report.versions[0].signatures}
    assert set(names) == {"serving_default", "generate"}
    assert names["serving_default"].inputs == {"prompts": ("string", (None,))}
    assert names["serving_default"].outputs == {"text": ("object", (2,))}


def test_saved_model_cli_runs_the_export(exported):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    result = subprocess.run(
        [
            cli, "run", "--dir", exported, "--tag_set", "serve", "--signature_def",
            "serving_default", "--input_exprs", "prompts=['ROMEO:']",
        ],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Result for output key text" in result.stdout


def test_tfrl_serve_answers_prompts_with_text(exported, generator):
    base = os.path.dirname(exported)
    with Server([ModelConfig("text_generator", base)], port=0) as server:
        url = f"{server.url}/v1/models/text_generator:predict"
        status, body = call("POST", url, {"instances": ["ROMEO:", ""]})
        assert status == 200, body
        assert [len(t) for t in body["predictions"]] == [16, 16]
        request = {
            "signature_name": "generate",
            "inputs": {"prompts": ["ROMEO:"], "max_length": 24, "temperature": 1.0, "seed": 5},
        }
        status, first = call("POST", url, request)
        assert status == 200, first
        # The reloaded export writes what the in-memory generator writes for that seed.
        assert first["outputs"] == generator.generate(["ROMEO:"], max_length=24, seed=5)
        assert call("POST", url, request) == (200, first)
        # Bad prompts: the error names the prompt (index, text), the characters, the length.
        status, body = call("POST", url, {"instances": ["ROMEO:", "caf\u00e9 \u00e0 l'eau"]})
        assert status == 400
        assert body["error"].startswith(
            "Prompt 1 ('caf\u00e9 \u00e0 l'eau') has characters outside the tokenizer's "
            "vocabulary: ['\u00e9', '\u00e0']. Remove or replace them (the vocabulary is \"\\n !"
        ), body
        status, body = call("POST", url, {"instances": ["ROMEO:", "A" * 33]})
        assert (status, body["error"]) == (
            400,
            "Prompt 1 has 33 characters, more than max_prompt_length=32; shorten it or raise "
            "GenerationConfig.max_prompt_length.",
        )
        # Bytes that are not UTF-8 (sent as b64) get the same clear refusal.
        bad_bytes = base64.b64encode(b"ab\xff\xfecd").decode()
        status, body = call("POST", url, {"instances": [{"b64": bad_bytes}]})
        assert status == 400 and body["error"].startswith("Prompt 0 ('ab"), body
        assert "outside the tokenizer's vocabulary" in body["error"], body
        # Every bad max_length gets the range error, before the sampler sizes its buffer.
        # Without that ordering which op fails first varies from call to call: repeat.
        for bad in (0, 1025, *[-1] * 50):
            request["inputs"]["max_length"] = bad
            status, body = call("POST", url, request)
            assert (status, body["error"]) == (400, f"max_length must be in [1, 1024]; got {bad}")
        status, body = call("POST", url, {"instances": [3]})
        assert status == 400 and "string" in body["error"]
