"""Text corpora: the bundled Tiny Shakespeare (offline default) and TFDS by name.

`load_corpus()` reads the copy of Tiny Shakespeare (Karpathy's char-rnn
corpus, public domain, ~1.1 MB) shipped in `tfrl/text/data/`; `load_corpus(
"tfds:tiny_shakespeare")` (or any TFDS text dataset name) reads it through
TensorFlow Datasets, which needs `pip install "tfrl[datasets]"` and a prepared
dataset. `speeches()` splits a play-formatted corpus into (speaker, text).
"""

from __future__ import annotations

import os
import re

from tfrl.errors import ConfigError, MissingDependencyError

__all__ = ["BUNDLED", "load_corpus", "load_tfds", "speeches"]

BUNDLED = "tinyshakespeare"
_DATA = os.path.join(os.path.dirname(__file__), "data")
_SPEECH = re.compile(r"(?:^|\n\n)([A-Z][A-Za-z' ]*):\n(.*?)(?=\n\n|\Z)", re.S)


def load_corpus(name: str = BUNDLED) -> str:
    """The text of a corpus.

    Args:
        name: "tinyshakespeare" (the bundled file, default) or "tfds:<name>"
            for a TensorFlow Datasets text dataset (e.g. "tfds:tiny_shakespeare").
    """
    if name == BUNDLED:
        with open(os.path.join(_DATA, "tinyshakespeare.txt"), encoding="utf-8") as f:
            return f.read()
    if name.startswith("tfds:"):
        return load_tfds(name[len("tfds:") :])
    raise ConfigError(
        f"Unknown corpus {name!r}; use {BUNDLED!r} (bundled, offline) or 'tfds:<dataset>' "
        "such as 'tfds:tiny_shakespeare'."
    )


def load_tfds(name: str = "tiny_shakespeare", split: str = "train", key: str = "text") -> str:
    """All `key` strings of a TFDS split, joined: e.g. the real `tiny_shakespeare` loader.

    Raises:
        MissingDependencyError: tensorflow-datasets is not installed.
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise MissingDependencyError(
            'Loading a TFDS corpus needs tensorflow-datasets: pip install "tfrl[datasets]".'
        ) from e
    try:
        dataset = tfds.load(name, split=split)
    except Exception as e:  # TFDS raises many types for a missing or unprepared dataset.
        raise ConfigError(
            f"TFDS could not load {name!r} split {split!r}: {e}. Use the bundled corpus "
            f"({BUNDLED!r}) offline."
        ) from e
    parts = [example[key].decode("utf-8") for example in tfds.as_numpy(dataset)]
    return "".join(parts)


def speeches(text: str) -> list[tuple[str, str]]:
    """(speaker, speech) pairs of a play-formatted text ("NAME:\\nlines\\n\\n")."""
    return [(m.group(1), m.group(2)) for m in _SPEECH.finditer(text)]
