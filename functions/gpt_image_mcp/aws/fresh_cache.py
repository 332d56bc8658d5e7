"""A per-container memory of positive answers (an active API key, a live OAuth grant), each trusted for a bounded
time: the bound is how long a revocation made elsewhere can go unseen here. Thread-safe; the clock is injected."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

Value = TypeVar("Value")
MAX_ENTRIES = 1024  # past this the memory is dropped whole: simple, and a cold read costs one GetItem


class FreshCache(Generic[Value]):
    def __init__(self, seconds: float, clock: Callable[[], float]) -> None:
        self.seconds = seconds
        self._clock = clock
        self._entries: dict[str, tuple[Value, float]] = {}  # key -> (value, when read)
        self._lock = threading.Lock()

    def get(self, key: str) -> Value | None:
        """The value remembered for `key` if it was read less than `seconds` ago, else None."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or not 0 <= self._clock() - entry[1] < self.seconds:
            return None
        return entry[0]

    def put(self, key: str, value: Value) -> None:
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (value, self._clock())

    def forget(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
