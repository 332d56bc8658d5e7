"""Generation metadata inside the image file, with the reference server's key names.

Embedding splices bytes and never decodes pixels, so it costs well under a millisecond per image:
- PNG: one tEXt chunk per field right after IHDR (iTXt, uncompressed UTF-8, when a value is not Latin-1).
- JPEG: the fields as JSON in the EXIF UserComment, in an APP1 segment placed after SOI/JFIF.
- WebP: the same EXIF in an EXIF chunk; a simple (VP8/VP8L) file gains the VP8X header this requires.

UserComment charset: "ASCII\\0\\0\\0" when the JSON is pure ASCII (every reader gets it right, and it is
half the size), otherwise "UNICODE\\0" + UTF-16 in the EXIF's byte order. piexif always writes big-endian
("MM") EXIF, and piexif.helper and exiftool decode UNICODE that way. UTF-8 bytes under an "ASCII" prefix
are a common but non-standard habit: readers that honour the prefix (piexif.helper among them) garble them.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

from gpt_image_mcp.core.config import METADATA_LEVELS
from gpt_image_mcp.core.errors import InvalidArgumentError
from gpt_image_mcp.core.imageinfo import (
    VP8X_ALPHA,
    iter_jpeg_segments,
    iter_png_chunks,
    iter_riff_chunks,
    parse_errors,
    sniff,
)

TOOL = "MCP-Tool"
PROMPT = "MCP-Prompt"
MODEL = "MCP-Model"
CREATED = "MCP-Created"
SIZE = "MCP-Size"
QUALITY = "MCP-Quality"
FORMAT = "MCP-Format"
HISTORY_UUID = "MCP-History-UUID"
PARAM_HASH = "MCP-Param-Hash"
PARAMETERS = "MCP-Parameters"
KEY_PREFIX = "MCP-"

_PNG_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")
_EXIF_HEADER = b"Exif\x00\x00"  # prefixes EXIF in a JPEG APP1 segment; a WebP EXIF chunk holds bare TIFF data
_APP1 = 0xE1
_APP0 = 0xE0
_MAX_APP1_PAYLOAD = 0xFFFF - 2  # the segment length field counts itself
_ASCII_PREFIX = b"ASCII\x00\x00\x00"
_UNICODE_PREFIX = b"UNICODE\x00"
_VP8X_EXIF = 0x08
# What piexif raises on EXIF written by other software that it cannot parse or re-serialise.
_PIEXIF_ERRORS = (ValueError, KeyError, IndexError, TypeError, struct.error)


def build_fields(
    level: str,
    *,
    tool: str,
    prompt: str,
    model: str,
    created: str,
    size: str,
    quality: str,
    output_format: str,
    history_uuid: str,
    param_hash: str,
    parameters: dict[str, Any],
) -> dict[str, str]:
    """The fields `level` asks for; "off" gives {} so `embed` leaves the bytes alone."""
    if level not in METADATA_LEVELS:
        raise InvalidArgumentError(f"metadata level {level!r} is unknown; use one of {', '.join(METADATA_LEVELS)}.")
    if level == "off":
        return {}
    fields = {TOOL: tool, MODEL: model, CREATED: created, HISTORY_UUID: history_uuid, PARAM_HASH: param_hash}
    if level == "minimal":
        return fields
    fields |= {PROMPT: prompt, SIZE: size, QUALITY: quality, FORMAT: output_format}
    if level == "full":
        fields[PARAMETERS] = json.dumps(parameters, ensure_ascii=False, separators=(",", ":"))
    return fields


def embed(data: bytes, fields: dict[str, str]) -> bytes:
    """Return `data` carrying `fields`, replacing metadata embedded earlier; `data` itself when fields is empty."""
    if not fields:
        return data
    info = sniff(data, what="the image to embed metadata in")
    with parse_errors("the image to embed metadata in", data):
        if info.format == "png":
            return _embed_png(data, fields)
        if info.format == "jpeg":
            return _embed_jpeg(data, fields)
        if info.format == "webp":
            return _embed_webp(data, fields, has_alpha=bool(info.has_alpha), width=info.width, height=info.height)
    raise InvalidArgumentError(f"metadata can be embedded in PNG, JPEG or WebP images, not {info.format.upper()}.")


def read(data: bytes) -> dict[str, str]:
    """The MCP-* fields embedded in `data`; {} when there are none or they are unreadable.

    Raises InvalidArgumentError only when `data` is not a whole PNG, JPEG, WebP or GIF file.
    """
    info = sniff(data, what="the image to read metadata from")
    with parse_errors("the image to read metadata from", data):
        if info.format == "png":
            return _read_png(data)
        if info.format == "jpeg":
            return _read_jpeg(data)
        if info.format == "webp":
            return _read_webp(data)
    return {}


def _splice(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """Copy `data` once, replacing each non-overlapping span [start, end) by its bytes (start == end inserts)."""
    view = memoryview(data)
    parts: list[bytes | memoryview] = []
    pos = 0
    for start, end, new in sorted(edits):
        parts += (view[pos:start], new)
        pos = end
    parts.append(view[pos:])
    return b"".join(parts)


# --- PNG ---------------------------------------------------------------------------------------------


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(kind)))


def _png_text_chunk(key: str, value: str) -> bytes:
    """tEXt is Latin-1 only; iTXt with empty language and translated keyword carries anything else as UTF-8."""
    keyword = key.encode("latin-1")
    try:
        return _png_chunk(b"tEXt", keyword + b"\x00" + value.encode("latin-1"))
    except UnicodeEncodeError:
        # keyword NUL, compression flag 0, method 0, language tag "" NUL, translated keyword "" NUL, text
        return _png_chunk(b"iTXt", keyword + b"\x00\x00\x00\x00\x00" + value.encode("utf-8", errors="replace"))


def _is_mcp_text(data: bytes, kind: bytes, start: int) -> bool:
    return kind in _PNG_TEXT_CHUNKS and data.startswith(KEY_PREFIX.encode(), start + 8)


def _embed_png(data: bytes, fields: dict[str, str]) -> bytes:
    chunks = iter_png_chunks(data)
    _ihdr, _start, ihdr_end = next(chunks)
    text = b"".join(_png_text_chunk(key, value) for key, value in fields.items())
    edits = [(ihdr_end, ihdr_end, text)]
    edits += [(start, end, b"") for kind, start, end in chunks if _is_mcp_text(data, kind, start)]
    return _splice(data, edits)


def _png_text(kind: bytes, body: bytes) -> tuple[str, str] | None:
    """Keyword and text of a tEXt, zTXt or iTXt chunk body; None when it is malformed."""
    keyword, _, rest = body.partition(b"\x00")
    try:
        if kind == b"tEXt":
            return keyword.decode("latin-1"), rest.decode("latin-1")
        if kind == b"zTXt":  # compression method byte, then zlib data
            return keyword.decode("latin-1"), zlib.decompress(rest[1:]).decode("latin-1")
        compressed = rest[:1] == b"\x01"  # iTXt: flag, method, language NUL, translated keyword NUL, text
        _language, _, rest = rest[2:].partition(b"\x00")
        _translated, _, text = rest.partition(b"\x00")
        if compressed:
            text = zlib.decompress(text)
        return keyword.decode("latin-1"), text.decode("utf-8", errors="replace")
    except zlib.error:
        return None


def _read_png(data: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    for kind, start, end in iter_png_chunks(data):
        if _is_mcp_text(data, kind, start) and (pair := _png_text(kind, data[start + 8 : end - 4])):
            fields[pair[0]] = pair[1]
    return fields


# --- EXIF (JPEG and WebP) ----------------------------------------------------------------------------


def _user_comment(fields: dict[str, str]) -> bytes:
    text = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    if text.isascii():
        return _ASCII_PREFIX + text.encode("ascii")
    return _UNICODE_PREFIX + text.encode("utf-16-be", errors="replace")  # piexif.dump writes "MM" EXIF


def _load_exif(payload: bytes) -> dict[str, Any] | None:
    """piexif's dict of an APP1 payload or bare TIFF data; None when piexif cannot parse it."""
    import piexif

    tiff = payload.removeprefix(_EXIF_HEADER)
    if tiff[:2] not in (b"II", b"MM"):  # piexif.load would take any other bytes for a file name
        return None
    try:
        exif: dict[str, Any] = piexif.load(tiff)
    except _PIEXIF_ERRORS:
        return None
    return exif


