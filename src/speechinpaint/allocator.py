"""Give freed buffers back to the system, so a long restore's resident memory follows what it holds.

glibc's malloc serves a large request from its own heap once a buffer of that size has been freed (its
mmap threshold rises with each freed mapping, up to 32 MB), and a heap gives pages back only from its
top: the network's activations, the STFTs and the resampled copies of a long recording, freed in
another order than they came, stay resident. A 2-minute 48 kHz stereo restore peaked at 988 MB with
the default and at 746 MB with every request from MMAP_THRESHOLD up mapped on its own (unmapped when
freed). A fixed threshold also stops the rise. The command line sets it once for its process (forked
batch workers inherit it); the library leaves its caller's allocator as it is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt's parameter number for the threshold (malloc.h), and the size from which requests get their
# own mapping.
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 20


def return_freed_memory() -> bool:
    """Fix glibc's mmap threshold at MMAP_THRESHOLD; False (and nothing done) on another C library."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
