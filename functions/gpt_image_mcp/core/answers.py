"""What an Images API answer must be, and what the user is told when a 200 is not one.

A 200 is no proof of images: a proxy can answer with its own HTML page, a cut connection can end a JSON body
early, an answer can carry an empty `data` list. Each gets its own message naming what came back (status,
content type, size, first bytes, request id), so a person can tell a proxy's page from OpenAI's answer. None of
them is retried: the request reached the endpoint, and OpenAI may have processed (and billed) it.
"""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from gpt_image_mcp.core.errors import UpstreamError

NOT_RETRIED = "OpenAI may have processed (and billed) the request, so it was not sent again."
_KEY = b'"b64_json"'
Encoded = memoryview | str  # a base64 value: a view of the answer's bytes, or a string when it was parsed whole
_ECHOED = ("size", "quality", "background", "output_format")
_QUOTED_BYTES = 80


@dataclass(frozen=True, slots=True)
class UpstreamResult:
    """A paid answer, decoded: the images, the usage OpenAI reported, and the settings it resolved."""

    images: list[bytes]
    usage: dict[str, Any] | None
    echoed: dict[str, Any]  # size, quality, background, output_format as the API resolved them
    request_id: str | None
    attempts: int
    notes: list[str] = field(default_factory=list)  # what the user should know about the answer (broken images)
    partial_images: int = 0  # previews streamed before the images (each is billed as 100 output tokens)

    def manifest(self) -> dict[str, Any]:
        """Everything but the image bytes, as JSON-ready data: what a cache keeps beside the images."""
        return {
            "count": len(self.images),
            "usage": self.usage,
            "echoed": self.echoed,
            "request_id": self.request_id,
            "attempts": self.attempts,
            "notes": self.notes,
            "partial_images": self.partial_images,
        }

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any], images: list[bytes]) -> UpstreamResult:
        return cls(
            images=images,
            usage=manifest.get("usage"),
            echoed=dict(manifest.get("echoed") or {}),
            request_id=manifest.get("request_id"),
            attempts=int(manifest.get("attempts") or 1),
            notes=list(manifest.get("notes") or []),
            partial_images=int(manifest.get("partial_images") or 0),
        )


@dataclass(frozen=True, slots=True)
class Received:
    """An HTTP answer as it arrived, before anything is made of it."""

    status: int
    content_type: str
    body: bytes | bytearray  # all of it, or (a stream) its first bytes
    request_id: str | None
    length: int | None = None  # a stream's length, when `body` holds only its start

    def describe(self) -> str:
        """'HTTP 200, text/html, 161 bytes starting "<!DOCTYPE html>...", request id req_1'."""
        length = len(self.body) if self.length is None else self.length
        start = self.body[:_QUOTED_BYTES].decode("utf-8", "replace")
        more = "..." if length > _QUOTED_BYTES else ""
        ref = f", request id {self.request_id}" if self.request_id else ", no request id"
        kind = self.content_type or "no content type"
        return f"HTTP {self.status}, {kind}, {length:,} bytes starting {start + more!r}{ref}"


def not_images(received: Received, problem: str, where: str) -> UpstreamError:
    """The error for a 200 that is not an images answer: what is wrong, what came back, and what to check."""
    proxy = "" if "api.openai.com" in where else f" {where} (OPENAI_BASE_URL) may be a proxy answering for OpenAI."
    return UpstreamError(
        f"The Images API at {where} answered, but not with images: {problem}. What came back: "
        f"{received.describe()}.{proxy} {NOT_RETRIED}",
        category="not_images",
        status=received.status,
        request_id=received.request_id,
    )