def _exif_with_comment(existing: bytes | None, fields: dict[str, str]) -> bytes:
    """APP1 payload ("Exif\\0\\0" + TIFF): the existing EXIF with its UserComment replaced by the fields.

    Existing EXIF that piexif cannot read or write back is dropped rather than failing the save.
    """
    import piexif

    comment = _user_comment(fields)
    exif = _load_exif(existing) if existing else None
    if exif is not None:
        exif["Exif"][piexif.ExifIFD.UserComment] = comment
        try:
            return bytes(piexif.dump(exif))
        except _PIEXIF_ERRORS:
            pass
    return bytes(piexif.dump({"Exif": {piexif.ExifIFD.UserComment: comment}}))


def _fields_from_exif(payload: bytes) -> dict[str, str]:
    import piexif

    exif = _load_exif(payload)
    comment = exif["Exif"].get(piexif.ExifIFD.UserComment) if exif else None
    if not isinstance(comment, bytes):
        return {}
    prefix, body = comment[:8], comment[8:]
    if prefix == _UNICODE_PREFIX:
        little_endian = payload.removeprefix(_EXIF_HEADER)[:2] == b"II"
        text = body.decode("utf-16-le" if little_endian else "utf-16-be", errors="replace")
    else:  # ASCII, or undefined: UTF-8 also reads the ASCII subset and the common UTF-8-as-ASCII habit
        text = body.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text.rstrip("\x00 "))
    except ValueError:
        return {}
    if not isinstance(parsed, dict):
        return {}
    return {key: value for key, value in parsed.items() if key.startswith(KEY_PREFIX) and isinstance(value, str)}


