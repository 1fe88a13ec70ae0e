"""Which models to serve: one `--model_name/--model_base_path` pair or a `models.config`.

The file is TF Serving's text-format `ModelServerConfig`, parsed with the
`tensorflow-serving-api` protos, so one file configures both servers:

    model_config_list {
      config { name: "cartpole_dqn" base_path: "/models/cartpole_dqn" model_platform: "tensorflow" }
      config {
        name: "cartpole_ppo" base_path: "/models/cartpole_ppo" model_platform: "tensorflow"
        model_version_policy { specific { versions: 1 versions: 2 } }
        version_labels { key: "stable" value: 1 }
        version_labels { key: "canary" value: 2 }
      }
    }

Relative base paths are taken from the current directory, as TF Serving does.
"""

from __future__ import annotations

import dataclasses
import os
import re

from tfrl.errors import ConfigError, MissingDependencyError

__all__ = [
    "ModelConfig",
    "check_name",
    "load_model_config_file",
    "load_monitoring_config_file",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def check_name(name: str) -> bool:
    """True for a safe model name or label: no '/', no '..', no odd characters."""
    return bool(_NAME.match(name)) and ".." not in name


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """One served model.

    Attributes:
        name: the name in URLs (`/v1/models/<name>`).
        base_path: directory holding integer version directories.
        policy: which versions to serve: "latest" (default), "all" or "specific".
        num_versions: with "latest", how many of the newest to serve. Default 1.
        versions: with "specific", the version numbers.
        labels: version labels (e.g. {"stable": 1}) for `/labels/<label>` URLs.
    """

    name: str
    base_path: str
    policy: str = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()
    labels: dict[str, int] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not check_name(self.name):
            raise ConfigError(
                f"Model name {self.name!r} is not allowed; use letters, digits, '_', '-' and "
                "'.' (no '/' or '..'), e.g. 'cartpole_dqn'."
            )
        if not self.base_path:
            raise ConfigError(f"Model {self.name!r} has no base_path; set the export directory.")
        object.__setattr__(self, "base_path", os.path.abspath(self.base_path))
        if self.policy not in ("latest", "all", "specific"):
            raise ConfigError(
                f"Model {self.name!r} has version policy {self.policy!r}; use 'latest', 'all' "
                "or 'specific'."
            )
        if self.policy == "latest" and self.num_versions < 1:
            raise ConfigError(
                f"Model {self.name!r}: latest {{ num_versions: {self.num_versions} }} must be >= 1."
            )
        if self.policy == "specific" and not self.versions:
            raise ConfigError(
                f"Model {self.name!r}: a 'specific' version policy needs at least one version."
            )
        for label, version in self.labels.items():
            if not check_name(label) or label[0].isdigit():
                raise ConfigError(
                    f"Model {self.name!r} has label {label!r}; labels start with a letter and "
                    "hold letters, digits, '_', '-' and '.'."
                )
            if self.policy != "all" and version not in self.wanted([version]):
                raise ConfigError(
                    f"Model {self.name!r} labels {label!r} as version {version}, which its "
                    f"version policy ({self.policy}) does not serve."
                )

    def wanted(self, available: list[int]) -> list[int]:
        """The versions to serve out of the `available` (sorted) ones."""
        if self.policy == "all":
            return list(available)
        if self.policy == "specific":
            return [v for v in available if v in self.versions]
        return sorted(available)[-self.num_versions :]


def load_model_config_file(path: str) -> list[ModelConfig]:
    """Reads a TF Serving `models.config` (text-format ModelServerConfig).

    Raises:
        MissingDependencyError: tensorflow-serving-api is not installed.
        ConfigError: the file is missing, does not parse, or has a bad entry.
    """
    try:
        from google.protobuf import text_format
        from tensorflow_serving.config import model_server_config_pb2
    except ImportError as e:
        raise MissingDependencyError(
            "Reading a models.config needs tensorflow-serving-api, a tfrl dependency that "
            'is missing here: pip install "tensorflow-serving-api==2.15.1" (or reinstall tfrl).'
        ) from e
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"Cannot read model config file {path!r}: {e.strerror}.") from e
    proto = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as e:
        raise ConfigError(
            f"{path}: not a text-format ModelServerConfig ({e}). Expected "
            'model_config_list { config { name: "m" base_path: "/models/m" '
            'model_platform: "tensorflow" } }.'
        ) from e
    if proto.WhichOneof("config") != "model_config_list" or not proto.model_config_list.config:
        raise ConfigError(f"{path}: no model_config_list with at least one config entry.")
    models = []
    for entry in proto.model_config_list.config:
        if entry.model_platform not in ("", "tensorflow"):
            raise ConfigError(
                f"{path}: model {entry.name!r} has model_platform {entry.model_platform!r}; "
                "only 'tensorflow' is served."
            )
        which = entry.model_version_policy.WhichOneof("policy_choice") or "latest"
        policy = entry.model_version_policy
        models.append(
            ModelConfig(
                name=entry.name,
                base_path=entry.base_path,
                policy=which,
                num_versions=(policy.latest.num_versions or 1) if which == "latest" else 1,
                versions=tuple(policy.specific.versions) if which == "specific" else (),
                labels=dict(entry.version_labels),
            )
        )
    names = [m.name for m in models]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{path}: model name(s) {duplicates} appear more than once.")
    return models


def load_monitoring_config_file(path: str) -> str | None:
    """The Prometheus metrics path a TF Serving `--monitoring_config_file` asks for.

    The file is text-format `MonitoringConfig`, as for TF Serving:

        prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }

    Returns None when `enable` is false; the path defaults to TF Serving's
    "/monitoring/prometheus/metrics".

    Raises:
        ConfigError: the file is missing or does not parse.
    """
    from google.protobuf import text_format

    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"Cannot read monitoring config file {path!r}: {e.strerror}.") from e
    proto = _monitoring_config_class()()
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as e:
        raise ConfigError(
            f"{path}: not a text-format MonitoringConfig ({e}). Expected "
            'prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }.'
        ) from e
    prometheus = proto.prometheus_config
    if not prometheus.enable:
        return None
    return prometheus.path or DEFAULT_METRICS_PATH


DEFAULT_METRICS_PATH = "/monitoring/prometheus/metrics"


def _monitoring_config_class() -> type:
    """TF Serving's MonitoringConfig message (tensorflow-serving-api does not ship it)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    name = "tfrl_serving_monitoring.proto"
    pool = descriptor_pool.DescriptorPool()
    file = descriptor_pb2.FileDescriptorProto(name=name, package="tensorflow.serving")
    prometheus = file.message_type.add(name="PrometheusConfig")
    field = descriptor_pb2.FieldDescriptorProto
    prometheus.field.add(name="enable", number=1, type=field.TYPE_BOOL, label=field.LABEL_OPTIONAL)
    prometheus.field.add(name="path", number=2, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    monitoring = file.message_type.add(name="MonitoringConfig")
    monitoring.field.add(
        name="prometheus_config",
        number=1,
        type=field.TYPE_MESSAGE,
        type_name=".tensorflow.serving.PrometheusConfig",
        label=field.LABEL_OPTIONAL,
    )
    pool.Add(file)
    descriptor = pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig")
    return message_factory.MessageFactory(pool).GetPrototype(descriptor)
