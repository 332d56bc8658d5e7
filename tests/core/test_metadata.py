"""Metadata embedding: round trips per format and level, byte splicing only, and files other tools still read."""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Callable
from typing import Any

import piexif
import piexif.helper
import pytest
from PIL import Image, PngImagePlugin

from gpt_image_mcp.core import metadata
from gpt_image_mcp.core.errors import InvalidArgumentError
from gpt_image_mcp.core.imageinfo import iter_jpeg_segments, iter_png_chunks, iter_riff_chunks

JAPANESE = "夕焼けの富士山と桜、水彩画風"
USER_COMMENT = piexif.ExifIFD.UserComment


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def gradient(mode: str, size: tuple[int, int] = (96, 64)) -> Image.Image:
    """Varied pixels (and alpha), so a changed decode would show in tobytes()."""
    ramp = Image.linear_gradient("L").resize(size)
    bands = (ramp, ramp.rotate(90).resize(size), Image.radial_gradient("L").resize(size), ramp.rotate(180))
    return Image.merge("RGBA", bands).convert(mode)


def palette_with_trns() -> bytes:
    image = gradient("RGB").quantize(16)
    return encode(image, "PNG", transparency=0)


IMAGES: dict[str, Callable[[], bytes]] = {
    "png rgb": lambda: encode(gradient("RGB"), "PNG"),
    "png rgba": lambda: encode(gradient("RGBA"), "PNG"),
    "png palette tRNS": palette_with_trns,
    "jpeg": lambda: encode(gradient("RGB"), "JPEG", quality=90),
    "webp lossy": lambda: encode(gradient("RGB"), "WEBP", quality=80),
    "webp lossy alpha": lambda: encode(gradient("RGBA"), "WEBP", quality=80),
    "webp lossless": lambda: encode(gradient("RGB"), "WEBP", lossless=True),
    "webp lossless alpha": lambda: encode(gradient("RGBA"), "WEBP", lossless=True),
}


def fields(level: str = "full", prompt: str = "a red fox in the snow", **overrides: Any) -> dict[str, str]:
    values: dict[str, Any] = {
        "tool": "create-image",
        "prompt": prompt,
        "model": "gpt-image-1",
        "created": "2025-01-02T03:04:05Z",
        "size": "1024x1024",
        "quality": "high",
        "output_format": "png",
        "history_uuid": "0b6f6c1e-5a7d-4a59-9d2e-1f1c2b3a4d5e",
        "param_hash": "9f86d081884c7d65",
        "parameters": {"prompt": prompt, "n": 1, "background": "auto"},
    }
    return metadata.build_fields(level, **(values | overrides))


def pixels(data: bytes) -> tuple[str, tuple[int, int], bytes]:
    with Image.open(io.BytesIO(data)) as image:
        return image.mode, image.size, image.tobytes()


# --- build_fields ------------------------------------------------------------------------------------


def test_levels_add_keys_in_steps() -> None:
    minimal = {"MCP-Tool", "MCP-Model", "MCP-Created", "MCP-History-UUID", "MCP-Param-Hash"}
    standard = minimal | {"MCP-Prompt", "MCP-Size", "MCP-Quality", "MCP-Format"}
    assert set(fields("minimal")) == minimal
    assert set(fields("standard")) == standard
    assert set(fields("full")) == standard | {"MCP-Parameters"}
    assert fields("off") == {}


def test_full_level_stores_the_parameters_as_json() -> None:
    built = fields("full", prompt=JAPANESE)
    assert json.loads(built["MCP-Parameters"]) == {"prompt": JAPANESE, "n": 1, "background": "auto"}
    assert JAPANESE in built["MCP-Parameters"]  # readable, not \u escapes
    assert built["MCP-Format"] == "png" and built["MCP-Tool"] == "create-image"


def test_unknown_level_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match=r"metadata level 'verbose' is unknown; use one of off, minimal"):
        fields("verbose")


def test_off_returns_the_same_bytes_object() -> None:
    data = IMAGES["png rgb"]()
    assert metadata.embed(data, fields("off")) is data


# --- round trips ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["minimal", "standard", "full"])
@pytest.mark.parametrize("name", list(IMAGES))
def test_round_trip_keeps_pixels(name: str, level: str) -> None:
    data = IMAGES[name]()
    wanted = fields(level)
    out = metadata.embed(data, wanted)
    assert metadata.read(out) == wanted
    assert pixels(out) == pixels(data)


