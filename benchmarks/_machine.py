"""What machine a benchmark ran on, for the record printed above its table."""

from __future__ import annotations

import os
import platform

import numpy as np


def cpu_name() -> str:
    """The CPU's model name (Linux), else what platform reports."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line() -> str:
    return f"machine: {cpu_name()}, {os.cpu_count()} cores, numpy {np.__version__}"
