import json
import os
import shutil
import subprocess
import sys

import pytest
import tensorflow as tf

from tests.export.tiny_agents import greedy_actions, observations
from tfrl.errors import ExportError
from tfrl.export import check_export
from tfrl.export.exporter import EXPORT_INFO, read_export_info


def test_check_passes_on_every_kind(exports):
    for path in exports.values():
        report = check_export(path)
        (version,) = report.versions
        names = [s.name for s in version.signatures]
        assert names == [
            "action",
            "get_initial_state",
            "get_metadata",
            "get_train_step",
            "serving_default",
        ]
        serving = version.signatures[-1]
        assert serving.inputs == {"observation": ("float32", (None, 4))}
        assert serving.outputs["action"] == ("int64", (2,))
        assert serving.declared_outputs["action"] == ("int64", (None,))
        assert serving.sample_inputs == {"observation": ("float32", (2, 4))}
        # Declared shapes ([?,4]) and the sample run's (2, 4) read apart.
        text = report.format()
        declared = "      signature:  observation float32 [?,4] -> action int64 [?], "
        run = "      sample run: observation float32 (2, 4) -> action int64 (2,), "
        assert f"    serving_default\n{declared}" in text
        assert declared in text and run in text
        assert text.index(declared) < text.index(run)


def test_check_base_path_checks_each_version(exports, tmp_path):
    base = tmp_path / "m"
    shutil.copytree(exports["dqn"], base / "1")
    shutil.copytree(exports["ppo"], base / "3")
    (base / ".4.tmp-abc").mkdir()  # an interrupted export: ignored, as TF Serving does
    assert [v.version for v in check_export(str(base)).versions] == [1, 3]


def test_missing_saved_model(tmp_path):
    (tmp_path / "m" / "1").mkdir(parents=True)
    with pytest.raises(ExportError, match=r"has no saved_model.pb and no integer version"):
        check_export(str(tmp_path / "m"))
    with pytest.raises(ExportError, match=r"m/1 has no saved_model.pb: it is not a SavedModel"):
        check_export(str(tmp_path / "m" / "1"))
    with pytest.raises(ExportError, match=r"does not exist"):
        check_export(str(tmp_path / "nope"))


def test_non_integer_version_dir(exports, tmp_path):
    shutil.copytree(exports["dqn"], tmp_path / "latest")
    with pytest.raises(ExportError, match=r"directory name 'latest' is not an integer version"):
        check_export(str(tmp_path / "latest"))


def test_missing_variables(exports, tmp_path):
    shutil.copytree(exports["dqn"], tmp_path / "1")
    shutil.rmtree(tmp_path / "1" / "variables")
    with pytest.raises(ExportError, match=r"has no variables/ directory"):
        check_export(str(tmp_path / "1"))


def test_no_serving_default(tmp_path):
    module = tf.Module()
    module.v = tf.Variable(1.0)
    module.f = tf.function(lambda x: {"y": x * module.v}, input_signature=[tf.TensorSpec([None])])
    tf.saved_model.save(module, str(tmp_path / "1"), signatures={"other": module.f})
    with pytest.raises(
        ExportError, match=r"has no 'serving_default' signature \(it has \['other'\]"
    ):
        check_export(str(tmp_path / "1"))


def _save_module(path, fn) -> None:
    """A SavedModel whose serving_default is `fn` of an `observation` batch [None, 4]."""
    module = tf.Module()
    module.v = tf.Variable(1.0)
    module.f = tf.function(
        lambda observation: fn(observation, module.v),
        input_signature=[tf.TensorSpec([None, 4], name="observation")],
    )
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.f})


def test_action_is_required_only_of_agent_exports(tmp_path):
    _save_module(tmp_path / "1", lambda obs, v: {"y": obs * v})
    # Not recorded as an agent export (a domain signature): 'y' alone is fine.
    (serving,) = check_export(str(tmp_path / "1")).versions[0].signatures
    assert serving.outputs == {"y": ("float32", (2, 4))}
    # Recorded by tfrl.export() as an agent export: it must return 'action'.
    info = tmp_path / "1" / EXPORT_INFO
    info.parent.mkdir(exist_ok=True)
    info.write_text(json.dumps({"serving_default": "agent"}))
    with pytest.raises(ExportError, match=r"has no 'action' output \(outputs: \['y'\]\)"):
        check_export(str(tmp_path / "1"))


def test_export_records_agent_and_domain_signatures(exports):
    for path in exports.values():
        assert read_export_info(path) == {"serving_default": "agent"}


def test_non_finite_and_unbatched_outputs_fail(tmp_path):
    _save_module(tmp_path / "a" / "1", lambda obs, v: {"y": obs * v / 0.0})
    with pytest.raises(ExportError, match=r"output 'y' of .* is not finite on sample input"):
        check_export(str(tmp_path / "a"))
    _save_module(tmp_path / "b" / "1", lambda obs, v: {"y": tf.reduce_sum(obs) * v})
    with pytest.raises(ExportError, match=r"output 'y' .* has shape \(\) for a batch of 2"):
        check_export(str(tmp_path / "b"))


def test_saved_model_cli_runs_serving_default(agents, exports):
    obs = observations(3)
    expected = greedy_actions(agents["dqn"].policy, obs)
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    rows = ",".join("[" + ",".join(f"{x:.6f}" for x in row) + "]" for row in obs)
    result = subprocess.run(
        [
            cli,
            "run",
            "--dir",
            exports["dqn"],
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--input_exprs",
            f"observation=[{rows}]",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "Result for output key action:" in out
    assert "Result for output key q_values:" in out
    action_line = out.split("Result for output key action:")[1].strip().splitlines()[0]
    assert action_line == "[" + " ".join(str(a) for a in expected) + "]"
