import os

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.networks import q_network, q_rnn_network
from tf_agents.policies import greedy_policy, policy_saver, q_policy
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

import tfrl
from tests.export.tiny_agents import KINDS, greedy_actions, make_agent, observations
from tfrl.errors import ExportError, TfrlError
from tfrl.export import SessionModel, export, list_versions, load


@pytest.mark.parametrize("kind", KINDS)
def test_exported_actions_equal_in_memory_policy(kind, agents, exports):
    obs = observations(32)
    expected = greedy_actions(agents[kind].policy, obs)
    loaded = load(exports[kind])
    outputs = loaded.signatures["serving_default"](observation=tf.constant(obs))
    np.testing.assert_array_equal(outputs["action"].numpy(), expected)
    score = "q_values" if kind == "dqn" else "logits"
    assert set(outputs) == {"action", score}
    assert outputs[score].shape == (32, 2)
    # Greedy: the action is the best-scoring one.
    np.testing.assert_array_equal(np.argmax(outputs[score].numpy(), axis=1), expected)
    # TF Serving's loader (graph + session) gives the same.
    model = SessionModel(exports[kind])
    np.testing.assert_array_equal(
        model.run("serving_default", {"observation": obs})["action"], expected
    )
    # TF-Agents' own action signature is there and agrees.
    step = ts.restart(tf.constant(obs), batch_size=32)
    np.testing.assert_array_equal(loaded.action(step).action.numpy(), expected)
    model.close()


def test_layout_and_signatures(exports):
    path = exports["dqn"]
    assert os.path.basename(path) == "1"
    assert os.path.isfile(os.path.join(path, "saved_model.pb"))
    assert os.path.isdir(os.path.join(path, "variables"))
    model = SessionModel(path)
    assert set(model.signature_defs) == {
        "action",
        "get_initial_state",
        "get_metadata",
        "get_train_step",
        "serving_default",
    }
    inp = model.inputs["serving_default"]["observation"]
    assert (inp.dtype, inp.shape) == (tf.float32, (None, 4))
    assert model.outputs["serving_default"]["q_values"].shape == (None, 2)
    model.close()


def test_versions_count_up_and_explicit_version(tmp_path):
    policy = make_agent("dqn").policy
    base = str(tmp_path / "m")
    assert export(policy, base).endswith(os.path.join("m", "1"))
    assert export(policy, base).endswith(os.path.join("m", "2"))
    assert export(policy, base, version=7).endswith(os.path.join("m", "7"))
    assert list_versions(base) == [1, 2, 7]
    with pytest.raises(ExportError, match=r"m/7 already exists; pass version=None .*\(8\)"):
        export(policy, base, version=7)


def test_tfrl_export_is_callable_both_ways(tmp_path):
    policy = make_agent("dqn").policy
    import tfrl.export as export_module

    assert callable(tfrl.export)
    assert export_module(policy, str(tmp_path / "m")).endswith("1")
    # Every keyword reaches export(), as when calling the function.
    path = export_module(policy, str(tmp_path / "m"), version=5, metadata={"band": [1, 2]})
    from tfrl.export.exporter import read_export_info

    assert path.endswith("5") and read_export_info(path)["metadata"] == {"band": [1, 2]}


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_bad_version_is_rejected(bad, tmp_path):
    with pytest.raises(ExportError, match=r"version=.*pass a positive integer"):
        export(make_agent("dqn").policy, str(tmp_path), version=bad)


def test_metadata_is_kept_beside_the_graph_and_bad_metadata_is_refused_before_writing(tmp_path):
    from tfrl.export.exporter import read_export_info

    policy = make_agent("dqn").policy
    path = export(policy, str(tmp_path / "m"), metadata={"lr_range": [10.0, 2.0]})
    assert read_export_info(path) == {
        "serving_default": "agent",
        "metadata": {"lr_range": [10.0, 2.0]},
    }
    for bad in ({"band": object()}, ["lr_range"]):
        with pytest.raises(ExportError, match="not a JSON-serialisable dict"):
            export(policy, str(tmp_path / "m"), metadata=bad)
    assert list_versions(str(tmp_path / "m")) == [1]


def test_not_a_policy_is_rejected(tmp_path):
    with pytest.raises(ExportError, match="received a Sequential; pass a TF-Agents TFAgent"):
        export(tf.keras.Sequential(), str(tmp_path))
    assert issubclass(ExportError, TfrlError)


def test_failed_export_leaves_no_version(tmp_path, monkeypatch):
    base = tmp_path / "m"

    def crash(self, export_dir, options=None):
        with open(os.path.join(export_dir, "saved_model.pb"), "w") as f:
            f.write("half")
        raise OSError("disk full")

    monkeypatch.setattr(policy_saver.PolicySaver, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        export(make_agent("dqn").policy, str(base))
    assert os.listdir(base) == []
    assert list_versions(str(base)) == []


def test_dict_observations_get_one_input_per_key(tmp_path):
    obs_spec = {
        "position": tensor_spec.TensorSpec((2,), tf.float32, name="position"),
        "velocity": tensor_spec.TensorSpec((3,), tf.float32, name="velocity"),
    }
    action_spec = tensor_spec.BoundedTensorSpec((), tf.int64, 0, 2)
    net = q_network.QNetwork(
        obs_spec,
        action_spec,
        preprocessing_combiner=tf.keras.layers.Lambda(lambda d: tf.concat(tf.nest.flatten(d), -1)),
        fc_layer_params=(8,),
    )
    policy = greedy_policy.GreedyPolicy(
        q_policy.QPolicy(ts.time_step_spec(obs_spec), action_spec, q_network=net)
    )
    path = export(policy, str(tmp_path / "m"))
    model = SessionModel(path)
    assert set(model.inputs["serving_default"]) == {"position", "velocity"}
    rng = np.random.default_rng(0)
    feeds = {
        "position": rng.normal(size=(5, 2)).astype(np.float32),
        "velocity": rng.normal(size=(5, 3)).astype(np.float32),
    }
    step = ts.restart({k: tf.constant(v) for k, v in feeds.items()}, batch_size=5)
    expected = policy.action(step).action.numpy()
    out = model.run("serving_default", feeds)
    np.testing.assert_array_equal(out["action"], expected)
    assert out["q_values"].shape == (5, 3)
    model.close()


def test_nested_observations_raise(tmp_path):
    from tf_agents.policies import random_tf_policy

    obs_spec = {"a": {"b": tensor_spec.TensorSpec((2,), tf.float32)}}
    action_spec = tensor_spec.BoundedTensorSpec((), tf.int64, 0, 1)
    policy = random_tf_policy.RandomTFPolicy(ts.time_step_spec(obs_spec), action_spec)
    with pytest.raises(ExportError, match="one observation array or a flat dict of arrays"):
        export(policy, str(tmp_path / "m"))
    assert not os.path.exists(tmp_path / "m" / "1")


def test_stateful_policy_raises(tmp_path):
    obs_spec = tensor_spec.TensorSpec((4,), tf.float32)
    action_spec = tensor_spec.BoundedTensorSpec((), tf.int64, 0, 1)
    net = q_rnn_network.QRnnNetwork(obs_spec, action_spec, lstm_size=(4,))
    policy = q_policy.QPolicy(ts.time_step_spec(obs_spec), action_spec, q_network=net)
    with pytest.raises(ExportError, match=r"is stateful .* serving_default takes observations"):
        export(policy, str(tmp_path / "m"))
