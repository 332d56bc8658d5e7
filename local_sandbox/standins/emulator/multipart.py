"""A small, strict multipart/form-data parser for the emulator's `/images/edits` endpoint.

The stdlib has no request-body multipart parser any more (`cgi` is gone), and the edit endpoint
needs exact bytes and part names (`image`, repeated `image[]`, `mask`), so this reads RFC 7578 bodies
as `httpx2` writes them and refuses anything malformed instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from email.utils import collapse_rfc2231_value


class MultipartError(ValueError):
    """The body is not well-formed multipart/form-data."""


@dataclass(frozen=True, slots=True)
class Part:
    """One form field; `filename` is None for a plain text field."""

    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None

    @property
    def is_file(self) -> bool:
        return self.filename is not None

    def text(self) -> str:
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MultipartError(f"form field '{self.name}' is not valid UTF-8") from exc


def _header_param(header: str, value: str, param: str) -> str | None:
    message = Message()
    message[header] = value
    found = message.get_param(param, header=header)
    if found is None:
        return None
    return collapse_rfc2231_value(found)


def boundary_of(content_type: str) -> str:
    """The boundary of a `multipart/form-data` Content-Type header value."""
    message = Message()
    message["content-type"] = content_type
    if message.get_content_type() != "multipart/form-data":
        raise MultipartError(f"expected multipart/form-data, got '{message.get_content_type()}'")
    boundary = _header_param("content-type", content_type, "boundary")
    if not boundary or len(boundary) > 70:
        raise MultipartError("the Content-Type header has no usable boundary parameter")
    return boundary


def _parse_part(chunk: bytes) -> Part:
    head_end = chunk.find(b"\r\n\r\n")
    if head_end < 0:
        raise MultipartError("a part has no blank line after its headers")
    try:
        head = chunk[:head_end].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MultipartError("part headers are not valid UTF-8") from exc
    headers: dict[str, str] = {}
    for line in head.split("\r\n"):
        name, sep, value = line.partition(":")
        if not sep:
            raise MultipartError(f"malformed part header line '{line[:80]}'")
        headers[name.strip().lower()] = value.strip()
    disposition = headers.get("content-disposition", "")
    if not disposition.lower().startswith("form-data"):
        raise MultipartError("a part has no 'Content-Disposition: form-data' header")
    field_name = _header_param("content-disposition", disposition, "name")
    if not field_name:
        raise MultipartError("a part has no name")
    return Part(
        name=field_name,
        data=chunk[head_end + 4 :],
        filename=_header_param("content-disposition", disposition, "filename"),
        content_type=headers.get("content-type"),
    )


def parse(body: bytes, boundary: str) -> list[Part]:
    """Split `body` into parts; no preamble is allowed and the closing delimiter is required."""
    delimiter = b"--" + boundary.encode("latin-1")
    if not body.startswith(delimiter):
        raise MultipartError("the body does not start with the boundary")
    parts: list[Part] = []
    position = len(delimiter)
    while not body.startswith(b"--", position):
        if not body.startswith(b"\r\n", position):
            raise MultipartError("a boundary is not followed by CRLF")
        start = position + 2
        end = body.find(b"\r\n" + delimiter, start)
        if end < 0:
            raise MultipartError("the closing boundary is missing")
        parts.append(_parse_part(body[start:end]))
        position = end + 2 + len(delimiter)
    return parts