# --- JPEG --------------------------------------------------------------------------------------------


def _fit_app1(existing: bytes | None, fields: dict[str, str]) -> bytes:
    """EXIF payload small enough for one APP1 segment (64 KiB).

    A 32k-character prompt stored twice (prompt and parameters) cannot fit, so the parameters go first,
    then the prompt is cut to the longest prefix that fits and ends with "...", and as a last resort
    existing EXIF is dropped. The history record keeps everything; the file keeps what fits.
    """
    payload = _exif_with_comment(existing, fields)
    if len(payload) > _MAX_APP1_PAYLOAD:
        fields = {key: value for key, value in fields.items() if key != PARAMETERS}
        payload = _exif_with_comment(existing, fields)
    if len(payload) > _MAX_APP1_PAYLOAD and PROMPT in fields:
        prompt = fields[PROMPT]
        low, high = 0, len(prompt) - 1  # the size grows with the prefix length, so bisect it
        while low < high:
            middle = (low + high + 1) // 2
            if len(_exif_with_comment(existing, fields | {PROMPT: prompt[:middle] + "..."})) <= _MAX_APP1_PAYLOAD:
                low = middle
            else:
                high = middle - 1
        fields = fields | {PROMPT: prompt[:low] + "..."}
        payload = _exif_with_comment(existing, fields)
    if len(payload) > _MAX_APP1_PAYLOAD:
        payload = _exif_with_comment(None, fields)
    return payload


def _embed_jpeg(data: bytes, fields: dict[str, str]) -> bytes:
    """Replace any EXIF APP1 segment with a new one after SOI and the JFIF APP0, which must stay first.

    Not piexif.insert: it overwrites a leading JFIF APP0 with the EXIF segment, and leaves an old EXIF
    segment in place when one is not directly after SOI/APP0.
    """
    insert_at = 2
    existing: bytes | None = None
    edits: list[tuple[int, int, bytes]] = []
    for marker, start, end in iter_jpeg_segments(data):
        if marker == _APP0 and start == insert_at:
            insert_at = end
        elif marker == _APP1 and data.startswith(_EXIF_HEADER, start + 4):
            existing = existing or data[start + 4 : end]
            edits.append((start, end, b""))
    payload = _fit_app1(existing, fields)
    edits.append((insert_at, insert_at, b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload))
    return _splice(data, edits)


def _read_jpeg(data: bytes) -> dict[str, str]:
    for marker, start, end in iter_jpeg_segments(data):
        if marker == _APP1 and data.startswith(_EXIF_HEADER, start + 4):
            return _fields_from_exif(data[start + 4 : end])
    return {}


# --- WebP --------------------------------------------------------------------------------------------


def _riff_chunk(fourcc: bytes, body: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(body)) + body + b"\x00" * (len(body) & 1)


def _embed_webp(data: bytes, fields: dict[str, str], *, has_alpha: bool, width: int, height: int) -> bytes:
    """Add an EXIF chunk (before XMP, else last, as the container spec orders them) and flag it in VP8X.

    A simple VP8/VP8L file has no VP8X chunk to flag, so one is added, which makes the file extended.
    """
    chunks = list(iter_riff_chunks(data))
    (riff_size,) = struct.unpack_from("<I", data, 4)
    exif_chunks = [(start, end) for fourcc, start, end in chunks if fourcc == b"EXIF"]
    existing = data[exif_chunks[0][0] + 8 : exif_chunks[0][1]] if exif_chunks else None
    exif = _riff_chunk(b"EXIF", _exif_with_comment(existing, fields).removeprefix(_EXIF_HEADER))
    insert_at = next((start for fourcc, start, _end in chunks if fourcc == b"XMP "), 8 + riff_size)
    edits = [(start, end, b"") for start, end in exif_chunks] + [(insert_at, insert_at, exif)]
    first, first_start, _first_end = chunks[0]
    if first == b"VP8X":
        flags = data[first_start + 8] | _VP8X_EXIF
        edits.append((first_start + 8, first_start + 9, bytes([flags])))
    else:
        flags = _VP8X_EXIF | (VP8X_ALPHA if has_alpha else 0)
        canvas = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        edits.append((12, 12, _riff_chunk(b"VP8X", bytes([flags, 0, 0, 0]) + canvas)))
    riff_size += sum(len(new) - (end - start) for start, end, new in edits)
    edits.append((4, 8, struct.pack("<I", riff_size)))
    return _splice(data, edits)


def _read_webp(data: bytes) -> dict[str, str]:
    for fourcc, start, end in iter_riff_chunks(data):
        if fourcc == b"EXIF":
            return _fields_from_exif(data[start + 8 : end])
    return {}
