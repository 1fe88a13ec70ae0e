"""tfrl: reinforcement learning for TensorFlow and Keras users.

    import tfrl
    trainer = tfrl.train("CartPole-v1", agent="dqn", target_return=475)
    tfrl.export(trainer.agent, "saved_models/cartpole_dqn")

Submodules load on first use, so `import tfrl` is cheap and `tfrl.console.quiet()`
can run before TensorFlow is imported.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    # name: (module, attribute or None for the module itself)
    "envs": ("tfrl.envs", None),
    "agents": ("tfrl.agents", None),
    "training": ("tfrl.training", None),
    "callbacks": ("tfrl.training.callbacks", None),
    "errors": ("tfrl.errors", None),
    "console": ("tfrl.console", None),
    "Trainer": ("tfrl.training.trainer", "Trainer"),
    "History": ("tfrl.training.history", "History"),
    "train": ("tfrl.training.run", "train"),
    "evaluate": ("tfrl.training.evaluate", "evaluate"),
    # A callable package: tfrl.export(agent, path) and tfrl.export.check_export(path).
    "export": ("tfrl.export", None),
    "load": ("tfrl.export.exporter", "load"),
    "text": ("tfrl.text", None),
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'tfrl' has no attribute {name!r}")
    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
