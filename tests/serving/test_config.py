import pytest

from tfrl.errors import ConfigError
from tfrl.serving import ModelConfig, load_model_config_file, model_configs

CONFIG = """
model_config_list {
  config { name: "cartpole_dqn" base_path: "/models/cartpole_dqn" model_platform: "tensorflow" }
  config {
    name: "cartpole_ppo"
    base_path: "/models/cartpole_ppo"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 1 versions: 2 } }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 2 }
  }
}
"""


def write(tmp_path, text):
    path = tmp_path / "models.config"
    path.write_text(text)
    return str(path)


def test_parses_tf_serving_models_config(tmp_path):
    dqn, ppo = load_model_config_file(write(tmp_path, CONFIG))
    assert (dqn.name, dqn.base_path, dqn.policy, dqn.num_versions) == (
        "cartpole_dqn",
        "/models/cartpole_dqn",
        "latest",
        1,
    )
    assert (ppo.policy, ppo.versions, ppo.labels) == (
        "specific",
        (1, 2),
        {"stable": 1, "canary": 2},
    )
    assert dqn.wanted([1, 2, 5]) == [5]
    assert ppo.wanted([1, 2, 5]) == [1, 2]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model_config_list { config { name: 3 } }", r"not a text-format ModelServerConfig"),
        ("", r"no model_config_list with at least one config"),
        (
            'model_config_list { config { name: "../x" base_path: "/m" } }',
            r"Model name '\.\./x' is not allowed",
        ),
        (
            'model_config_list { config { name: "a/b" base_path: "/m" } }',
            r"Model name 'a/b' is not allowed",
        ),
        (
            'model_config_list { config { name: "m" base_path: "/m" model_platform: "onnx" } }',
            r"model_platform 'onnx'; only 'tensorflow'",
        ),
        (
            'model_config_list { config { name: "m" base_path: "/m" } '
            'config { name: "m" base_path: "/n" } }',
            r"\['m'\] appear more than once",
        ),
        (
            'model_config_list { config { name: "m" base_path: "/m" model_version_policy '
            '{ specific { versions: 1 } } version_labels { key: "x" value: 2 } } }',
            r"labels 'x' as version 2, which its version policy \(specific\) does not serve",
        ),
    ],
)
def test_bad_configs(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_model_config_file(write(tmp_path, text))


def test_a_version_directory_as_base_path_gets_a_hint(tmp_path, caplog):
    version = tmp_path / "m" / "3"
    version.mkdir(parents=True)
    model_configs("m", str(tmp_path / "m"))
    assert not caplog.records
    (version / "saved_model.pb").write_bytes(b"")
    model_configs("m", str(version))
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert f"pass its parent {tmp_path / 'm'}" in caplog.text


def test_model_configs_arguments(tmp_path):
    assert model_configs(None, str(tmp_path))[0].name == "default"
    with pytest.raises(ConfigError, match="Nothing to serve"):
        model_configs()
    with pytest.raises(ConfigError, match="not both"):
        model_configs("m", str(tmp_path), "models.config")
    with pytest.raises(ConfigError, match="is not a directory"):
        model_configs("m", str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="Cannot read model config file"):
        model_configs(model_config_file=str(tmp_path / "missing.config"))
    with pytest.raises(ConfigError, match="version policy 'newest'"):
        ModelConfig("m", "/m", policy="newest")
