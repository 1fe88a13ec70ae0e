"""Classifier exports: images in, labels + per-class scores out; served with shape checks."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import tfrl
from tests.export.tiny_agents import make_agent
from tests.serving.client import call
from tfrl.errors import ExportError
from tfrl.export.exporter import read_export_info
from tfrl.serving import ModelConfig, Server

ENV_ID = "tfrl/ImageClassification-v0"


@pytest.fixture(scope="module")
def classifier():
    """A small untrained DQN over 8×8 digit images and its classifier export."""
    tf.keras.utils.set_random_seed(0)
    env = tfrl.envs.make(ENV_ID, num_envs=2, seed=0)
    net = tf.keras.Sequential([tf.keras.layers.Flatten(), tf.keras.layers.Dense(2)])
    agent = tfrl.agents.make("ddqn", env, q_network=net)
    return agent, env


def test_serving_default_returns_labels_scores_and_names(classifier, tmp_path):
    agent, env = classifier
    path = tfrl.export.export_classifier(agent, str(tmp_path / "clf"), class_names=["other", "2"])
    assert path.endswith("/clf/1")
    images = env.reset().observation.numpy()
    out = tfrl.load(path).signatures["serving_default"](images=tf.constant(images))
    q_values = agent._q_network(images)[0].numpy()
    np.testing.assert_allclose(out["scores"].numpy(), q_values, rtol=1e-5)
    np.testing.assert_array_equal(out["labels"].numpy(), q_values.argmax(axis=1))
    names = [n.decode() for n in out["label_names"].numpy()]
    assert names == [["other", "2"][i] for i in q_values.argmax(axis=1)]
    # TF-Agents' own signatures stay beside serving_default.
    assert "action" in tfrl.load(path).signatures


def test_check_export_passes_on_a_classifier_export(classifier, tmp_path):
    path = tfrl.export.export_classifier(classifier[0], str(tmp_path / "clf"))
    assert read_export_info(path) == {"serving_default": "domain"}
    version = tfrl.export.check_export(path).versions[0]
    serving = {s.name: s for s in version.signatures}["serving_default"]
    assert serving.inputs == {"images": ("float32", (None, 8, 8, 1))}
    assert serving.outputs == {
        "label_names": ("object", (2,)),
        "labels": ("int64", (2,)),
        "scores": ("float32", (2, 2)),
    }
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "tfrl"), "export", "--check", path],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_non_image_policies_and_bad_names_are_refused(classifier, tmp_path):
    with pytest.raises(ExportError, match="needs image observations"):
        tfrl.export.export_classifier(make_agent("dqn"), str(tmp_path / "a"))
    with pytest.raises(ExportError, match="class_names has 3 names but the policy has 2 labels"):
        tfrl.export.export_classifier(
            classifier[0], str(tmp_path / "b"), class_names=["a", "b", "c"]
        )


def test_served_classifier_answers_one_image_and_rejects_a_wrong_shape(classifier, tmp_path):
    agent, env = classifier
    base = str(tmp_path / "image_classifier")
    tfrl.export.export_classifier(agent, base, class_names=["other", "2"])
    image = env.reset().observation.numpy()[0]
    with Server([ModelConfig("image_classifier", base)], port=0) as server:
        url = f"{server.url}/v1/models/image_classifier:predict"
        status, body = call("POST", url, {"instances": [{"images": image.tolist()}]})
        assert status == 200, body
        (prediction,) = body["predictions"]
        assert prediction["label_names"] in ("other", "2")
        assert len(prediction["scores"]) == 2
        assert prediction["labels"] == int(np.argmax(prediction["scores"]))
        status, body = call("POST", url, {"instances": [np.zeros((28, 28, 1)).tolist()]})
        assert status == 400
        assert "[-1, 8, 8, 1]" in body["error"], body
