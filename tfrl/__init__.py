"""tfrl: reinforcement learning for TensorFlow and Keras users.

    import tfrl
    trainer = tfrl.train("CartPole-v1", agent="dqn", target_return=475)
    tfrl.export(trainer.agent, "saved_models/cartpole_dqn")

Submodules load on first use, so `import tfrl` is cheap. It keeps third-party
start-up noise (TensorFlow's C++ logs, gym's banner, known deprecation warnings)
off the terminal unless `TFRL_VERBOSE=1`; see `tfrl.console`.
"""

from __future__ import annotations

import importlib
from typing import Any

from tfrl.console import hush_imports as _hush_imports

_hush_imports()

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
    "set_seed": ("tfrl.training.seeding", "set_seed"),
    "evaluate": ("tfrl.training.evaluate", "evaluate"),
    # A callable package: tfrl.export(agent, path) and tfrl.export.check_export(path).
    "export": ("tfrl.export", None),
    "load": ("tfrl.export.exporter", "load"),
    "keras": ("tfrl.keras", None),
    "text": ("tfrl.text", None),
    "distributed": ("tfrl.distributed", None),
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
