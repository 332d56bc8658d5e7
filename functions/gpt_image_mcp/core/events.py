"""A streamed Images API answer (`stream=true`): server-sent events, read as they arrive.

OpenAI sends, per image, `partial_images` previews (`image_generation.partial_image`, or `image_edit.` for
edits) and then the image with its usage (`...completed`); a failure after the 200 arrives as an `error` event.
`EventReader` cuts the byte stream into events without rescanning what it has already seen (an image event is
megabytes long and comes in many chunks); `StreamedAnswer` makes an `UpstreamResult` of them, or says precisely
why they are not one, like `answers.images_answer` does for a plain answer.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from gpt_image_mcp.core.answers import Received, UpstreamResult, not_images

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
    """Cuts a byte stream into events (name, data). Lines may end in LF or CRLF; several data lines are joined."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._scanned = 0  # no event boundary before this offset

    def feed(self, chunk: bytes) -> list[tuple[str, bytes]]:
        self._buffer += chunk.replace(b"\r\n", b"\n") if b"\r" in chunk else chunk
        events = []
        while (end := self._buffer.find(b"\n\n", max(self._scanned - 1, 0))) >= 0:
            block = bytes(self._buffer[:end])
            del self._buffer[: end + 2]
            self._scanned = 0
            if event := _event(block):
                events.append(event)
        self._scanned = len(self._buffer)
        return events


def _event(block: bytes) -> tuple[str, bytes] | None:
    name, data = "message", []
    for line in block.split(b"\n"):
        field_name, _, value = line.partition(b":")
        value = value[1:] if value.startswith(b" ") else value
        if field_name == b"event":
            name = value.decode("utf-8", "replace")
        elif field_name == b"data":
            data.append(value)
    return (name, b"\n".join(data)) if data else None


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
            document = json.loads(data)
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
            return Partial(int(index) if isinstance(index, int) else self.partials - 1, self._decoded(document, kind))
        if kind.endswith(".completed"):
            self.images.append(self._decoded(document, kind))
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

    def _decoded(self, document: dict[str, Any], kind: str) -> bytes:
        encoded = document.get("b64_json")
        if not isinstance(encoded, str) or not encoded:
            raise self._wrong(f"its {kind} event has no 'b64_json' data")
        try:
            return base64.b64decode(encoded)
        except (binascii.Error, ValueError):
            raise self._wrong(f"its {kind} event's 'b64_json' is not valid base64") from None

    def _wrong(self, problem: str) -> Exception:
        received = Received(self.status, self.content_type, self.head, self.request_id, length=self.length)
        return not_images(received, problem, self.where)
