"""The server keeps the memory a job frees for the next job (glibc's malloc, Linux).

By default glibc returns every large block (>= 32 MiB at most) to the kernel when it is freed, and a
thread other than the main one allocates in an arena of 64 MiB heaps, so a block that large always
comes fresh from the kernel: each 128 MB volume of every job is faulted in page by page again. Measured
on a 512 x 512 x 256 model-free inpaint (``Testing/benchmarks/bench_remote.py``): 0.2-1.6 s of system
time per job, more as the process ages, against none when freed memory is kept (user time may rise a
little: the kept heap is not always backed by huge pages). :func:`keep_freed_memory`
sets one malloc arena (every thread allocates from the main heap, which grows without bound), and
thresholds of 2 GiB for serving blocks by ``mmap`` and for trimming the heap. The process's resident
memory then stays at its largest job's peak (``nodsynth serve --return-freed-memory`` keeps glibc's
defaults). It must run before the server starts its threads.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
KEEP_BYTES = 2**31 - 1
"""The thresholds, in bytes: the largest value ``mallopt`` takes (a C int)."""


def keep_freed_memory() -> bool:
    """Apply the module docstring's malloc settings; ``False`` (and nothing changed) where the C library
    has no glibc ``mallopt`` (macOS, musl, Windows)."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        log.info("no glibc mallopt here: freed memory is returned to the system as usual")
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(option, value) == 1 for option, value in
               ((M_ARENA_MAX, 1), (M_MMAP_THRESHOLD, KEEP_BYTES), (M_TRIM_THRESHOLD, KEEP_BYTES)))
