"""Helpers for the job tests (a module, not conftest, so test files can import it)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

Condition = Callable[[], bool | Awaitable[bool]]


async def eventually(condition: Condition, within: float = 5.0, every: float = 0.02) -> None:
    """Wait until `condition` holds (it may be async), or fail after `within` seconds."""
    with anyio.fail_after(within):
        while True:
            value = condition()
            if not isinstance(value, bool):
                value = await value
            if value:
                return
            await anyio.sleep(every)
