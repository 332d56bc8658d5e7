"""glibc is told to give large freed buffers back at once; other C libraries are left alone."""

from __future__ import annotations

import platform
import sys

from local_sandbox.memory import return_large_buffers


def test_the_threshold_is_fixed_exactly_where_glibc_runs() -> None:
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert return_large_buffers() is glibc
