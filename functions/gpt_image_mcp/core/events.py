"""A streamed Images API answer (`stream=true`): server-sent events, read as they arrive.

OpenAI sends, per image, `partial_images` previews (`image_generation.partial_image`, or `image_edit.` for
edits) and then the image with its usage (`...completed`); a failure after the 200 arrives as an `error` event.
`EventReader` cuts the byte stream into events without rescanning what it has already seen (an image event is
megabytes long and comes in many chunks); `StreamedAnswer` makes an `UpstreamResult` of them, or says precisely
why they are not one, like `answers.images_answer` does for a plain answer.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass, field
from typing import Any

from gpt_image_mcp.core.answers import Encoded, Received, UpstreamResult, decode_b64, load_json, not_images

_HEAD_BYTES = 80
_ECHOED = ("size", "quality", "background", "output_format")


class StreamedError(Exception):
    """An `error` event: OpenAI failed the request after it had answered 200. `body` is its error object."""

    def __init__(self, body: dict[str, Any], request_id: str | None) -> None:
        super().__init__(str(body.get("message") or "an error event without a message"))
        self.body = body
        self.request_id = request_id


@dataclass(frozen=True, slots=True)
class Partial:
    """A preview of the image in the making: its 0-based number and its bytes."""

    index: int
    data: bytes


class EventReader:
    """Cuts a byte stream into events (name, data). Lines may end in LF or CRLF; several data lines are joined.
    The chunks of an event are kept as they came and joined once it is whole: growing one buffer by every chunk
    would copy a megabyte-long image event many times over."""

    def __init__(self) -> None:
        self._pending: list[bytes] = []  # the start of an event that is not whole yet

    def feed(self, chunk: bytes) -> list[tuple[str, bytes]]:
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n")
        events: list[tuple[str, bytes]] = []
        start = 0
        if self._pending and self._pending[-1].endswith(b"\n") and chunk.startswith(b"\n"):  # a boundary cut in two
            self._pending[-1] = self._pending[-1][:-1]
            start = 1
            self._take(events, b"")
        while (end := chunk.find(b"\n\n", start)) >= 0:
            self._take(events, chunk[start:end])
            start = end + 2
        if start < len(chunk):
            self._pending.append(chunk[start:])
        return events

    def _take(self, events: list[tuple[str, bytes]], tail: bytes) -> None:
        block = b"".join([*self._pending, tail]) if self._pending else tail
        self._pending = []
        if event := _event(block):
            events.append(event)


def _event(block: bytes) -> tuple[str, bytes] | None:
    """The event in `block`: its name, and its data lines joined (one copy of them)."""
    name, data, position, end = "message", [], 0, len(block)
    while position < end:
        line_end = block.find(b"\n", position)
        line_end = end if line_end < 0 else line_end
        colon = block.find(b":", position, line_end)
        field_name = block[position : colon if colon >= 0 else line_end]
        start = line_end if colon < 0 else colon + 1 + (block[colon + 1 : colon + 2] == b" ")
        if field_name == b"event":
            name = block[start:line_end].decode("utf-8", "replace")
        elif field_name == b"data":
            data.append((start, line_end))
        position = line_end + 1
    if not data:
        return None
    view = memoryview(block)
    return name, b"\n".join(view[start:stop] for start, stop in data)


@dataclass(slots=True)
class StreamedAnswer:
    """Gathers a streamed answer event by event (`take`), then gives the result (`result`)."""

    status: int
    content_type: str
    request_id: str | None
    where: str
    head: bytes = b""  # the stream's first bytes, quoted when it is not an images answer
    length: int = 0
    seen: list[str] = field(default_factory=list)
    images: list[bytes] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    echoed: dict[str, Any] = field(default_factory=dict)
    partials: int = 0

    def received(self, chunk: bytes) -> None:
        """Account for the raw bytes of the stream (for messages: its length and first bytes)."""
        if len(self.head) < _HEAD_BYTES:
            self.head += chunk[: _HEAD_BYTES - len(self.head)]
        self.length += len(chunk)

    def take(self, name: str, data: bytes) -> Partial | None:
        """One event: a partial image is returned, the image kept, an error raised (`StreamedError`)."""
        try:
            document, encoded = load_json(data)
        except ValueError as error:
            raise self._wrong(f"its {name} event's data does not parse as JSON ({error})") from None
        if not isinstance(document, dict):
            raise self._wrong(f"its {name} event's data is not a JSON object")
        kind = str(document.get("type") or name)
        self.seen.append(kind)
        if kind == "error" or "error" in document:
            failure = document.get("error")
            raise StreamedError(failure if isinstance(failure, dict) else document, self.request_id)
        if kind.endswith(".partial_image"):
            self.partials += 1
            index = document.get("partial_image_index")
            number = int(index) if isinstance(index, int) else self.partials - 1
            return Partial(number, self._decoded(encoded, kind))
        if kind.endswith(".completed"):
            self.images.append(self._decoded(encoded, kind))
            usage = document.get("usage")
            self.usage = usage if isinstance(usage, dict) else self.usage
            self.echoed |= {key: document[key] for key in _ECHOED if document.get(key) is not None}
        return None

    def result(self, attempts: int) -> UpstreamResult:
        if not self.images:
            events = ", ".join(self.seen) or "none"
            raise self._wrong(f"the stream ended without an image (events: {events})")
        return UpstreamResult(
            images=self.images,
            usage=self.usage,
            echoed=self.echoed,
            request_id=self.request_id,
            attempts=attempts,
            partial_images=self.partials,
        )

    def _decoded(self, encoded: list[Encoded], kind: str) -> bytes:
        if len(encoded) != 1 or not encoded[0]:
            raise self._wrong(f"its {kind} event has no 'b64_json' data")
        try:
            return decode_b64(encoded[0])
        except (binascii.Error, ValueError):
            raise self._wrong(f"its {kind} event's 'b64_json' is not valid base64") from None

    def _wrong(self, problem: str) -> Exception:
        received = Received(self.status, self.content_type, self.head, self.request_id, length=self.length)
        return not_images(received, problem, self.where)
