"""The C allocator's arenas, bounded for a threaded service process.

glibc gives each thread that meets a busy allocator an arena of its own, up to 8 per core, and keeps the memory
freed in each: under 8 concurrent clients the service's 40 request threads grew its resident memory by ~340 MB
that it never gave back (bench/bench_memory.py: +450 MB over the first 800 recommendations with glibc's default,
+109 MB with 2 arenas, flat after either). `footfit serve` bounds them (setting service.malloc_arenas): at once in
its own process with mallopt, and through MALLOC_ARENA_MAX for the worker processes it starts. Elsewhere than
glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)
M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)


def bound_malloc_arenas(arenas: int) -> bool:
    """At most `arenas` allocator arenas in this process and the processes it starts; False where the C library is
    not glibc (nothing changed)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = libc.mallopt if libc is not None else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None or mallopt(M_ARENA_MAX, arenas) != 1:
        log.info("malloc arenas not bounded: the C library is not glibc")
        return False
    os.environ["MALLOC_ARENA_MAX"] = str(arenas)
    return True
