"""Exports for TensorFlow Serving: versioned, atomic, with `serving_default`.

path = tfrl.export(agent, "saved_models/cartpole_dqn")   # .../cartpole_dqn/1
report = tfrl.export.check_export(path)                  # loads it like TF Serving
"""

import sys
import types
from typing import Any

from tfrl.export.check import CheckReport, check_export
from tfrl.export.classifier import classifier_function, export_classifier
from tfrl.export.exporter import export, load
from tfrl.export.session_model import SessionModel
from tfrl.export.signature import SERVING_DEFAULT
from tfrl.export.versions import list_versions, next_version

__all__ = [
    "SERVING_DEFAULT",
    "CheckReport",
    "SessionModel",
    "check_export",
    "classifier_function",
    "export",
    "export_classifier",
    "list_versions",
    "load",
    "next_version",
]


class _CallableModule(types.ModuleType):
    """Lets `tfrl.export(agent, path)` work once this package is imported.

    Importing any `tfrl.export.*` submodule binds the package to the name
    `tfrl.export`, replacing the lazily bound function; calling the package
    calls `export()`, so both spellings keep working.
    """

    def __call__(self, agent_or_policy: Any, base_path: str, **kwargs: Any) -> str:
        return export(agent_or_policy, base_path, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
