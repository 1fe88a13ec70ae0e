"""`tfrl export --check PATH`: load an export as TF Serving would and run its signatures."""

from __future__ import annotations

import sys

__all__ = ["check_main"]


def check_main(path: str) -> int:
    """Prints a report on the export at `path`; returns 0 if it passes, else 1."""
    from tfrl.errors import ExportError
    from tfrl.export.check import check_export

    try:
        report = check_export(path)
    except ExportError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    print(report.format())
    return 0
