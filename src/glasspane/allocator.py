"""Process-wide tuning of glibc's allocator for streaming large buffers.

Conversions allocate and free megabyte-sized buffers at a high rate.  By default glibc serves
each from a fresh mmap and returns it on free, so every buffer pays page faults on first touch;
on virtual machines (these among them) that costs more than the copy itself, several times
over.  Raising the mmap and trim thresholds keeps freed buffers in the heap for reuse.  Memory
stays bounded by the working set (a few buffers in flight), not by the disk's size.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def tune_allocator() -> bool:
    """Apply the thresholds; False where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, 64 << 20) and mallopt(M_TRIM_THRESHOLD, 128 << 20))
