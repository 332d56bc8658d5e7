"""What every stand-in shares: it runs between `start()` and `stop()`, or for the length of a `with` block."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class StartStop:
    """`with standin:` is `standin.start()` ... `standin.stop()`; subclasses define both."""

    __slots__ = ()

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
