"""Give large freed buffers back to the system at once, so the server's memory follows its work.

An image call handles megabytes at a time (an answer of ten images is some 17 MB of JSON and 13 MB of images), in
worker threads. glibc's malloc maps buffers above its threshold and unmaps them when freed, but after the first such
free it raises the threshold to that size, and from then on keeps buffers of a few megabytes in its heaps, one per
thread, where they stay after use: the process grows by tens of megabytes it no longer needs. Fixing the threshold
keeps every large buffer mapped and returned when freed. Elsewhere (macOS, Windows, musl) nothing is changed.
"""

from __future__ import annotations

import ctypes
import sys

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
THRESHOLD_BYTES = 128 * 1024  # glibc's own starting value, kept from now on


def return_large_buffers() -> bool:
    """Fix glibc's mmap threshold; True when it was set (Linux with glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES))
