"""TF Serving's version layout: `<base_path>/<N>/` with N a non-negative integer.

TF Serving's file-system poller counts only directories whose name is an
integer; anything else (such as the `.3.tmp-…` directories that atomic writes
use) is ignored. tfrl's exporter and its server share these rules.
"""

from __future__ import annotations

import os

__all__ = ["SAVED_MODEL_FILES", "is_version_name", "list_versions", "next_version"]

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")


def is_version_name(name: str) -> bool:
    """True when `name` is what TF Serving accepts as a version directory."""
    return name.isascii() and name.isdigit()


def list_versions(base_path: str) -> list[int]:
    """Sorted integer versions under `base_path` that hold a SavedModel.

    A missing `base_path` has no versions.
    """
    try:
        names = os.listdir(base_path)
    except (FileNotFoundError, NotADirectoryError):
        return []
    versions = []
    for name in names:
        path = os.path.join(base_path, name)
        if not (is_version_name(name) and os.path.isdir(path)):
            continue
        if any(os.path.isfile(os.path.join(path, f)) for f in SAVED_MODEL_FILES):
            versions.append(int(name))
    return sorted(versions)


def next_version(base_path: str) -> int:
    """One more than the highest integer-named directory (any content), or 1."""
    try:
        names = os.listdir(base_path)
    except (FileNotFoundError, NotADirectoryError):
        return 1
    taken = [int(n) for n in names if is_version_name(n)]
    return max(taken, default=0) + 1
