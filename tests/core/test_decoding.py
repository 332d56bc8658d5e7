"""Full decoding of returned images: a whole picture passes, anything cut short or garbled is named, not saved."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from gpt_image_mcp.core.decoding import BrokenImageError, decode_fully
from gpt_image_mcp.core.imageinfo import ImageInfo


def encode(fmt: str, mode: str = "RGB") -> bytes:
    picture = Image.linear_gradient("L").resize((320, 200)).convert(mode)
    out = io.BytesIO()
    picture.save(out, fmt)
    return out.getvalue()


@pytest.mark.parametrize(("fmt", "name"), [("PNG", "png"), ("JPEG", "jpeg"), ("WEBP", "webp")])
def test_a_whole_image_decodes_to_its_header_facts(fmt: str, name: str) -> None:
    assert decode_fully(encode(fmt)).info == ImageInfo(name, 320, 200, False)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_an_image_cut_in_half_is_broken(fmt: str) -> None:
    data = encode(fmt)
    with pytest.raises(BrokenImageError):
        decode_fully(data[: len(data) // 2])


def test_a_png_whose_pixel_data_was_garbled_fails_its_checksum() -> None:
    data = bytearray(encode("PNG"))
    data[60] ^= 0xFF  # inside the IDAT chunk, which starts after the 33 bytes of signature and IHDR
    with pytest.raises(BrokenImageError, match=r"^its PNG IDAT chunk at byte 33 fails its checksum$"):
        decode_fully(bytes(data))


def test_a_png_with_a_valid_checksum_over_garbage_pixels_does_not_decode() -> None:
    garbage = b"\x78\x9c" + bytes(range(256)) * 4  # a zlib header, then no valid deflate stream
    chunk = struct.pack(">I", len(garbage)) + b"IDAT" + garbage + struct.pack(">I", zlib.crc32(b"IDAT" + garbage))
    data = encode("PNG")
    start = data.index(b"IDAT") - 4
    end = data.index(b"IEND") - 4
    with pytest.raises(BrokenImageError, match=r"^its PNG pixel data does not decode \("):
        decode_fully(data[:start] + chunk + data[end:])


def test_bytes_that_are_no_image_say_what_they_start_with() -> None:
    with pytest.raises(BrokenImageError, match=r"^its data is not a PNG, JPEG or WebP image \(it starts with bytes"):
        decode_fully(b"<html>proxy error</html>")
