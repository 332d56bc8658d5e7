"""A clock for tests: epoch seconds that move only when the test moves them (`clock.now += 5`)."""

from __future__ import annotations


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