@pytest.mark.parametrize("name", list(IMAGES))
def test_japanese_prompt_round_trip(name: str) -> None:
    data = IMAGES[name]()
    wanted = fields("full", prompt=JAPANESE)
    out = metadata.embed(data, wanted)
    assert metadata.read(out) == wanted
    assert metadata.read(out)["MCP-Prompt"] == JAPANESE


@pytest.mark.parametrize("name", list(IMAGES))
def test_embedding_again_replaces(name: str) -> None:
    first = metadata.embed(IMAGES[name](), fields("full", prompt="first"))
    again = metadata.embed(first, fields("minimal", tool="edit-image"))
    assert metadata.read(again) == fields("minimal", tool="edit-image")
    assert pixels(again) == pixels(first)
    assert metadata.embed(again, fields("minimal", tool="edit-image")) == again  # stable: nothing piles up


@pytest.mark.parametrize("name", list(IMAGES))
def test_images_without_metadata_read_empty(name: str) -> None:
    assert metadata.read(IMAGES[name]()) == {}


# --- PNG -----------------------------------------------------------------------------------------------


def png_chunk_kinds(data: bytes) -> list[bytes]:
    return [kind for kind, _start, _end in iter_png_chunks(data)]


def test_png_pillow_sees_the_keys_and_the_crcs_are_right() -> None:
    wanted = fields("full", prompt=JAPANESE)
    out = metadata.embed(IMAGES["png rgba"](), wanted)
    with Image.open(io.BytesIO(out)) as image:
        image.verify()  # checks every chunk CRC
    with Image.open(io.BytesIO(out)) as image:
        assert {key: image.info[key] for key in wanted} == wanted


def test_png_text_goes_right_after_ihdr_as_text_or_itxt() -> None:
    out = metadata.embed(IMAGES["png palette tRNS"](), fields("standard", prompt=JAPANESE, quality="élevée"))
    kinds = png_chunk_kinds(out)
    assert kinds[0] == b"IHDR"
    assert kinds[1:10].count(b"iTXt") == 1  # only the Japanese prompt needs UTF-8
    assert kinds[1:10].count(b"tEXt") == 8  # Latin-1 values, including "élevée", stay tEXt
    assert kinds[10:12] == [b"PLTE", b"tRNS"]


def test_png_reembedding_leaves_one_chunk_per_key() -> None:
    data = IMAGES["png rgb"]()
    out = metadata.embed(metadata.embed(data, fields("full")), fields("full", prompt=JAPANESE))
    assert len(png_chunk_kinds(out)) == len(png_chunk_kinds(data)) + len(fields("full"))


def test_png_other_text_chunks_are_kept() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "painter")
    data = encode(gradient("RGB"), "PNG", pnginfo=info)
    out = metadata.embed(data, fields("minimal"))
    with Image.open(io.BytesIO(out)) as image:
        assert image.info["Software"] == "painter"


def test_png_reader_handles_ztxt_and_compressed_itxt() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("MCP-Tool", "create-image", zip=True)
    info.add_itxt("MCP-Prompt", JAPANESE, zip=True)
    data = encode(gradient("RGB"), "PNG", pnginfo=info)
    assert b"zTXt" in data
    assert metadata.read(data) == {"MCP-Tool": "create-image", "MCP-Prompt": JAPANESE}
    assert metadata.read(metadata.embed(data, fields("minimal"))) == fields("minimal")  # old ones replaced


def test_png_1024_is_spliced_not_decoded() -> None:
    """The output is the input with text chunks inserted after IHDR: IDAT bytes untouched, nothing re-encoded."""
    data = encode(gradient("RGB", (1024, 1024)), "PNG")
    wanted = fields("full")
    out = metadata.embed(data, wanted)
    text = b"".join(metadata._png_text_chunk(key, value) for key, value in wanted.items())
    assert out == data[:33] + text + data[33:]

    def idat(png: bytes) -> bytes:
        return b"".join(png[start:end] for kind, start, end in iter_png_chunks(png) if kind == b"IDAT")

    assert idat(out) == idat(data)


# --- JPEG ----------------------------------------------------------------------------------------------


