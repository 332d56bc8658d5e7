"""Answers that look successful and are not: what a proxy, a cut connection or a bad day upstream can hand a client.

Each kind is a 200 the server must not take for images (shared notes "openai-images-api.md" §3.3 describe the
real shape): a damaged picture under valid base64, a body that is not JSON or not an images response, or a body
that stops arriving. `Gate` holds a request after it was read, so a test can change the world (fill a disk,
remove a folder) at the one moment that matters, then let the answer go.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

IMAGE_FAULTS = ("truncated_image", "corrupt_image")
BODY_FAULTS = ("malformed_json", "html_page", "empty_data", "stalled_body", "stream_error")
BROKEN_ANSWERS = IMAGE_FAULTS + BODY_FAULTS
Event = tuple[str, bytes]  # a server-sent event: its name and its data line
HTML_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    "<body><h1>502 Bad Gateway</h1><p>The upstream server did not answer in time.</p></body></html>\n"
)


@dataclass(slots=True)
class Gate:
    """Holds a request after it is read (or a streamed answer after `after_events` events): `arrived` is set
    then, and the rest waits for `release()`."""

    after_events: int = 0
    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()


def truncate(data: bytes) -> bytes:
    """The first half: the headers still parse, the pixels stop in the middle."""
    return data[: len(data) // 2]


def corrupt(data: bytes) -> bytes:
    """Every byte of the second half inverted: the size and headers stay, the pixel data is garbage."""
    middle = len(data) // 2
    return data[:middle] + bytes(byte ^ 0xFF for byte in data[middle:])


OUTPUT_MODERATION: dict[str, object] = {
    "message": (
        "Your request was rejected by the safety system: the generated image was flagged. safety_violations=[violence]."
    ),
    "type": "image_generation_user_error",
    "param": None,
    "code": "moderation_blocked",
    "moderation_details": {"moderation_stage": "output", "categories": ["violence"]},
}


def _damaged(item: dict[str, object], kind: str) -> dict[str, object]:
    damage = truncate if kind == "truncated_image" else corrupt
    picture = base64.b64decode(str(item["b64_json"]))
    return item | {"b64_json": base64.b64encode(damage(picture)).decode("ascii")}


def damage_images(body: dict[str, object], kind: str, indexes: Sequence[int] | None) -> dict[str, object]:
    """`body` (a 200 images answer) with the images at `indexes` (all when None) truncated or corrupted."""
    data = body.get("data")
    assert isinstance(data, list)
    return body | {
        "data": [
            _damaged(item, kind) if indexes is None or index in indexes else item for index, item in enumerate(data)
        ]
    }


def broken_body(body: dict[str, object], kind: str) -> tuple[bytes, str]:
    """The bytes and content type a `BODY_FAULTS` answer sends instead of `body` (stalled_body: all of them)."""
    if kind == "html_page":
        return HTML_PAGE.encode("utf-8"), "text/html; charset=utf-8"
    if kind == "empty_data":
        body = body | {"data": []}
    encoded = json.dumps(body).encode("utf-8")
    if kind == "malformed_json":
        encoded = encoded[: len(encoded) // 2]
    return encoded, "application/json"


def encode_events(events: Sequence[tuple[str, dict[str, object]]]) -> list[Event]:
    return [(name, json.dumps(data).encode("utf-8")) for name, data in events]


def spoil_events(
    events: Sequence[tuple[str, dict[str, object]]], kind: str, indexes: Sequence[int] | None
) -> list[Event]:
    """A streamed answer spoiled like `damage_images` / `broken_body` spoil a plain one; "stream_error" ends the
    stream with an error event (moderation at the output stage) where the images would have come."""
    completed = [name for name, _ in events if name.endswith(".completed")]
    spoiled: list[tuple[str, dict[str, object]]] = []
    seen = 0
    for name, data in events:
        if name.endswith(".completed"):
            seen += 1
            if kind == "empty_data":
                continue
            if kind == "stream_error":
                spoiled.append(("error", {"type": "error", "error": OUTPUT_MODERATION}))
                break
            if kind in IMAGE_FAULTS and (indexes is None or seen - 1 in indexes):
                data = _damaged(data, kind)
        spoiled.append((name, data))
    encoded = encode_events(spoiled)
    if kind == "malformed_json" and completed:
        name, line = encoded[-1]
        encoded[-1] = (name, line[: len(line) // 2])
    return encoded
