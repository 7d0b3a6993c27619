"""This process's resident memory, read after freed memory was given back."""

from __future__ import annotations

import ctypes
import gc
from pathlib import Path


def settled_rss_mb() -> float:
    """RSS in MB after a full collection and ``malloc_trim`` (glibc only).

    Freed heap is returned first, so what is left is memory still held.
    """
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: RSS is read as it is
        pass
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")
