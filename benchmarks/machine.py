"""The machine line every benchmark result file starts with."""

from __future__ import annotations

import os
import platform

__all__ = ["describe"]


def describe() -> str:
    """`2 cores, <CPU model>, Linux <release>`."""
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                (line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu
            )
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}"
