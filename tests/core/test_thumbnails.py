"""Thumbnails: JPEG, inside the box, aspect kept, transparency on white, JPEG sources decoded small."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image, JpegImagePlugin

from gpt_image_mcp.core.thumbnails import make_thumbnail


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def noise(size: tuple[int, int]) -> Image.Image:
    """Detail everywhere, like a photo, so encoders and resamplers do real work."""
    return Image.merge("RGB", [Image.effect_noise(size, sigma) for sigma in (40, 60, 80)])


@pytest.mark.parametrize(
    ("size", "expected"),
    [((512, 512), (128, 128)), ((768, 512), (128, 85)), ((512, 768), (85, 128)), ((50, 40), (50, 40))],
)
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_fits_the_box_keeping_aspect_and_never_enlarges(
    fmt: str, size: tuple[int, int], expected: tuple[int, int]
) -> None:
    thumb = opened(make_thumbnail(encode(noise(size), fmt), 128, 60))
    assert thumb.format == "JPEG" and thumb.mode == "RGB"
    assert thumb.size == expected


@pytest.mark.parametrize(
    "source",
    [
        Image.new("RGBA", (200, 100), (255, 0, 0, 0)),  # invisible red must not show, nor turn black
        Image.new("LA", (200, 100), (0, 0)),
        Image.new("RGB", (200, 100), (0, 0, 0)),  # saved with black as the transparent colour key
    ],
    ids=["rgba", "greyscale+alpha", "rgb colour key"],
)
def test_transparency_becomes_white(source: Image.Image) -> None:
    options = {"transparency": (0, 0, 0)} if source.mode == "RGB" else {}
    thumb = opened(make_thumbnail(encode(source, "PNG", **options), 64, 90))
    assert thumb.size == (64, 32)
    low, _high = zip(*thumb.getextrema(), strict=True)
    assert min(low) >= 250  # white, give or take JPEG rounding


def test_palette_transparency_becomes_white_and_colours_survive() -> None:
    image = Image.new("P", (100, 100), 0)
    image.putpalette([0, 0, 0, 0, 0, 255])
    image.paste(1, (50, 0, 100, 100))  # right half blue, left half index 0 = transparent
    thumb = opened(make_thumbnail(encode(image, "PNG", transparency=0), 50, 95))
    left = thumb.getpixel((5, 25))
    right = thumb.getpixel((45, 25))
    assert isinstance(left, tuple) and isinstance(right, tuple)
    assert min(left) >= 245
    assert right[2] >= 230 and right[0] <= 20


def test_half_transparent_pixels_blend_with_white() -> None:
    thumb = opened(make_thumbnail(encode(Image.new("RGBA", (64, 64), (0, 0, 0, 128)), "PNG"), 32, 95))
    value = thumb.getpixel((16, 16))
    assert isinstance(value, tuple) and all(120 <= band <= 135 for band in value)


def test_quality_is_applied() -> None:
    data = encode(noise((512, 512)), "PNG")
    assert len(make_thumbnail(data, 256, 95)) > len(make_thumbnail(data, 256, 20)) * 2


def test_jpeg_source_is_decoded_at_reduced_scale(monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[tuple[int, int]] = []
    original = JpegImagePlugin.JpegImageFile.load

    def spy(self: JpegImagePlugin.JpegImageFile) -> Any:
        result = original(self)
        decoded.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", spy)
    make_thumbnail(encode(noise((1024, 1024)), "JPEG"), 128, 60)
    assert decoded and max(decoded) == (128, 128)  # DCT scaling by 1/8, not a full 1024x1024 decode


def test_cmyk_jpeg_comes_out_rgb() -> None:
    thumb = opened(make_thumbnail(encode(Image.new("CMYK", (300, 300), (0, 255, 255, 0)), "JPEG"), 64, 90))
    value = thumb.getpixel((10, 10))
    assert thumb.mode == "RGB" and isinstance(value, tuple) and value[0] >= 230 and value[1] <= 30
