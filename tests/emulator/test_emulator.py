"""The OpenAI images emulator, exercised the way the server uses it: the real `openai` SDK over HTTP.

Each test checks one behaviour the real API is documented to have (or one emulator control), so a
drift between the emulator and the SDK shows up here rather than as a confusing failure elsewhere.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import openai
import pytest
from openai import OpenAI
from PIL import Image

from local_sandbox.standins.emulator import EmulatorServer, images

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shared_emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(detail="flat") as server:
        yield server


@pytest.fixture
def emu(shared_emulator: EmulatorServer) -> EmulatorServer:
    shared_emulator.reset()
    shared_emulator.set_latency(0)
    return shared_emulator


@pytest.fixture(scope="module")
def shared_client(shared_emulator: EmulatorServer) -> Iterator[OpenAI]:
    with OpenAI(api_key="sk-test", base_url=shared_emulator.base_url, max_retries=0) as sdk:  # ~50 ms to build
        yield sdk


@pytest.fixture
def client(emu: EmulatorServer, shared_client: OpenAI) -> OpenAI:
    return shared_client


def decode(b64: str | None) -> Image.Image:
    assert b64, "expected base64 image data"
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    image.load()
    return image


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), (10, 120, 200, 0) if mode == "RGBA" else (10, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def raw(
    emu: EmulatorServer, method: str, path: str, body: object = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], dict[str, object]]:
    """A plain HTTP call (no SDK), for the admin endpoints and for requests the SDK cannot make."""
    data = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        emu.base_url.removesuffix("/v1") + path, data=data, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, json.loads(error.read())


# --- generations ----------------------------------------------------------------------------------------------


def test_generate_one_png_with_resolved_settings_and_headers(client: OpenAI) -> None:
    response = client.images.with_raw_response.generate(model="gpt-image-2", prompt="a lighthouse at dusk")
    result = response.parse()

    assert response.headers["x-emulator"] == "gpt-image-mcp"
    assert response.headers["x-request-id"].startswith("req_")
    assert int(response.headers["openai-processing-ms"]) >= 0
    assert result._request_id == response.headers["x-request-id"]
    assert (result.size, result.quality, result.background, result.output_format) == (
        "1024x1024",
        "medium",
        "opaque",
        "png",
    )
    assert result.data is not None and len(result.data) == 1
    image = decode(result.data[0].b64_json)
    assert (image.format, image.size, image.mode) == ("PNG", (1024, 1024), "RGB")


def test_generate_three_distinct_images_of_a_custom_size(client: OpenAI) -> None:
    result = client.images.generate(model="gpt-image-2", prompt="three foxes", n=3, size="1536x864")

    assert result.data is not None and len(result.data) == 3
    pictures = [decode(item.b64_json) for item in result.data]
    assert all(picture.size == (1536, 864) for picture in pictures)
    assert len({picture.tobytes() for picture in pictures}) == 3
    assert result.size == "1536x864"


def test_pictures_are_real_size_unless_asked_flat() -> None:
    with EmulatorServer() as server, OpenAI(api_key="sk-test", base_url=server.base_url, max_retries=0) as sdk:
        assert server.detail == "photo"

        def size(**params: object) -> int:
            data = sdk.images.generate(model="gpt-image-2", prompt="a harbour", **params).data or []  # type: ignore[call-overload]
            return len(base64.b64decode(data[0].b64_json or ""))

        png = size(size="1024x1024")
        assert 1_000_000 <= png <= 1_500_000  # a 1024x1024 PNG of OpenAI's is 1-2 MB
        assert 350_000 <= size(size="1024x1024", output_format="jpeg") <= 900_000
        assert 200_000 <= size(size="1024x1024", output_format="webp") <= 700_000
        assert 1.3 * png <= size(size="1536x1024") <= 1.7 * png  # bytes grow with the pixels
        assert size(size="1024x1024") == png  # the same request, the same (cached) picture
    flat = images.render(1024, 1024, "png", False, None, "a harbour")
    assert len(flat) < 100_000 and decode(base64.b64encode(flat).decode()).size == (1024, 1024)


def test_images_depend_on_the_prompt(client: OpenAI) -> None:
    first = client.images.generate(model="gpt-image-2", prompt="red")
    second = client.images.generate(model="gpt-image-2", prompt="blue")
    assert first.data and second.data
    assert first.data[0].b64_json != second.data[0].b64_json


@pytest.mark.parametrize(("output_format", "pil_format"), [("jpeg", "JPEG"), ("webp", "WEBP")])
def test_generate_jpeg_and_webp(client: OpenAI, output_format: Literal["jpeg", "webp"], pil_format: str) -> None:
    result = client.images.generate(
        model="gpt-image-2",
        prompt="a bowl of fruit",
        size="1024x1536",
        output_format=output_format,
        output_compression=60,
    )
    assert result.data is not None
    image = decode(result.data[0].b64_json)
    assert (image.format, image.size) == (pil_format, (1024, 1536))
    assert result.output_format == output_format


@pytest.mark.parametrize("output_format", ["png", "webp"])
def test_transparent_background_has_transparent_pixels(client: OpenAI, output_format: Literal["png", "webp"]) -> None:
    result = client.images.generate(
        model="gpt-image-2.5-flare",
        prompt="a sticker of a cat",
        background="transparent",
        output_format=output_format,
    )
    assert result.data is not None and result.background == "transparent"
    image = decode(result.data[0].b64_json)
    assert image.mode == "RGBA"
    low, high = image.getchannel("A").getextrema()
    assert (low, high) == (0, 255)


def test_transparent_jpeg_is_refused(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model="gpt-image-2", prompt="x", background="transparent", output_format="jpeg")
    assert caught.value.param == "background"


def test_usage_for_gpt_image_2_high_uses_the_token_formula(client: OpenAI) -> None:
    prompt = "a detailed map of an imaginary island"
    result = client.images.generate(model="gpt-image-2", prompt=prompt, n=2, quality="high", size="1024x1024")

    usage = result.usage
    assert usage is not None and usage.output_tokens_details is not None
    text_tokens = 2 * math.ceil(len(prompt) / 4)  # the prompt is billed with each of the n images
    assert usage.output_tokens == 2 * 7024
    assert usage.output_tokens_details.image_tokens == 2 * 7024
    assert usage.output_tokens_details.text_tokens == 0
    assert usage.input_tokens_details.text_tokens == text_tokens
    assert usage.input_tokens_details.image_tokens == 0
    assert usage.input_tokens == text_tokens
    assert usage.total_tokens == text_tokens + 2 * 7024
    assert result.quality == "high"


@pytest.mark.parametrize(
    ("size", "quality", "tokens"),
    [("1536x1024", "low", 158), ("2048x2048", "medium", 3568), ("3840x2160", "high", 13342)],
)
def test_output_tokens_match_the_notes_table(size: str, quality: str, tokens: int) -> None:
    width, height = map(int, size.split("x"))
    assert images.output_tokens_per_image(images.MODELS["gpt-image-2"], quality, width, height) == tokens


def test_legacy_model_takes_only_fixed_sizes_and_uses_the_table(
    client: OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(images, "today", lambda: dt.date(2026, 11, 1))
    result = client.images.generate(model="gpt-image-1.5", prompt="x", size="1024x1536", quality="high")
    assert result.usage is not None and result.usage.output_tokens == 6240

    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model="gpt-image-1.5", prompt="x", size="1536x864")
    assert caught.value.param == "size"


def test_legacy_model_is_gone_after_its_shutdown_date(client: OpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "today", lambda: dt.date(2026, 12, 1))
    with pytest.raises(openai.NotFoundError) as caught:
        client.images.generate(model="gpt-image-1-mini", prompt="x")
    assert caught.value.code == "model_not_found"


def test_safety_identifier_is_echoed(client: OpenAI) -> None:
    result = client.images.generate(model="gpt-image-2", prompt="x", safety_identifier="user-hash-1")
    assert result.safety_identifier == "user-hash-1"


@pytest.mark.parametrize(
    ("width", "height", "transparent"), [(16, 16, False), (17, 9, True), (1000, 3, False), (3840, 2160, True)]
)
def test_png_encoder_writes_valid_files(width: int, height: int, transparent: bool) -> None:
    data = images.render(width, height, "png", transparent, None, "seed")
    picture = Image.open(io.BytesIO(data))
    picture.load()
    assert (picture.size, picture.mode) == ((width, height), "RGBA" if transparent else "RGB")
    idat = data[data.index(b"IDAT") + 4 : data.index(b"IEND") - 8]
    raw_rows = zlib.decompress(idat)  # also checks the Adler-32 that the encoder computed
    assert len(raw_rows) == height * (1 + width * (4 if transparent else 3))


# --- validation -----------------------------------------------------------------------------------------------


def test_unknown_parameter_is_named(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model="gpt-image-2", prompt="x", extra_body={"xyz": 1})
    error = caught.value
    assert (error.param, error.code, error.type) == ("xyz", "unknown_parameter", "invalid_request_error")
    assert "Unknown parameter: 'xyz'." in error.message


@pytest.mark.parametrize("size", ["1000x1000", "4096x2048", "512x512", "3840x1024", "big", "1024x1024x2"])
def test_bad_sizes_are_refused(client: OpenAI, size: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model="gpt-image-2", prompt="x", size=size)
    assert caught.value.param == "size"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"n": 11}, "n"),
        ({"n": 0}, "n"),
        ({"quality": "xhigh"}, "quality"),
        ({"output_compression": 50}, "output_compression"),
        ({"output_format": "gif"}, "output_format"),
        ({"response_format": "url"}, "response_format"),
        ({"prompt": "x" * 32_001}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"n": "2"}, "n"),
    ],
)
def test_invalid_values_are_refused(client: OpenAI, params: dict[str, object], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model="gpt-image-2", prompt="x", extra_body=params)
    assert caught.value.param == param


def test_xhigh_is_accepted_for_the_2_5_models(client: OpenAI) -> None:
    result = client.images.generate(model="gpt-image-2.5-sunburst", prompt="x", quality="xhigh")
    assert result.quality == "xhigh"


def test_a_stream_sends_the_partial_images_then_the_image_spread_over_the_latency(
    client: OpenAI, emu: EmulatorServer
) -> None:
    emu.set_latency(300)
    arrivals: list[tuple[str, float]] = []
    started = time.monotonic()
    events = []
    for event in client.images.generate(model="gpt-image-2", prompt="x", stream=True, partial_images=2):
        arrivals.append((event.type, time.monotonic() - started))
        events.append(event)
    assert [name for name, _ in arrivals] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    assert arrivals[0][1] >= 0.1 and arrivals[-1][1] >= 0.3  # a third of the latency before each event
    partials, final = events[:2], events[2]
    assert [event.partial_image_index for event in partials] == [0, 1]  # type: ignore[union-attr]
    assert decode(partials[0].b64_json).size == (256, 256)
    assert final.type == "image_generation.completed"
    assert decode(final.b64_json).size == (1024, 1024)
    assert (final.size, final.quality, final.output_format) == ("1024x1024", "medium", "png")
    plain = client.images.generate(model="gpt-image-2", prompt="x")
    assert final.b64_json == (plain.data or [])[0].b64_json
    assert plain.usage is not None and final.usage.model_dump() == plain.usage.model_dump(exclude_none=True)


def test_an_edit_streams_its_own_events(client: OpenAI) -> None:
    picture = ("photo.png", png(1024, 1024), "image/png")
    events = list(client.images.edit(model="gpt-image-2", image=picture, prompt="x", stream=True, partial_images=1))
    assert [event.type for event in events] == ["image_edit.partial_image", "image_edit.completed"]


def test_a_stream_can_end_with_an_error_event(client: OpenAI, emu: EmulatorServer) -> None:
    emu.break_answer("stream_error")
    with pytest.raises(openai.APIError) as caught:
        list(client.images.generate(model="gpt-image-2", prompt="x", stream=True, partial_images=1))
    assert not isinstance(caught.value, openai.APIStatusError)  # after the 200: an error event, no status
    assert isinstance(caught.value.body, dict) and caught.value.body["code"] == "moderation_blocked"
    emu.break_answer("stream_error")
    with pytest.raises(openai.BadRequestError, match="rejected by the safety system"):  # unstreamed: a 400
        client.images.generate(model="gpt-image-2", prompt="x")


@pytest.mark.parametrize(
    ("kind", "types"),
    [
        ("truncated_image", ["image_generation.partial_image", "image_generation.completed"]),
        ("empty_data", ["image_generation.partial_image"]),
    ],
)
def test_broken_streams(client: OpenAI, emu: EmulatorServer, kind: str, types: list[str]) -> None:
    emu.break_answer(kind)
    events = list(client.images.generate(model="gpt-image-2", prompt="x", stream=True, partial_images=1))
    assert [event.type for event in events] == types
    if kind == "truncated_image":
        with pytest.raises(OSError):
            decode(events[-1].b64_json)


@pytest.mark.parametrize("model", ["gpt-image-1", "dall-e-2", "dall-e-3", "gpt-image-9"])
def test_retired_and_unknown_models_are_not_found(client: OpenAI, model: str) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.images.generate(model=model, prompt="x")
    assert caught.value.code == "model_not_found"
    assert caught.value.body == {
        "message": f"The model `{model}` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": None,
        "code": "model_not_found",
    }


def test_moderation_refusal_has_the_real_shape(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model="gpt-image-2", prompt="please draw forbidden-content now")
    error = caught.value
    assert (error.code, error.type) == ("moderation_blocked", "image_generation_user_error")
    assert "rejected by the safety system" in error.message
    assert "safety_violations=[sexual]" in error.message


# --- auth -----------------------------------------------------------------------------------------------------


def test_invalid_key_is_401_with_the_key_masked(emu: EmulatorServer) -> None:
    with (
        OpenAI(api_key="sk-invalid", base_url=emu.base_url, max_retries=0) as sdk,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        sdk.images.generate(model="gpt-image-2", prompt="x")
    assert caught.value.code == "invalid_api_key"
    assert "sk-invalid" not in caught.value.message


def test_unverified_organization_is_403_after_validation(emu: EmulatorServer) -> None:
    with OpenAI(api_key="sk-unverified", base_url=emu.base_url, max_retries=0) as sdk:
        with pytest.raises(openai.PermissionDeniedError) as caught:
            sdk.images.generate(model="gpt-image-2.6-flare", prompt="x")
        assert "must be verified to use the model `gpt-image-2.6-flare`" in caught.value.message
        with pytest.raises(openai.BadRequestError):
            sdk.images.generate(model="gpt-image-2", prompt="x", size="7x7")


def test_missing_key_is_401(emu: EmulatorServer) -> None:
    status, headers, body = raw(emu, "POST", "/v1/images/generations", {"model": "gpt-image-2", "prompt": "x"})
    assert status == 401
    assert headers["x-emulator"] == "gpt-image-mcp"
    error = body["error"]
    assert isinstance(error, dict) and "didn't provide an API key" in error["message"]


def test_unknown_route_is_404_and_wrong_method_405(emu: EmulatorServer) -> None:
    status, _, body = raw(emu, "POST", "/v1/models/whatever", {}, {"Authorization": "Bearer sk-test"})
    assert status == 404
    assert body == {
        "error": {
            "message": "Invalid URL (POST /v1/models/whatever)",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    status, headers, _ = raw(emu, "GET", "/v1/images/generations", None, {"Authorization": "Bearer sk-test"})
    assert (status, headers["allow"]) == (405, "POST")


# --- edits ----------------------------------------------------------------------------------------------------


def test_edit_one_image(client: OpenAI, emu: EmulatorServer) -> None:
    photo = png(1536, 1024)
    result = client.images.edit(model="gpt-image-2", image=("photo.png", photo, "image/png"), prompt="make it snow")

    assert result.data is not None and result.size == "1536x1024"
    assert decode(result.data[0].b64_json).size == (1536, 1024)
    assert result.usage is not None and result.usage.input_tokens_details.image_tokens > 0
    logged = emu.requests[-1]
    assert logged["path"] == "/v1/images/edits"
    assert logged["files"] == [
        {"name": "image", "filename": "photo.png", "content_type": "image/png", "size": len(photo)}
    ]
    assert logged["fields"] == {"prompt": "make it snow", "model": "gpt-image-2"}


@pytest.mark.parametrize(
    ("model", "size", "fidelity", "tokens"),
    [
        ("gpt-image-2", (1024, 1024), "high", 1024),  # 32 x 32 patches
        ("gpt-image-2", (512, 512), "high", 1024),  # magnified 2x toward 1024 first
        ("gpt-image-2", (256, 256), "high", 256),  # at most 2x: 512x512
        ("gpt-image-2", (1536, 1024), "high", 1536),  # 48 x 32: just the budget
        ("gpt-image-2", (1800, 2400), "high", 1452),  # over budget: 1056x1408, the vision guide's own example
        ("gpt-image-2", (2048, 2048), "high", 1521),  # over budget: 1248x1248
        ("gpt-image-2", (3072, 512), "high", 1452),  # canvas held at 3:1 (3072x1024), then over budget
        ("gpt-image-1.5", (1024, 1024), "low", 194),  # 512x512: 65 + 129 x 1 tile (as the forum saw it billed)
        ("gpt-image-1.5", (1024, 1025), "low", 194),  # rounded down: still one tile
        ("gpt-image-1.5", (1536, 1024), "low", 323),  # 768x512: two tiles
        ("gpt-image-1.5", (4096, 2048), "low", 323),  # into 2048x1024, then 1024x512: two tiles
        ("gpt-image-1.5", (1024, 1024), "high", 194 + 4096),  # square
        ("gpt-image-1.5", (1536, 1024), "high", 323 + 6144),  # nearer 3:2 than 1:1
    ],
)
def test_input_image_tokens_follow_the_published_and_measured_rules(
    model: str, size: tuple[int, int], fidelity: str, tokens: int
) -> None:
    picture = images.InputImage("png", size[0], size[1], False)
    assert images.input_image_tokens(images.MODELS[model], picture, fidelity) == tokens


def test_edit_several_images_sent_as_repeated_parts(client: OpenAI, emu: EmulatorServer) -> None:
    pictures = [(f"ref{i}.png", png(1024, 1024), "image/png") for i in range(3)]
    result = client.images.edit(model="gpt-image-2", image=pictures, prompt="combine them", n=2)

    assert result.data is not None and len(result.data) == 2
    assert result.usage is not None
    # 1024 patches of 32 px each, for each of 3 images, billed with each of the n=2 images made
    assert result.usage.input_tokens_details.image_tokens == 2 * 3 * 1024
    files = emu.requests[-1]["files"]
    assert isinstance(files, list)
    assert [file["name"] for file in files] == ["image[]"] * 3
    assert all(file["size"] == len(pictures[0][1]) for file in files)


def test_edit_auto_size_follows_the_first_image(client: OpenAI) -> None:
    result = client.images.edit(model="gpt-image-2", image=("small.png", png(512, 512), "image/png"), prompt="x")
    assert result.size is not None
    width, height = map(int, result.size.split("x"))
    assert width == height and images.custom_size_problem(width, height) is None


def test_edit_with_a_mask(client: OpenAI, emu: EmulatorServer) -> None:
    result = client.images.edit(
        model="gpt-image-2",
        image=("photo.png", png(1024, 1024), "image/png"),
        mask=("mask.png", png(1024, 1024, "RGBA"), "image/png"),
        prompt="add a boat",
    )
    assert result.data is not None
    files = emu.requests[-1]["files"]
    assert isinstance(files, list) and [file["name"] for file in files] == ["image", "mask"]


@pytest.mark.parametrize(
    ("mask", "reason"), [(png(512, 512, "RGBA"), "does not match"), (png(1024, 1024), "alpha channel")]
)
def test_bad_masks_are_refused(client: OpenAI, mask: bytes, reason: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(
            model="gpt-image-2",
            image=("photo.png", png(1024, 1024), "image/png"),
            mask=("mask.png", mask, "image/png"),
            prompt="x",
        )
    assert caught.value.param == "mask"
    assert reason in caught.value.message


def test_moderation_is_an_unknown_parameter_on_edits(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(
            model="gpt-image-2",
            image=("photo.png", png(1024, 1024), "image/png"),
            prompt="x",
            extra_body={"moderation": "low"},
        )
    assert (caught.value.param, caught.value.code) == ("moderation", "unknown_parameter")


def test_input_fidelity_is_refused_for_gpt_image_2(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(
            model="gpt-image-2",
            image=("photo.png", png(1024, 1024), "image/png"),
            prompt="x",
            input_fidelity="high",
        )
    assert caught.value.param == "input_fidelity"


def test_non_image_upload_is_refused(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(model="gpt-image-2", image=("notes.txt", b"hello", "text/plain"), prompt="x")
    assert (caught.value.param, caught.value.code) == ("image", "invalid_image_format")


def test_malformed_multipart_is_400(emu: EmulatorServer) -> None:
    headers = {"Authorization": "Bearer sk-test", "Content-Type": "multipart/form-data; boundary=abc"}
    status, _, body = raw(emu, "POST", "/v1/images/edits", b"--abc\r\nno headers here", headers)
    assert status == 400
    assert isinstance(body["error"], dict) and "multipart" in body["error"]["message"]


# --- faults, latency, log, admin ------------------------------------------------------------------------------


def test_rate_limit_then_success_with_sdk_retries(emu: EmulatorServer) -> None:
    emu.inject(429, headers={"retry-after": "1", "retry-after-ms": "20"})
    with OpenAI(api_key="sk-test", base_url=emu.base_url, max_retries=2) as sdk:
        result = sdk.images.generate(model="gpt-image-2", prompt="x")
    assert result.data
    log = emu.requests
    assert [entry["status"] for entry in log] == [429, 200]
    assert [entry["headers"]["x-stainless-retry-count"] for entry in log] == ["0", "1"]  # type: ignore[index]


def test_rate_limit_without_retries_raises(client: OpenAI, emu: EmulatorServer) -> None:
    emu.inject(429, headers={"retry-after": "1"})
    with pytest.raises(openai.RateLimitError) as caught:
        client.images.generate(model="gpt-image-2", prompt="x")
    error = caught.value
    assert (error.code, error.type) == ("rate_limit_exceeded", "requests")
    assert isinstance(error.body, dict) and error.body["message"].startswith("Rate limit reached for images per min")
    assert error.response.headers["retry-after"] == "1"


def test_quota_exhausted_is_not_retried(emu: EmulatorServer) -> None:
    emu.inject(429, code="insufficient_quota", times=3)
    with (
        OpenAI(api_key="sk-test", base_url=emu.base_url, max_retries=2) as sdk,
        pytest.raises(openai.RateLimitError) as caught,
    ):
        sdk.images.generate(model="gpt-image-2", prompt="x")
    assert (caught.value.code, caught.value.type) == ("insufficient_quota", "insufficient_quota")
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert len(emu.requests) == 1


@pytest.mark.parametrize(("status", "text"), [(500, "had an error"), (503, "overloaded")])
def test_server_errors(client: OpenAI, emu: EmulatorServer, status: int, text: str) -> None:
    emu.inject(status)
    with pytest.raises(openai.InternalServerError) as caught:
        client.images.generate(model="gpt-image-2", prompt="x")
    assert caught.value.status_code == status
    assert text in caught.value.message
    assert client.images.generate(model="gpt-image-2", prompt="x").data  # the fault was used up


def test_fault_limited_to_a_path_and_a_count(client: OpenAI, emu: EmulatorServer) -> None:
    emu.inject(500, path="/images/edits", times=2, body={"error": {"message": "custom", "type": "server_error"}})
    picture = ("photo.png", png(1024, 1024), "image/png")
    assert client.images.generate(model="gpt-image-2", prompt="x").data
    for _ in range(2):
        with pytest.raises(openai.InternalServerError, match="custom"):
            client.images.edit(model="gpt-image-2", image=picture, prompt="x")
    assert client.images.edit(model="gpt-image-2", image=picture, prompt="x").data


def test_hang_fault_trips_the_client_timeout(emu: EmulatorServer) -> None:
    emu.inject(0, hang_ms=1000)
    with (
        OpenAI(api_key="sk-test", base_url=emu.base_url, max_retries=0, timeout=0.2) as sdk,
        pytest.raises(openai.APITimeoutError),
    ):
        sdk.images.generate(model="gpt-image-2", prompt="x")


def test_close_fault_is_a_connection_error(client: OpenAI, emu: EmulatorServer) -> None:
    emu.inject(-1)
    with pytest.raises(openai.APIConnectionError) as caught:
        client.images.generate(model="gpt-image-2", prompt="x")
    assert not isinstance(caught.value, openai.APITimeoutError)


@pytest.mark.parametrize("kind", ["truncated_image", "corrupt_image"])
def test_broken_image_faults_keep_valid_base64_and_headers(client: OpenAI, emu: EmulatorServer, kind: str) -> None:
    sound = client.images.generate(model="gpt-image-2", prompt="x", n=2).data or []
    emu.break_answer(kind, images=[1])
    data = client.images.generate(model="gpt-image-2", prompt="x", n=2).data or []
    assert data[0].b64_json == sound[0].b64_json
    original, broken = (base64.b64decode(item[1].b64_json or "") for item in (sound, data))
    assert broken[:33] == original[:33]  # signature and IHDR: the headers still say 1024x1024 PNG
    with pytest.raises((OSError, SyntaxError)):
        decode(data[1].b64_json)
    assert len(broken) == (len(original) // 2 if kind == "truncated_image" else len(original))


@pytest.mark.parametrize(
    ("kind", "content_type", "check"),
    [
        ("malformed_json", "application/json", lambda body: body.startswith(b'{"created": ')),
        ("html_page", "text/html; charset=utf-8", lambda body: body.startswith(b"<!DOCTYPE html>")),
        ("empty_data", "application/json", lambda body: json.loads(body)["data"] == []),
    ],
)
def test_answers_that_are_not_images(
    client: OpenAI, emu: EmulatorServer, kind: str, content_type: str, check: Callable[[bytes], bool]
) -> None:
    emu.break_answer(kind)
    raw_answer = client.images.with_raw_response.generate(model="gpt-image-2", prompt="x")
    assert (raw_answer.status_code, raw_answer.headers["content-type"]) == (200, content_type)
    assert check(raw_answer.content)
    if kind == "malformed_json":
        with pytest.raises(json.JSONDecodeError):
            json.loads(raw_answer.content)
    assert [entry["status"] for entry in emu.requests] == [200]


def test_a_stalled_body_trips_the_client_read_timeout(emu: EmulatorServer) -> None:
    emu.break_answer("stalled_body")
    with (
        OpenAI(api_key="sk-test", base_url=emu.base_url, max_retries=0, timeout=0.5) as sdk,
        pytest.raises(openai.APITimeoutError),
    ):
        sdk.images.generate(model="gpt-image-2", prompt="x")
    assert len(emu.requests) == 1


def test_a_held_request_waits_for_its_release(client: OpenAI, emu: EmulatorServer) -> None:
    gate = emu.hold()
    answers: list[int] = []
    caller = threading.Thread(
        target=lambda: answers.append(len(client.images.generate(model="gpt-image-2", prompt="x").data or []))
    )
    caller.start()
    assert gate.arrived.wait(30)
    assert answers == [] and len(emu.requests) == 1  # read and logged, not yet answered
    gate.release()
    caller.join(30)
    assert answers == [1]


def test_broken_answers_through_the_admin_endpoint(client: OpenAI, emu: EmulatorServer) -> None:
    assert raw(emu, "POST", "/_emulator/faults", {"broken": "empty_data", "times": 2})[0] == 200
    for _ in range(2):
        assert client.images.generate(model="gpt-image-2", prompt="x").data == []
    assert client.images.generate(model="gpt-image-2", prompt="x").data
    assert raw(emu, "POST", "/_emulator/faults", {"broken": "html_page", "hang_ms": 5})[0] == 400
    assert raw(emu, "POST", "/_emulator/faults", {"broken": "nonsense"})[0] == 400


def test_latency_delays_image_answers(client: OpenAI, emu: EmulatorServer) -> None:
    emu.set_latency(150)
    started = time.monotonic()
    client.images.generate(model="gpt-image-2", prompt="x")
    assert time.monotonic() - started >= 0.15


def test_request_log_keeps_bodies_but_not_file_bytes(client: OpenAI, emu: EmulatorServer) -> None:
    client.images.generate(model="gpt-image-2", prompt="logged prompt", size="1024x1536")
    entry = emu.requests[-1]
    assert (entry["method"], entry["path"], entry["status"]) == ("POST", "/v1/images/generations", 200)
    assert entry["json"] == {"prompt": "logged prompt", "model": "gpt-image-2", "size": "1024x1536"}
    headers = entry["headers"]
    assert isinstance(headers, dict)
    assert headers["authorization"] is True and headers["x-stainless-retry-count"] == "0"
    assert isinstance(entry["timestamp"], float)
    emu.reset()
    assert emu.requests == []


def test_admin_endpoints_drive_a_running_emulator(client: OpenAI, emu: EmulatorServer) -> None:
    assert raw(emu, "POST", "/_emulator/faults", {"status": 503, "times": 1})[0] == 200
    with pytest.raises(openai.InternalServerError):
        client.images.generate(model="gpt-image-2", prompt="x")

    status, _, body = raw(emu, "GET", "/_emulator/requests")
    assert status == 200
    requests = body["requests"]
    assert isinstance(requests, list) and [entry["status"] for entry in requests] == [503]

    assert raw(emu, "POST", "/_emulator/latency", {"ms": 120})[2] == {"latency_ms": 120}
    started = time.monotonic()
    client.images.generate(model="gpt-image-2", prompt="x")
    assert time.monotonic() - started >= 0.12
    assert raw(emu, "POST", "/_emulator/latency", {"ms": 0})[0] == 200

    assert raw(emu, "POST", "/_emulator/reset")[2] == {"reset": True}
    assert raw(emu, "GET", "/_emulator/requests")[2] == {"requests": []}
    assert raw(emu, "POST", "/_emulator/faults", {"status": 999})[0] == 400
    assert raw(emu, "POST", "/_emulator/faults", {"status": 500, "colour": "red"})[0] == 400
    assert raw(emu, "GET", "/_emulator/reset")[0] == 405


def test_inject_rejects_nonsense() -> None:
    server = EmulatorServer()
    with pytest.raises(ValueError):
        server.inject(42)
    with pytest.raises(ValueError):
        server.inject(500, times=0)
    with pytest.raises(ValueError):
        server.inject(500, hang_ms=10)
    with pytest.raises(ValueError, match="kind must be one of"):
        server.break_answer("spoiled")
    with pytest.raises(ValueError, match="images is only used with"):
        server.break_answer("html_page", images=[0])


def test_module_entry_prints_the_base_url_and_stops_on_sigterm() -> None:
    env = os.environ | {"PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "local_sandbox.standins.emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("OPENAI_BASE_URL=http://127.0.0.1:")
        with OpenAI(api_key="sk-test", base_url=line.split("=", 1)[1], max_retries=0) as sdk:
            assert sdk.images.generate(model="gpt-image-2", prompt="x").data
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
