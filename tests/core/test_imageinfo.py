"""Header sniffing: format, size and alpha for every format the server meets, and clear refusals."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image

from gpt_image_mcp.core.errors import InvalidArgumentError
from gpt_image_mcp.core.imageinfo import MIME_TYPES, ImageInfo, sniff

WIDTH, HEIGHT = 300, 200  # more than 8 bits each, and not square, so swapped or clipped fields show


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def rgb() -> Image.Image:
    return Image.new("RGB", (WIDTH, HEIGHT), (200, 40, 10))


def rgba() -> Image.Image:
    return Image.new("RGBA", (WIDTH, HEIGHT), (200, 40, 10, 100))


def palette(*, transparent: bool) -> bytes:
    image = Image.new("P", (WIDTH, HEIGHT), 1)
    image.putpalette([0, 0, 0, 255, 0, 0])
    return encode(image, "PNG", transparency=0) if transparent else encode(image, "PNG")


CASES: dict[str, tuple[Callable[[], bytes], ImageInfo]] = {
    "png rgb": (lambda: encode(rgb(), "PNG"), ImageInfo("png", WIDTH, HEIGHT, False)),
    "png rgba": (lambda: encode(rgba(), "PNG"), ImageInfo("png", WIDTH, HEIGHT, True)),
    "png greyscale+alpha": (
        lambda: encode(Image.new("LA", (WIDTH, HEIGHT)), "PNG"),
        ImageInfo("png", WIDTH, HEIGHT, True),
    ),
    "png palette": (lambda: palette(transparent=False), ImageInfo("png", WIDTH, HEIGHT, False)),
    "png palette tRNS": (lambda: palette(transparent=True), ImageInfo("png", WIDTH, HEIGHT, True)),
    "png rgb colour key": (
        lambda: encode(rgb(), "PNG", transparency=(1, 2, 3)),
        ImageInfo("png", WIDTH, HEIGHT, True),
    ),
    "jpeg": (lambda: encode(rgb(), "JPEG"), ImageInfo("jpeg", WIDTH, HEIGHT, False)),
    "jpeg progressive": (lambda: encode(rgb(), "JPEG", progressive=True), ImageInfo("jpeg", WIDTH, HEIGHT, False)),
    "webp lossy (VP8)": (lambda: encode(rgb(), "WEBP", quality=80), ImageInfo("webp", WIDTH, HEIGHT, False)),
    "webp lossy alpha (VP8X)": (lambda: encode(rgba(), "WEBP", quality=80), ImageInfo("webp", WIDTH, HEIGHT, True)),
    "webp lossless (VP8L)": (lambda: encode(rgb(), "WEBP", lossless=True), ImageInfo("webp", WIDTH, HEIGHT, False)),
    "webp lossless alpha (VP8L)": (
        lambda: encode(rgba(), "WEBP", lossless=True),
        ImageInfo("webp", WIDTH, HEIGHT, True),
    ),
    "gif": (lambda: encode(rgb(), "GIF"), ImageInfo("gif", WIDTH, HEIGHT, None)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_sniff_reads_format_size_and_alpha(name: str) -> None:
    make, expected = CASES[name]
    assert sniff(make()) == expected


def test_sniff_webp_kinds_are_what_the_cases_claim() -> None:
    assert encode(rgb(), "WEBP")[12:16] == b"VP8 "
    assert encode(rgba(), "WEBP")[12:16] == b"VP8X"
    assert encode(rgba(), "WEBP", lossless=True)[12:16] == b"VP8L"


def test_sniff_jpeg_skips_app_segments_before_the_frame_header() -> None:
    exif = Image.Exif()
    exif[0x013B] = "someone"  # Artist
    data = encode(rgb(), "JPEG", exif=exif, icc_profile=b"\x00" * 3000)
    assert sniff(data) == ImageInfo("jpeg", WIDTH, HEIGHT, False)


def test_mime_types_cover_every_sniffed_format() -> None:
    assert {info.format for _make, info in CASES.values()} == set(MIME_TYPES)
    assert MIME_TYPES["jpeg"] == "image/jpeg"


def test_sniff_refuses_other_data_naming_its_first_bytes() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        sniff(b"<html><body>not found</body></html>")
    assert caught.value.message == "the data is not a PNG, JPEG or WebP image (it starts with bytes 3c 68 74 6d)."


def test_sniff_names_the_data_as_told() -> None:
    with pytest.raises(InvalidArgumentError, match=r"^input image 'a\.png' is not a PNG, JPEG or WebP image"):
        sniff(b"GIF8", what="input image 'a.png'")


def test_sniff_refuses_empty_data() -> None:
    with pytest.raises(InvalidArgumentError, match=r"^the data is empty \(0 bytes\)"):
        sniff(b"")


@pytest.mark.parametrize(
    ("name", "keep"),
    [
        ("png rgb", 20),  # inside IHDR
        ("png rgb", 33),  # IHDR complete, nothing after it
        ("png palette tRNS", 60),  # inside the chunks before IDAT
        ("jpeg", 3),
        ("jpeg", 100),  # inside the quantisation tables
        ("webp lossy (VP8)", 20),
        ("webp lossless alpha (VP8L)", 40),
        ("gif", 8),
    ],
)
def test_sniff_reports_truncated_data(name: str, keep: int) -> None:
    data = CASES[name][0]()[:keep]
    with pytest.raises(InvalidArgumentError) as caught:
        sniff(data)
    assert caught.value.message == (
        f"the data is truncated: its {keep} bytes end inside the image structure; send the whole file."
    )


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_sniff_refuses_a_zero_size() -> None:
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 5, 8, 2, 0, 0, 0))
    with pytest.raises(InvalidArgumentError, match=r"declares a size of 0x5; the file is damaged\.$"):
        sniff(data + png_chunk(b"IDAT", b"") + png_chunk(b"IEND", b""))


def test_sniff_reports_a_damaged_png_without_ihdr() -> None:
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IEND", b"")
    with pytest.raises(InvalidArgumentError) as caught:
        sniff(data)
    assert caught.value.message == "the data is damaged: it does not start with an IHDR chunk."


def test_sniff_reports_a_damaged_jpeg_segment_walk() -> None:
    data = encode(rgb(), "JPEG")
    broken = data[:2] + b"\x00" + data[3:]  # the first marker's 0xFF is gone
    with pytest.raises(InvalidArgumentError, match=r"^the data is damaged: a JPEG header segment is expected"):
        sniff(broken)


def test_image_info_is_immutable() -> None:
    info = sniff(encode(rgb(), "PNG"))
    with pytest.raises(AttributeError):
        info.width = 1  # type: ignore[misc]
