"""Every image an answer carries is decoded to its last pixel before anything is saved.

Headers alone (`imageinfo`) cannot tell a whole image from one cut short or garbled on its way: such a file opens
as "broken" in every viewer, yet would be saved and recorded as a success. Pillow (imported on first use) decodes
the pixels; PNG chunk checksums are checked too, since Pillow skips those of the image data.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gpt_image_mcp.core.errors import InvalidArgumentError
from gpt_image_mcp.core.imageinfo import ImageInfo, iter_png_chunks, sniff

if TYPE_CHECKING:
    from PIL import Image

_PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


class BrokenImageError(ValueError):
    """The bytes do not decode to a whole image; the message says why, in a few words."""


@dataclass(frozen=True, slots=True)
class Decoded:
    """An image whose every pixel decoded: its header facts, and the pixels (for a preview made from them)."""

    info: ImageInfo
    image: Image.Image


def decode_fully(data: bytes) -> Decoded:
    """The image decoded to its last pixel; BrokenImageError otherwise."""
    try:
        info = sniff(data, what="its data")
    except InvalidArgumentError as error:  # the clause before the advice meant for a caller's own files
        raise BrokenImageError(error.message.split(";")[0].rstrip(".")) from None
    if info.format not in _PIL_FORMATS:
        raise BrokenImageError(f"it is a {info.format.upper()}, not a PNG, JPEG or WebP image")
    if info.format == "png":
        _check_png_checksums(data)
    from PIL import Image, ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = False  # a module-wide switch: a cut-off image must fail here
    try:
        image = Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[info.format]])
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error, Image.DecompressionBombError) as error:
        raise BrokenImageError(f"its {info.format.upper()} pixel data does not decode ({error})") from None
    return Decoded(info, image)


def _check_png_checksums(data: bytes) -> None:
    for kind, start, end in iter_png_chunks(data):
        stored = int.from_bytes(data[end - 4 : end], "big")
        if zlib.crc32(memoryview(data)[start + 4 : end - 4]) != stored:
            raise BrokenImageError(f"its PNG {kind.decode('latin-1')} chunk at byte {start} fails its checksum")
