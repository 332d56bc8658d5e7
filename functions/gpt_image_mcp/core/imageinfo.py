"""Format and size of an image from its headers alone.

Decoding pixels costs milliseconds per megapixel; the headers answer "what is this and how big" in
microseconds, which is all validation and metadata embedding need. The chunk and segment walkers are
shared with `metadata`, which splices bytes at the positions they report.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from gpt_image_mcp.core.errors import InvalidArgumentError

MIME_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "gif": "image/gif"}

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VP8X_ALPHA = 0x10
_PNG_ALPHA_COLOUR_TYPES = {4, 6}  # greyscale + alpha, RGB + alpha
# SOF0-SOF15 carry the frame size; C4 (DHT), C8 (JPG extension) and CC (DAC) share the range but do not.
_JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RST0-7: no length field
_JPEG_SOS = 0xDA
_VP8_START_CODE = b"\x9d\x01\x2a"
_VP8L_SIGNATURE = 0x2F


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What the headers say; `has_alpha` is None when they cannot tell (GIF keeps it per frame)."""

    format: str  # "png" | "jpeg" | "webp" | "gif"
    width: int
    height: int
    has_alpha: bool | None


@contextmanager
def parse_errors(what: str, data: bytes) -> Iterator[None]:
    """Turn the walkers' low-level errors into one message the user can act on.

    IndexError and struct.error mean the data ended early; ValueError carries what is malformed.
    """
    try:
        yield
    except (IndexError, struct.error):
        raise InvalidArgumentError(
            f"{what} is truncated: its {len(data)} bytes end inside the image structure; send the whole file."
        ) from None
    except ValueError as exc:
        raise InvalidArgumentError(f"{what} is damaged: {exc}.") from None


def sniff(data: bytes, *, what: str = "the data") -> ImageInfo:
    """Identify `data` from its headers; raise InvalidArgumentError for anything else or for truncated data.

    `what` names the data in messages, for example "input image 'cat.png'".
    """
    with parse_errors(what, data):
        if data.startswith(PNG_SIGNATURE):
            info = _sniff_png(data)
        elif data.startswith(b"\xff\xd8"):
            info = _sniff_jpeg(data)
        elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            info = _sniff_webp(data)
        elif data[:6] in (b"GIF87a", b"GIF89a"):
            width, height = struct.unpack_from("<HH", data, 6)
            info = ImageInfo("gif", width, height, None)
        elif not data:
            raise InvalidArgumentError(f"{what} is empty (0 bytes); give a PNG, JPEG or WebP image.")
        else:
            raise InvalidArgumentError(
                f"{what} is not a PNG, JPEG or WebP image (it starts with bytes {data[:4].hex(' ')})."
            )
    if info.width <= 0 or info.height <= 0:
        raise InvalidArgumentError(f"{what} declares a size of {info.width}x{info.height}; the file is damaged.")
    return info


def iter_png_chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """Yield (type, start, end incl. CRC) of each chunk up to IEND; CRCs are not checked.

    Only the 12 header bytes of a chunk are read, so walking past IDAT costs nothing per pixel.
    Data ending before IEND raises IndexError.
    """
    pos = len(PNG_SIGNATURE)
    while True:
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > len(data):
            raise IndexError("PNG chunk runs past the end of the data")
        yield kind, pos, end
        if kind == b"IEND":
            return
        pos = end


def iter_jpeg_segments(data: bytes) -> Iterator[tuple[int, int, int]]:
    """Yield (marker, start at its 0xFF, end) of each segment after SOI, stopping at SOS.

    The entropy-coded data after SOS is never looked at.
    """
    pos = 2
    while True:
        if data[pos] != 0xFF:
            raise ValueError(f"a JPEG header segment is expected at byte {pos}, found byte {data[pos]:02x}")
        while data[pos + 1] == 0xFF:  # optional fill bytes before a marker
            pos += 1
        marker = data[pos + 1]
        if marker == _JPEG_SOS:
            return
        if marker in _JPEG_STANDALONE_MARKERS:
            pos += 2
            continue
        (length,) = struct.unpack_from(">H", data, pos + 2)
        end = pos + 2 + length
        if end > len(data):
            raise IndexError("JPEG segment runs past the end of the data")
        if length < 2:
            raise ValueError(f"the JPEG segment at byte {pos} has an impossible length {length}")
        yield marker, pos, end
        pos = end


