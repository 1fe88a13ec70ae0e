"""Shared by the application tests: an application script imported as a module."""

import importlib.util
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def load_app(monkeypatch):
    """load_app("recommendation") → applications/recommendation.py as a module."""

    def load(name: str):
        spec = importlib.util.spec_from_file_location(
            f"{name}_app", os.path.join(ROOT, "applications", f"{name}.py")
        )
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look the module up
        spec.loader.exec_module(module)
        return module

    return load