def jpeg_markers(data: bytes) -> list[int]:
    return [marker for marker, _start, _end in iter_jpeg_segments(data)]


def user_comment(data: bytes) -> bytes:
    comment: bytes = piexif.load(data)["Exif"][USER_COMMENT]
    return comment


def test_jpeg_exif_follows_jfif_and_other_tools_read_the_comment() -> None:
    data = IMAGES["jpeg"]()
    out = metadata.embed(data, fields("standard", prompt=JAPANESE))
    assert jpeg_markers(out)[:2] == [0xE0, 0xE1]  # JFIF stays first, EXIF right after it
    comment = user_comment(out)
    assert comment.startswith(b"UNICODE\x00")
    assert json.loads(piexif.helper.UserComment.load(comment))["MCP-Prompt"] == JAPANESE
    with Image.open(io.BytesIO(out)) as image:
        assert image.info["jfif"] and image.getexif().get_ifd(0x8769)[USER_COMMENT]


def test_jpeg_ascii_fields_use_the_ascii_charset() -> None:
    comment = user_comment(metadata.embed(IMAGES["jpeg"](), fields("standard")))
    assert comment.startswith(b"ASCII\x00\x00\x00")
    assert json.loads(piexif.helper.UserComment.load(comment)) == fields("standard")


def test_jpeg_existing_exif_is_kept_and_its_comment_replaced() -> None:
    exif = piexif.dump(
        {
            "0th": {piexif.ImageIFD.Artist: b"someone", piexif.ImageIFD.Make: b"camera"},
            "Exif": {USER_COMMENT: piexif.helper.UserComment.dump("holiday")},
        }
    )
    data = encode(gradient("RGB"), "JPEG", exif=exif)
    out = metadata.embed(data, fields("minimal"))
    assert jpeg_markers(out)[:2] == [0xE0, 0xE1]
    loaded = piexif.load(out)
    assert loaded["0th"][piexif.ImageIFD.Artist] == b"someone"
    assert loaded["0th"][piexif.ImageIFD.Make] == b"camera"
    assert metadata.read(out) == fields("minimal")
    assert jpeg_markers(out).count(0xE1) == 1
    assert pixels(out) == pixels(data)


def test_jpeg_foreign_user_comment_reads_empty() -> None:
    exif = piexif.dump({"Exif": {USER_COMMENT: piexif.helper.UserComment.dump("just a comment")}})
    assert metadata.read(encode(gradient("RGB"), "JPEG", exif=exif)) == {}


def test_jpeg_little_endian_unicode_comment_is_read() -> None:
    """exiftool and cameras often write "II" EXIF, whose UNICODE text is then UTF-16LE."""
    comment = b"UNICODE\x00" + json.dumps({"MCP-Prompt": JAPANESE}, ensure_ascii=False).encode("utf-16-le")
    # TIFF header, IFD0 at 8 pointing to the Exif IFD at 26, whose UserComment (type 7) data sits at 44.
    ifd0 = struct.pack("<HHHII4x", 1, piexif.ImageIFD.ExifTag, 4, 1, 26)
    exif_ifd = struct.pack("<HHHII4x", 1, USER_COMMENT, 7, len(comment), 44)
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd0 + exif_ifd + comment
    data = encode(gradient("RGB"), "JPEG", exif=b"Exif\x00\x00" + tiff)
    assert metadata.read(data) == {"MCP-Prompt": JAPANESE}


def test_jpeg_too_long_for_one_app1_segment_keeps_what_fits() -> None:
    prompt = JAPANESE * 3000  # 42k characters: 84 KB as UTF-16, twice that with the parameters
    data = IMAGES["jpeg"]()
    out = metadata.embed(data, fields("full", prompt=prompt))
    got = metadata.read(out)
    assert "MCP-Parameters" not in got
    assert got["MCP-Prompt"].endswith("...") and prompt.startswith(got["MCP-Prompt"][:-3])
    app1 = [end - start for marker, start, end in iter_jpeg_segments(out) if marker == 0xE1]
    assert len(app1) == 1 and 65_000 < app1[0] <= 65_537  # marker + length field + at most 65533 bytes
    assert {key: got[key] for key in fields("minimal")} == fields("minimal")
    assert pixels(out) == pixels(data)