def iter_riff_chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """Yield (fourcc, start, end incl. padding byte) of each chunk in a WebP's RIFF container."""
    (riff_size,) = struct.unpack_from("<I", data, 4)
    size = 8 + riff_size
    if size > len(data):
        raise IndexError("RIFF container is longer than the data")
    pos = 12
    while pos < size:
        fourcc, length = struct.unpack_from("<4sI", data, pos)
        if pos + 8 + length > size:
            raise IndexError("RIFF chunk runs past the end of the container")
        end = min(pos + 8 + length + (length & 1), size)
        yield fourcc, pos, end
        pos = end


def vp8l_header(data: bytes, body: int) -> tuple[int, int, bool]:
    """Width, height and the alpha-is-used bit of the lossless bitstream starting at `body`."""
    if data[body] != _VP8L_SIGNATURE:
        raise ValueError("its VP8L bitstream has a wrong signature")
    (bits,) = struct.unpack_from("<I", data, body + 1)
    return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool((bits >> 28) & 1)


def _sniff_png(data: bytes) -> ImageInfo:
    """IHDR gives size and colour type; a tRNS chunk before IDAT adds alpha to the other colour types."""
    chunks = iter_png_chunks(data)
    kind, start, end = next(chunks)
    if kind != b"IHDR" or end - start != 25:
        raise ValueError("it does not start with an IHDR chunk")
    width, height, _depth, colour_type = struct.unpack_from(">IIBB", data, start + 8)
    if colour_type in _PNG_ALPHA_COLOUR_TYPES:
        return ImageInfo("png", width, height, True)
    for kind, _start, _end in chunks:
        if kind in (b"tRNS", b"IDAT"):
            return ImageInfo("png", width, height, kind == b"tRNS")
    raise ValueError("it has no image data (IDAT chunk)")


def _sniff_jpeg(data: bytes) -> ImageInfo:
    for marker, start, end in iter_jpeg_segments(data):
        if marker in _JPEG_SOF_MARKERS:
            if end - start < 9:
                raise ValueError("its frame header (SOF) is too short")
            height, width = struct.unpack_from(">HH", data, start + 5)
            return ImageInfo("jpeg", width, height, False)
    raise ValueError("it has no frame header (SOF) before its image data")


def _sniff_webp(data: bytes) -> ImageInfo:
    """The first image-bearing chunk decides; VP8X (extended format) always comes first when present."""
    for fourcc, start, end in iter_riff_chunks(data):
        body = start + 8
        if fourcc == b"VP8X":
            if end - body < 10:
                raise ValueError("its VP8X chunk is too short")
            width = int.from_bytes(data[body + 4 : body + 7], "little") + 1
            height = int.from_bytes(data[body + 7 : body + 10], "little") + 1
            return ImageInfo("webp", width, height, bool(data[body] & VP8X_ALPHA))
        if fourcc == b"VP8 ":
            if data[body + 3 : body + 6] != _VP8_START_CODE:
                raise ValueError("its VP8 bitstream does not start with a key frame")
            width, height = struct.unpack_from("<HH", data, body + 6)
            return ImageInfo("webp", width & 0x3FFF, height & 0x3FFF, False)
        if fourcc == b"VP8L":
            width, height, alpha = vp8l_header(data, body)
            return ImageInfo("webp", width, height, alpha)
    raise ValueError("it has no VP8, VP8L or VP8X chunk")
