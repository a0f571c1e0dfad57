"""Keep a gthread worker's memory flat under load.

Two glibc malloc defaults made a worker grow to ~160 MB in a rush:
- every thread gets its own arena (up to 8 per core), each keeping the
  memory it once used;
- the mmap threshold rises to the size of the largest block freed, so after
  the first login the 19 MiB Argon2 working area of each later login comes
  from an arena and stays there, once per thread.
Two arenas and a fixed 1 MiB threshold (large blocks are mapped and given
back on free) keep the worker near its idle size. Called by wsgi.py in each
worker before it starts threads; a no-op where glibc is not the allocator.
"""
from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


def tune_malloc(arenas: int = 2, mmap_threshold: int = 1 << 20) -> bool:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_ARENA_MAX, arenas)) and bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold))