def test_jpeg_prompt_that_fits_without_the_parameters_is_kept_whole() -> None:
    prompt = "a" * 40_000  # ASCII: fits once, not twice
    got = metadata.read(metadata.embed(IMAGES["jpeg"](), fields("full", prompt=prompt)))
    assert got["MCP-Prompt"] == prompt and "MCP-Parameters" not in got


# --- WebP ----------------------------------------------------------------------------------------------


def riff(data: bytes) -> list[tuple[bytes, bytes]]:
    return [(fourcc, data[start + 8 : end]) for fourcc, start, end in iter_riff_chunks(data)]


@pytest.mark.parametrize(
    ("name", "flags"),
    [("webp lossy", 0x08), ("webp lossless", 0x08), ("webp lossless alpha", 0x18), ("webp lossy alpha", 0x18)],
)
def test_webp_gets_a_vp8x_header_with_exif_flag(name: str, flags: int) -> None:
    data = IMAGES[name]()
    out = metadata.embed(data, fields("standard"))
    chunks = riff(out)
    assert chunks[0][0] == b"VP8X" and chunks[-1][0] == b"EXIF"
    vp8x = chunks[0][1]
    assert vp8x[0] == flags
    assert (int.from_bytes(vp8x[4:7], "little") + 1, int.from_bytes(vp8x[7:10], "little") + 1) == (96, 64)
    assert struct.unpack_from("<I", out, 4)[0] == len(out) - 8
    assert [fourcc for fourcc, _body in chunks if fourcc != b"VP8X" and fourcc != b"EXIF"] == [
        fourcc for fourcc, _body in riff(data) if fourcc != b"VP8X"
    ]
    with Image.open(io.BytesIO(out)) as image:
        assert image.info["exif"]
        assert image.getexif().get_ifd(0x8769)[USER_COMMENT].startswith(b"ASCII")


def test_webp_existing_exif_is_kept_and_replaced_once() -> None:
    exif = piexif.dump({"0th": {piexif.ImageIFD.Artist: b"someone"}})
    data = encode(gradient("RGBA"), "WEBP", lossless=True, exif=exif)
    out = metadata.embed(metadata.embed(data, fields("full")), fields("minimal"))
    assert [fourcc for fourcc, _body in riff(out)].count(b"EXIF") == 1
    assert piexif.load(riff(out)[-1][1])["0th"][piexif.ImageIFD.Artist] == b"someone"
    assert metadata.read(out) == fields("minimal")
    assert pixels(out) == pixels(data)


def test_webp_exif_goes_before_xmp() -> None:
    data = encode(gradient("RGB"), "WEBP", xmp=b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>")
    out = metadata.embed(data, fields("minimal"))
    kinds = [fourcc for fourcc, _body in riff(out)]
    assert kinds[-2:] == [b"EXIF", b"XMP "]
    with Image.open(io.BytesIO(out)) as image:
        assert image.info["xmp"] and image.info["exif"]


@pytest.mark.parametrize(
    ("offset", "garbage"),
    [(0, b"XX"), (4, b"\xff\xff\xff\x00")],  # not TIFF at all; TIFF whose IFD0 lies far past the end
)
def test_webp_unparseable_exif_reads_empty(offset: int, garbage: bytes) -> None:
    data = metadata.embed(IMAGES["webp lossy"](), fields("minimal"))
    [body] = [start + 8 for fourcc, start, _end in iter_riff_chunks(data) if fourcc == b"EXIF"]
    broken = data[: body + offset] + garbage + data[body + offset + len(garbage) :]
    assert metadata.read(broken) == {}


# --- refusals ------------------------------------------------------------------------------------------


def test_gif_cannot_carry_metadata() -> None:
    data = encode(gradient("RGB"), "GIF")
    with pytest.raises(InvalidArgumentError, match=r"PNG, JPEG or WebP images, not GIF\.$"):
        metadata.embed(data, fields("minimal"))
    assert metadata.read(data) == {}


@pytest.mark.parametrize(("name", "keep"), [("png rgb", -20), ("jpeg", 150), ("webp lossy", -20)])
def test_truncated_images_are_refused(name: str, keep: int) -> None:
    data = IMAGES[name]()[:keep]
    with pytest.raises(InvalidArgumentError, match=r"^the image to embed metadata in is truncated"):
        metadata.embed(data, fields("minimal"))
