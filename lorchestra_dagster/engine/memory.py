"""Give the heap a finished job leaves behind back to the operating system.

A job's rows, plans and rendered files are freed when it ends, but glibc keeps the
freed heap for later ``malloc`` calls (``malloc_trim`` is called by free() only for
the top of the main arena, and a long-lived object on top pins it). Run after run
the process then carries the largest job's working set into every later job, and
two jobs running side by side stack their peaks on it. ``release_memory`` after
each job returns the free pages of every arena, so the peak of a run is its largest
job's, not the sum of the jobs before it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache
from typing import Any


@cache
def _libc() -> Any:
    """glibc, or ``None`` where there is none (musl, macOS): nothing to trim there."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return libc


def release_memory() -> bool:
    """``malloc_trim(0)``: free heap pages go back to the OS. True when anything was released."""
    libc = _libc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
