"""The C heap of a certsmooth process: keep freed blocks instead of returning them.

By default glibc's ``malloc`` serves blocks above a threshold (128 KiB, raised on the fly
to the largest block freed so far) with a fresh ``mmap`` and gives them back with
``munmap`` when freed, and it trims free memory at the top of the heap above 128 KiB. A
job that allocates the same tensors every batch (noise, activations, gradients) then pays a
page fault per 4 KiB page of each, every batch: a demo CERTIFY chunk took 2.6 million
minor faults and 3.7 s of system time of its 12.7 s (docs/benchmarks.md). With the
thresholds fixed high, freed blocks up to 32 MiB are reused from the heap: 0.11 million
faults, 8.6 s.

:func:`keep_freed_blocks` sets them with ``mallopt`` at the start of every command (the
CLI and the benchmarks). What a process holds never exceeds its peak, which it reached
anyway. Nothing numeric depends on it: torch aligns every CPU tensor to 64 bytes whoever
serves the block. Elsewhere than glibc, or when the user set glibc's own tunables
(``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, ``GLIBC_TUNABLES``), it does
nothing.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1  # glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20  # the largest glibc accepts on 64-bit systems (HEAP_MAX_SIZE / 2)
TRIM_THRESHOLD = 2**30
USER_TUNABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def keep_freed_blocks() -> bool:
    """Fix glibc's mmap and trim thresholds for this process; True if they were set."""
    if not sys.platform.startswith("linux") or any(v in os.environ for v in USER_TUNABLES):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's C library
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