def load_json(body: bytes | bytearray) -> tuple[Any, list[Encoded]]:
    """The JSON document with each `b64_json` value taken out (left as ""), and those values in order, as views
    of `body`: megabytes of base64 are neither parsed as JSON nor copied, only the small rest is. Text this cannot
    take apart safely (an escape in a value, a key inside a string) is parsed whole, its values read from it.
    Raises ValueError when `body` is not JSON."""
    view, parts, position = memoryview(body), [], 0
    values: list[Encoded] = []
    while (key := body.find(_KEY, position)) >= 0:
        start = _after(body, _after(body, key + len(_KEY), b":"), b'"')
        end = body.find(b'"', start) if start > 0 else -1
        if end < 0 or body[key - 1 : key] == b"\\" or body.find(b"\\", start, end) >= 0:
            return _loaded_whole(body)
        parts.append(view[position:start])
        values.append(view[start:end])
        position = end
    if not values:
        return _loaded_whole(body)
    parts.append(view[position:])
    try:
        document = json.loads(b"".join(parts))
    except ValueError:  # reported on the whole text, where its positions mean something
        return _loaded_whole(body)
    if _empty_values(document) != len(values):  # the text was not what it looked like: read it properly
        return _loaded_whole(body)
    return document, values


def _after(body: bytes | bytearray, position: int, token: bytes) -> int:
    """The offset just past `token`, which must follow `position` after optional whitespace; -1 when it does not."""
    while body[position : position + 1] in (b" ", b"\t", b"\n", b"\r"):
        position += 1
    return position + 1 if body[position : position + 1] == token else -1


def _empty_values(document: Any) -> int:
    if isinstance(document, dict):
        empty = int(document.get("b64_json") == "")
        return empty + sum(_empty_values(value) for key, value in document.items() if key != "b64_json")
    if isinstance(document, list):
        return sum(_empty_values(item) for item in document)
    return 0


def _loaded_whole(body: bytes | bytearray) -> tuple[Any, list[Encoded]]:
    document = json.loads(body)
    return document, _b64_values(document)


def _b64_values(document: Any) -> list[Encoded]:
    if isinstance(document, dict):
        own = [document["b64_json"]] if isinstance(document.get("b64_json"), str) else []
        return own + [found for key, value in document.items() if key != "b64_json" for found in _b64_values(value)]
    if isinstance(document, list):
        return [found for item in document for found in _b64_values(item)]
    return []


def decode_b64(encoded: Encoded) -> bytes:
    """Base64 to bytes; binascii.Error when the padding is wrong (other stray characters are skipped, and the
    image they spoil fails its decoding later)."""
    return binascii.a2b_base64(encoded)


def images_answer(received: Received, where: str, attempts: int) -> UpstreamResult:
    """Decode a 200 images answer (JSON with base64 images); anything else raises a precise `UpstreamError`."""
    media_type = received.content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise not_images(received, f"the content type is {media_type or 'missing'}, not application/json", where)
    try:
        document, encoded = load_json(received.body)
    except ValueError as error:
        raise not_images(received, f"its JSON does not parse ({error}; the body may be cut short)", where) from None
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, list):
        raise not_images(received, "the JSON has no 'data' list of images", where)
    if not data:
        raise not_images(received, "its 'data' list is empty: OpenAI returned no image", where)
    if len(encoded) != len(data):
        encoded = [item.get("b64_json") if isinstance(item, dict) else None for item in data]  # type: ignore[misc]
    images = [
        _image(item, value, index, len(data), received, where)
        for index, (item, value) in enumerate(zip(data, encoded, strict=True))
    ]
    usage = document.get("usage")
    return UpstreamResult(
        images=images,
        usage=usage if isinstance(usage, dict) else None,
        echoed={key: document[key] for key in _ECHOED if document.get(key) is not None},
        request_id=received.request_id,
        attempts=attempts,
    )


def _own_b64(item: object) -> Encoded | None:
    value = item.get("b64_json") if isinstance(item, dict) else None
    return value if isinstance(value, str) else None


def _image(item: object, encoded: Encoded | None, index: int, count: int, received: Received, where: str) -> bytes:
    which = f"image {index + 1} of {count}"
    if not encoded:
        has_url = isinstance(item, dict) and "url" in item
        url = " (it has a 'url': GPT image models answer with base64 only)" if has_url else ""
        raise not_images(received, f"{which} has no 'b64_json' data{url}", where)
    try:
        return decode_b64(encoded)
    except (binascii.Error, ValueError):
        raise not_images(received, f"{which}'s 'b64_json' is not valid base64", where) from None
