"""What an Images API answer must be, and what the user is told when a 200 is not one.

A 200 is no proof of images: a proxy can answer with its own HTML page, a cut connection can end a JSON body
early, an answer can carry an empty `data` list. Each gets its own message naming what came back (status,
content type, size, first bytes, request id), so a person can tell a proxy's page from OpenAI's answer. None of
them is retried: the request reached the endpoint, and OpenAI may have processed (and billed) it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from gpt_image_mcp.core.errors import UpstreamError

NOT_RETRIED = "OpenAI may have processed (and billed) the request, so it was not sent again."
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
    body: bytes  # all of it, or (a stream) its first bytes
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


def images_answer(received: Received, where: str, attempts: int) -> UpstreamResult:
    """Decode a 200 images answer (JSON with base64 images); anything else raises a precise `UpstreamError`."""
    media_type = received.content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise not_images(received, f"the content type is {media_type or 'missing'}, not application/json", where)
    try:
        document = json.loads(received.body)
    except ValueError as error:
        raise not_images(received, f"its JSON does not parse ({error}; the body may be cut short)", where) from None
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, list):
        raise not_images(received, "the JSON has no 'data' list of images", where)
    if not data:
        raise not_images(received, "its 'data' list is empty: OpenAI returned no image", where)
    images = [_image(item, index, len(data), received, where) for index, item in enumerate(data)]
    usage = document.get("usage")
    return UpstreamResult(
        images=images,
        usage=usage if isinstance(usage, dict) else None,
        echoed={key: document[key] for key in _ECHOED if document.get(key) is not None},
        request_id=received.request_id,
        attempts=attempts,
    )


def _image(item: object, index: int, count: int, received: Received, where: str) -> bytes:
    which = f"image {index + 1} of {count}"
    encoded = item.get("b64_json") if isinstance(item, dict) else None
    if not isinstance(encoded, str) or not encoded:
        has_url = isinstance(item, dict) and "url" in item
        url = " (it has a 'url': GPT image models answer with base64 only)" if has_url else ""
        raise not_images(received, f"{which} has no 'b64_json' data{url}", where)
    try:
        return base64.b64decode(encoded)
    except (binascii.Error, ValueError):
        raise not_images(received, f"{which}'s 'b64_json' is not valid base64", where) from None
