"""Waiting for something to happen: poll a condition until it holds.

The limit is a guard against a hang, not a claim about speed (benchmarks hold those): it is generous, so a loaded
machine never fails a test that would pass on a quiet one.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import anyio

GUARD_SECONDS = 60.0

Condition = Callable[[], bool | Awaitable[bool]]


async def eventually(condition: Condition, every: float = 0.02) -> None:
    """Wait until `condition` holds (it may be async); fail only if it never does."""
    with anyio.fail_after(GUARD_SECONDS):
        while True:
            value = condition()
            if value if isinstance(value, bool) else await value:
                return
            await anyio.sleep(every)


def wait_until(condition: Callable[[], bool], every: float = 0.05) -> None:
    """`eventually` for synchronous tests."""
    deadline = time.monotonic() + GUARD_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {GUARD_SECONDS:.0f} s")
        time.sleep(every)
