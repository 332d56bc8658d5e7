"""generate_image, edit_image and transform_image through an MCP client, against the emulator.

Every test looks at what a user gets: the message, the files on disk, and (through the emulator's
request log) exactly what was sent to the Images API, including that nothing was sent for refused input.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from PIL import Image
from tool_support import (
    b64,
    decode_image,
    files_under,
    history_total,
    image_blocks,
    image_requests,
    links,
    png_bytes,
    refused,
    succeeds,
    text,
)

from local_sandbox.settings import LocalSettings
from local_sandbox.standins.emulator import EmulatorServer

pytestmark = pytest.mark.anyio

TOOL_ORDER = [
    "generate_image",
    "edit_image",
    "transform_image",
    "list_generated_images",
    "list_history",
    "get_history_by_uuid",
    "get_metadata_from_image",
    "start_generation_job",
    "check_job_status",
    "get_job_result",
    "cancel_job",
    "list_jobs",
]
IMAGE_TOOLS = TOOL_ORDER[:3]
WRITING_TOOLS = [*IMAGE_TOOLS, "start_generation_job"]
COMMON_PARAMETERS = {
    "prompt",
    "output_path",
    "model",
    "size",
    "quality",
    "output_format",
    "output_compression",
    "transparent_background",
    "moderation",
    "sample_count",
    "return_base64",
    "include_thumbnail",
    "partial_images",
}
REFERENCE_PARAMETERS = {"reference_image_path", "reference_image_base64", "input_fidelity"}
MASK_PARAMETERS = {"mask_image_path", "mask_image_base64"}
EXPECTED_PARAMETERS = {
    "generate_image": COMMON_PARAMETERS,
    "edit_image": COMMON_PARAMETERS | REFERENCE_PARAMETERS | MASK_PARAMETERS,
    "transform_image": COMMON_PARAMETERS | REFERENCE_PARAMETERS,
}


# --- tools/list ---------------------------------------------------------------------------------------------


async def test_tools_are_listed_in_a_stable_order_with_annotations(client: Client) -> None:
    tools = (await client.list_tools()).tools
    assert [tool.name for tool in tools] == TOOL_ORDER
    for tool in tools:
        assert tool.annotations is not None, tool.name
        if tool.name in WRITING_TOOLS:
            assert tool.annotations.read_only_hint is False, tool.name
            assert tool.annotations.open_world_hint is True, tool.name
            assert tool.annotations.destructive_hint is False, tool.name
        elif tool.name == "cancel_job":
            assert tool.annotations.read_only_hint is False, tool.name
            assert tool.annotations.destructive_hint is True, tool.name
            assert tool.annotations.idempotent_hint is True, tool.name
        else:
            assert tool.annotations.read_only_hint is True, tool.name


async def test_image_tool_schemas_describe_every_reference_parameter(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    for name, expected in EXPECTED_PARAMETERS.items():
        properties = tools[name].input_schema["properties"]
        assert set(properties) == expected, name
        for parameter, schema in properties.items():
            assert schema.get("description", "").strip(), f"{name}.{parameter} has no description"
        assert tools[name].input_schema["required"] == ["prompt"], name
    assert "mask_image_path" not in tools["transform_image"].input_schema["properties"]


async def test_image_tools_publish_an_output_schema(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    for name in IMAGE_TOOLS:
        schema = tools[name].output_schema
        assert schema is not None, name
        assert {"history_id", "images"} <= set(schema["properties"]), name
        assert {"history_id", "images"} <= set(schema["required"]), name


# --- generate_image: what is saved and reported -------------------------------------------------------------


async def test_generate_default_saves_one_png_and_reports_it(
    client: Client, settings: LocalSettings, emulator: EmulatorServer
) -> None:
    result = await succeeds(client, "generate_image", {"prompt": "A lighthouse at dusk"})

    assert files_under(settings.output_dir) == [result.structured_content["images"][0]["path"]]
    data = result.structured_content
    [image] = data["images"]
    saved = settings.output_dir / image["path"]
    assert image["path"].startswith("a-lighthouse-at-dusk-") and image["path"].endswith(".png")
    assert image["location"] == str(saved)
    assert image["link"] == saved.as_uri()
    assert image["bytes"] == saved.stat().st_size
    assert (image["format"], image["mime_type"]) == ("png", "image/png")
    with Image.open(saved) as picture:
        assert picture.format == "PNG"
        assert (image["width"], image["height"]) == picture.size == (1024, 1024)
    assert data["tool"] == "generate_image"
    assert data["model"] == "gpt-image-2"
    assert data["usage"]["output_tokens"] > 0
    assert data["cost"]["total"] > 0 and data["cost"]["estimated"] is False
    assert data["warnings"] == []

    message = text(result)
    assert f"Saved 1 image (gpt-image-2, {data['size']}, {data['quality']}):" in message
    assert str(saved) in message
    assert f"Cost: ${data['cost']['total']:.4f}" in message
    assert f"History id: {data['history_id']}" in message

    [link] = links(result)
    assert link.uri == saved.as_uri()
    assert (link.name, link.mime_type, link.size) == (saved.name, "image/png", saved.stat().st_size)
    [preview] = image_blocks(result)  # a preview by default, so a chat shows the picture
    data_jpeg = base64.b64decode(preview.data)
    assert preview.mime_type == "image/jpeg" and len(data_jpeg) < 150_000
    assert decode_image(data_jpeg).size == (256, 256)
    assert [type(block).__name__ for block in result.content] == ["TextContent", "ResourceLink", "ImageContent"]

    [request] = image_requests(emulator)
    assert request["path"] == "/v1/images/generations"
    assert request["json"] == {
        "model": "gpt-image-2",
        "prompt": "A lighthouse at dusk",
        "n": 1,
        "size": "auto",
        "quality": "auto",
        "output_format": "png",
        "stream": True,  # a single image is streamed, so its arrival is seen as it happens
    }


async def test_generate_sample_count_three_numbers_the_files(
    client: Client, settings: LocalSettings, emulator: EmulatorServer
) -> None:
    result = await succeeds(
        client, "generate_image", {"prompt": "three kites", "sample_count": 3, "output_path": "kite.png"}
    )

    assert files_under(settings.output_dir) == ["kite_1.png", "kite_2.png", "kite_3.png"]
    assert [image["path"] for image in result.structured_content["images"]] == [
        "kite_1.png",
        "kite_2.png",
        "kite_3.png",
    ]
    assert [link.uri for link in links(result)] == [(settings.output_dir / f"kite_{i}.png").as_uri() for i in (1, 2, 3)]
    assert "Saved 3 images" in text(result)
    [request] = image_requests(emulator)
    assert request["json"]["n"] == 3


async def test_generate_jpeg_corrects_the_extension_and_sends_the_compression(
    client: Client, settings: LocalSettings, emulator: EmulatorServer
) -> None:
    args = {"prompt": "a red door", "output_path": "shot.png", "output_format": "jpeg", "output_compression": 70}
    result = await succeeds(client, "generate_image", args)

    assert files_under(settings.output_dir) == ["shot.jpg"]
    saved = settings.output_dir / "shot.jpg"
    assert saved.read_bytes()[:3] == b"\xff\xd8\xff"
    with Image.open(saved) as picture:
        assert picture.format == "JPEG"
    [image] = result.structured_content["images"]
    assert (image["path"], image["format"], image["mime_type"]) == ("shot.jpg", "jpeg", "image/jpeg")
    said = "output_path 'shot.png' was saved as 'shot.jpg': the extension follows the jpeg format."
    assert result.structured_content["warnings"] == [said]
    assert f"Note: {said}" in text(result)
    [request] = image_requests(emulator)
    assert request["json"]["output_format"] == "jpeg"
    assert request["json"]["output_compression"] == 70


async def test_generate_webp(client: Client, settings: LocalSettings, emulator: EmulatorServer) -> None:
    result = await succeeds(
        client, "generate_image", {"prompt": "a blue bird", "output_path": "bird", "output_format": "webp"}
    )

    assert files_under(settings.output_dir) == ["bird.webp"]
    with Image.open(settings.output_dir / "bird.webp") as picture:
        assert picture.format == "WEBP"
    assert result.structured_content["images"][0]["mime_type"] == "image/webp"
    [request] = image_requests(emulator)
    assert request["json"]["output_format"] == "webp"
    assert "output_compression" not in request["json"]


async def test_generate_transparent_background(
    client: Client, settings: LocalSettings, emulator: EmulatorServer
) -> None:
    await succeeds(
        client, "generate_image", {"prompt": "a sticker", "output_path": "sticker.png", "transparent_background": True}
    )

    [request] = image_requests(emulator)
    assert request["json"]["background"] == "transparent"
    with Image.open(settings.output_dir / "sticker.png") as picture:
        assert picture.mode == "RGBA"
        assert picture.getchannel("A").getextrema()[0] == 0  # some pixels are fully transparent


async def test_generate_moderation_low_is_sent(client: Client, emulator: EmulatorServer) -> None:
    await succeeds(client, "generate_image", {"prompt": "a knight", "moderation": "low"})

    [request] = image_requests(emulator)
    assert request["json"]["moderation"] == "low"


async def test_generate_custom_size(client: Client, settings: LocalSettings, emulator: EmulatorServer) -> None:
    result = await succeeds(
        client, "generate_image", {"prompt": "a wide valley", "size": "2048x1152", "quality": "low"}
    )

    [image] = result.structured_content["images"]
    assert (image["width"], image["height"]) == (2048, 1152)
    with Image.open(settings.output_dir / image["path"]) as picture:
        assert picture.size == (2048, 1152)
    [request] = image_requests(emulator)
    assert (request["json"]["size"], request["json"]["quality"]) == ("2048x1152", "low")


@pytest.mark.settings(thumbnail=False, thumbnail_size=128)  # OPENAI_IMAGE_THUMBNAIL=false: previews on request only
async def test_include_thumbnail_adds_a_small_jpeg(client: Client, settings: LocalSettings) -> None:
    result = await succeeds(client, "generate_image", {"prompt": "a fox", "include_thumbnail": True})

    [thumbnail] = image_blocks(result)
    assert thumbnail.mime_type == "image/jpeg"
    picture = decode_image(base64.b64decode(thumbnail.data))
    assert picture.format == "JPEG"
    assert max(picture.size) <= 128
    assert len(files_under(settings.output_dir)) == 1


async def test_no_preview_when_the_call_or_the_setting_says_so(client: Client, settings: LocalSettings) -> None:
    result = await succeeds(client, "generate_image", {"prompt": "a fox", "include_thumbnail": False})
    assert image_blocks(result) == []
    assert [type(block).__name__ for block in result.content] == ["TextContent", "ResourceLink"]


@pytest.mark.settings(thumbnail=False)
async def test_no_preview_with_the_setting_off(client: Client) -> None:
    result = await succeeds(client, "generate_image", {"prompt": "a fox"})
    assert image_blocks(result) == []


async def test_return_base64_returns_the_saved_bytes(client: Client, settings: LocalSettings) -> None:
    result = await succeeds(
        client, "generate_image", {"prompt": "a fox", "output_path": "fox.png", "return_base64": True}
    )

    preview, inline = image_blocks(result)
    assert preview.mime_type == "image/jpeg"
    assert inline.mime_type == "image/png"
    assert base64.b64decode(inline.data) == (settings.output_dir / "fox.png").read_bytes()


@pytest.mark.settings(max_base64_bytes=1000)
async def test_return_base64_over_the_cap_keeps_the_files_and_explains(client: Client, settings: LocalSettings) -> None:
    result = await succeeds(
        client, "generate_image", {"prompt": "a fox", "output_path": "fox.png", "return_base64": True}
    )

    assert [block.mime_type for block in image_blocks(result)] == ["image/jpeg"]  # the preview, not the image
    message = text(result)
    assert "return_base64 refused" in message
    assert "cap (OPENAI_IMAGE_MAX_BASE64_BYTES" in message
    assert "The files are saved" in message
    assert files_under(settings.output_dir) == ["fox.png"]
    assert [link.uri for link in links(result)] == [(settings.output_dir / "fox.png").as_uri()]
    assert any("return_base64 refused" in warning for warning in result.structured_content["warnings"])


async def test_saved_file_carries_metadata_that_verifies(client: Client) -> None:
    result = await succeeds(client, "generate_image", {"prompt": "a quiet harbour", "output_path": "harbour.png"})

    check = await succeeds(client, "get_metadata_from_image", {"image_path": "harbour.png"})
    assert check.structured_content["status"] == "verified"
    assert check.structured_content["history_id"] == result.structured_content["history_id"]
    assert check.structured_content["metadata"]["MCP-Prompt"] == "a quiet harbour"
    assert text(check).startswith("verified: ")


async def test_an_existing_file_is_never_overwritten(client: Client, settings: LocalSettings) -> None:
    first = await succeeds(client, "generate_image", {"prompt": "first", "output_path": "x.png"})
    original = (settings.output_dir / "x.png").read_bytes()
    second = await succeeds(client, "generate_image", {"prompt": "second", "output_path": "x.png"})

    assert files_under(settings.output_dir) == ["x-2.png", "x.png"]
    assert first.structured_content["images"][0]["path"] == "x.png"
    assert second.structured_content["images"][0]["path"] == "x-2.png"
    assert (settings.output_dir / "x.png").read_bytes() == original
    assert str(settings.output_dir / "x-2.png") in text(second)


async def test_concurrent_calls_with_one_output_path_get_distinct_files(
    client: Client, settings: LocalSettings, emulator: EmulatorServer
) -> None:
    paths: list[str] = []

    async def one() -> None:
        result = await succeeds(client, "generate_image", {"prompt": "a crowd", "output_path": "same.png"})
        paths.extend(image["path"] for image in result.structured_content["images"])

    async with anyio.create_task_group() as group:
        for _ in range(8):
            group.start_soon(one)

    expected = ["same.png"] + [f"same-{index}.png" for index in range(2, 9)]
    assert sorted(paths) == sorted(expected)
    assert files_under(settings.output_dir) == sorted(expected)
    assert len(image_requests(emulator)) == 8
    assert await history_total(client) == 8


# --- refused before anything is sent ------------------------------------------------------------------------


# (arguments on top of a valid prompt, phrases the message must contain, label for a failure)
BAD_GENERATE_INPUT: list[tuple[dict[str, Any], list[str], str]] = [
    ({"sample_count": 0}, ["sample_count", "greater than or equal to 1", "(got 0)"], "n-0"),
    ({"sample_count": 11}, ["sample_count", "less than or equal to 10", "(got 11)"], "n-11"),
    (
        {"transparent_background": True, "output_format": "jpeg"},
        ["transparent_background needs output_format 'png' or 'webp'", "JPEG has no alpha channel"],
        "transparent-jpeg",
    ),
    (
        {"output_compression": 80},
        ["output_compression applies to jpeg and webp only", "drop it for png"],
        "compression-png",
    ),
    (
        {"size": "1000x1000"},
        ["size '1000x1000' is not valid for gpt-image-2", "multiples of 16"],
        "size-not-multiple-of-16",
    ),
    (
        {"size": "4096x4096"},
        ["size '4096x4096' is not valid for gpt-image-2", "longest edge may be at most 3840"],
        "size-too-large",
    ),
    ({"size": "abc"}, ["size 'abc' is not 'auto' or WIDTHxHEIGHT", "'1024x1024'"], "size-abc"),
    (
        {"quality": "xhigh"},
        ["quality 'xhigh' is not available for gpt-image-2", "use one of: auto, low, medium, high"],
        "quality-xhigh",
    ),
    (
        {"model": "gpt-image-1"},
        ["Model 'gpt-image-1' was shut down by OpenAI on 2026-10-23", "use gpt-image-2.5-sunburst instead"],
        "gpt-image-1",
    ),
    (
        {"model": "dall-e-3"},
        ["Model 'dall-e-3' was shut down by OpenAI", "use gpt-image-2 instead"],
        "dall-e-3",
    ),
    ({"prompt": ""}, ["prompt", "at least 1 character"], "prompt-empty"),
    ({"prompt": "x" * 32_001}, ["prompt", "at most 32000 characters"], "prompt-too-long"),
    (
        {"output_path": "../escape.png"},
        ["output_path '../escape.png' contains '..'", "may not leave the allowed folder"],
        "path-dotdot",
    ),
    (
        {"output_path": "/etc/escape.png"},
        ["output_path '/etc/escape.png' is outside the allowed folder"],
        "path-absolute-outside",
    ),
    ({"output_path": "bad\x00name.png"}, ["output_path contains a NUL byte"], "path-nul"),
    (
        {"output_path": "C:\\images\\x.png"},
        ["is a Windows drive or network path", "give a path relative to it"],
        "path-windows-drive",
    ),
]


async def test_a_missing_prompt_reads_like_every_other_argument_error(client: Client, emulator: EmulatorServer) -> None:
    for tool in IMAGE_TOOLS:
        assert await refused(client, tool, {}) == "Invalid arguments: prompt: Field required.", tool
    message = await refused(client, "generate_image", {"sample_count": 0, "output_format": "gif"})
    assert message == (
        "Invalid arguments: prompt: Field required; output_format: Input should be 'png', 'jpeg' or 'webp' "
        "(got 'gif'); sample_count: Input should be greater than or equal to 1 (got 0)."
    )
    assert image_requests(emulator) == []


async def test_a_parameter_the_tool_does_not_take_is_refused_with_the_name_meant(
    client: Client, emulator: EmulatorServer
) -> None:
    asked_four = await refused(client, "generate_image", {"prompt": "a fox", "n": 4})  # OpenAI's name: not one image
    assert asked_four == "Invalid arguments: unknown parameter 'n' (did you mean 'sample_count'?)."
    message = await refused(client, "edit_image", {"promt": "a fox", "image": "fox.png", "colour": "red"})
    assert message == (
        "Invalid arguments: unknown parameter 'promt' (did you mean 'prompt'?); unknown parameter 'image' (did you "
        "mean 'reference_image_path'?); unknown parameter 'colour'."
    )
    job = await refused(client, "start_generation_job", {"tool_name": "generate_image", "prompt": "a fox", "n": 2})
    assert job == asked_four
    assert image_requests(emulator) == []


async def test_bad_generate_input_is_refused_before_any_request(
    client: Client, settings: LocalSettings, emulator: EmulatorServer
) -> None:
    for args, phrases, case in BAD_GENERATE_INPUT:
        message = await refused(client, "generate_image", {"prompt": "a cat"} | args)
        for phrase in phrases:
            assert phrase in message, (case, message)

    assert image_requests(emulator) == []
    assert files_under(settings.output_dir) == []
    assert await history_total(client) == 0


async def test_absolute_output_path_inside_the_output_folder_is_accepted(
    client: Client, settings: LocalSettings
) -> None:
    target = settings.output_dir / "abs" / "inside.png"
    result = await succeeds(client, "generate_image", {"prompt": "a cat", "output_path": str(target)})

    assert result.structured_content["images"][0]["path"] == "abs/inside.png"
    assert files_under(settings.output_dir) == ["abs/inside.png"]


async def test_a_fixed_size_model_lists_its_sizes(
    client: Client, emulator: EmulatorServer, before_sunset: dt.datetime
) -> None:
    message = await refused(
        client, "generate_image", {"prompt": "a cat", "model": "gpt-image-1.5", "size": "2048x2048"}
    )

    assert message == (
        "size '2048x2048' is not available for gpt-image-1.5; use one of: auto, 1024x1024, 1536x1024, 1024x1536."
    )
    assert image_requests(emulator) == []


async def test_unknown_model_is_passed_through_and_the_api_answer_is_explained(
    client: Client, settings: LocalSettings, emulator: EmulatorServer
) -> None:
    message = await refused(client, "generate_image", {"prompt": "a cat", "model": "gpt-image-9"})

    assert "OpenAI does not know the model 'gpt-image-9' or this key has no access to it" in message
    [request] = image_requests(emulator)
    assert request["json"]["model"] == "gpt-image-9"
    assert request["status"] == 404
    assert files_under(settings.output_dir) == []


async def test_unknown_model_that_works_upstream_warns_and_has_no_cost(
    client: Client, settings: LocalSettings, emulator: EmulatorServer
) -> None:
    emulator.inject(200, body={"created": 1, "data": [{"b64_json": b64(png_bytes(64, 64))}]})

    result = await succeeds(
        client, "generate_image", {"prompt": "a cat", "model": "gpt-image-9", "output_path": "n.png"}
    )

    message = text(result)
    assert "Note: Model 'gpt-image-9' is not in this server's catalog; it is passed to OpenAI as is" in message
    assert "Known models: gpt-image-2," in message
    assert "Cost:" not in message
    assert result.structured_content["cost"] is None
    assert files_under(settings.output_dir) == ["n.png"]


# --- edit_image / transform_image ---------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False])
async def test_an_answer_without_usage_is_priced_by_estimate_with_its_input_image(
    client: Client, settings: LocalSettings, emulator: EmulatorServer, write_input: Callable[..., Path], stream: bool
) -> None:
    """A proxy that drops `usage`: the cost is estimated the way `batch --estimate` estimates it (core.pricing), the
    prompt and the input image included, and says so."""
    write_input("ref.png", 1024, 1024)
    emulator.reports_usage = False
    result = await succeeds(
        client,
        "edit_image",
        {"prompt": "as a watercolour", "reference_image_path": "ref.png", "quality": "low", "size": "1024x1024"}
        | ({} if stream else {"sample_count": 2}),  # several images come in one plain answer
    )
    n = 1 if stream else 2
    assert result.structured_content["usage"] is None
    # each image made: 196 output tokens ($0.00588), the prompt's 4 tokens ($0.00002) and the 1024x1024 input,
    # 32 x 32 patches = 1024 tokens ($0.008192)
    assert result.structured_content["cost"] == {
        "text_input": n * 0.00002,
        "image_input": n * 0.008192,
        "image_output": n * 0.00588,
        "total": round(n * 0.014092, 6),
        "estimated": True,
        "partial_images": 0.0,
        "currency": "USD",
    }


@pytest.mark.parametrize("tool", ["edit_image", "transform_image"])
async def test_reference_image_from_the_input_folder(
    client: Client, settings: LocalSettings, emulator: EmulatorServer, write_input: Callable[..., Path], tool: str
) -> None:
    reference = write_input("ref.png")

    result = await succeeds(
        client, tool, {"prompt": "as a watercolour", "reference_image_path": "ref.png", "output_path": "w.png"}
    )

    [request] = image_requests(emulator)
    assert request["path"] == "/v1/images/edits"
    assert request["files"] == [
        {"name": "image", "filename": "image.png", "content_type": "image/png", "size": reference.stat().st_size}
    ]
    assert request["fields"]["prompt"] == "as a watercolour"
    assert request["fields"]["model"] == "gpt-image-2"
    assert result.structured_content["tool"] == tool
    assert "w.png" in files_under(settings.output_dir)
    assert result.structured_content["usage"]["input_image_tokens"] > 0
    detail = await succeeds(client, "get_history_by_uuid", {"uuid": result.structured_content["history_id"]})
    assert detail.structured_content["parameters"]["reference_images"] == ["ref.png"]


@pytest.mark.parametrize("tool", ["edit_image", "transform_image"])
async def test_reference_image_as_base64_plain_or_data_url(
    client: Client, settings: LocalSettings, emulator: EmulatorServer, tool: str
) -> None:
    reference = png_bytes(128, 128)

    plain = await succeeds(client, tool, {"prompt": "in pencil", "reference_image_base64": b64(reference)})
    data_url = "data:image/png;base64," + b64(reference)
    await succeeds(client, tool, {"prompt": "in ink", "reference_image_base64": data_url})

    assert [[(f["name"], f["size"]) for f in r["files"]] for r in image_requests(emulator)] == [
        [("image", len(reference))],
        [("image", len(reference))],
    ]
    assert len(files_under(settings.output_dir)) == 2
    detail = await succeeds(client, "get_history_by_uuid", {"uuid": plain.structured_content["history_id"]})
    assert detail.structured_content["parameters"]["reference_images"] == ["reference_image_base64"]
    assert "reference_image_base64" not in detail.structured_content["parameters"]  # no image bytes in history


async def test_several_references_are_sent_as_repeated_image_parts(
    client: Client, emulator: EmulatorServer, write_input: Callable[..., Path]
) -> None:
    write_input("a.png")
    write_input("b.png", 200, 300)
    third = png_bytes(64, 64)

    await succeeds(
        client,
        "edit_image",
        {"prompt": "combine them", "reference_image_path": ["a.png", "b.png"], "reference_image_base64": [b64(third)]},
    )

    [request] = image_requests(emulator)
    assert [part["name"] for part in request["files"]] == ["image[]", "image[]", "image[]"]
    assert request["files"][2]["size"] == len(third)


async def test_a_mask_of_the_right_size_is_sent(
    client: Client, emulator: EmulatorServer, write_input: Callable[..., Path]
) -> None:
    write_input("photo.png", 256, 256)
    mask = write_input("mask.png", 256, 256, mode="RGBA")

    result = await succeeds(
        client,
        "edit_image",
        {"prompt": "add a moon", "reference_image_path": "photo.png", "mask_image_path": "mask.png"},
    )

    [request] = image_requests(emulator)
    assert [part["name"] for part in request["files"]] == ["image", "mask"]
    assert request["files"][1] == {
        "name": "mask",
        "filename": "mask.png",
        "content_type": "image/png",
        "size": mask.stat().st_size,
    }
    detail = await succeeds(client, "get_history_by_uuid", {"uuid": result.structured_content["history_id"]})
    assert detail.structured_content["parameters"]["mask_image"] == "mask.png"


async def test_mask_as_base64_is_sent(
    client: Client, emulator: EmulatorServer, write_input: Callable[..., Path]
) -> None:
    write_input("photo.png", 256, 256)

    await succeeds(
        client,
        "edit_image",
        {
            "prompt": "add a moon",
            "reference_image_path": "photo.png",
            "mask_image_base64": b64(png_bytes(256, 256, "RGBA")),
        },
    )

    [request] = image_requests(emulator)
    assert [part["name"] for part in request["files"]] == ["image", "mask"]


async def test_bad_edit_input_is_refused_before_any_request(
    client: Client, settings: LocalSettings, emulator: EmulatorServer, write_input: Callable[..., Path]
) -> None:
    write_input("photo.png", 256, 256)
    write_input("small-mask.png", 128, 128, mode="RGBA")
    write_input("opaque-mask.png", 256, 256, mode="RGB")
    write_input("notes.png", data=b"hello, these are notes, not an image\n")
    before = files_under(settings.output_dir)
    edit = {"prompt": "add a moon", "reference_image_path": "photo.png"}

    cases: list[tuple[str, dict[str, Any], list[str]]] = [
        (
            "edit_image",
            edit | {"mask_image_path": "small-mask.png"},
            ["small-mask.png is 128x128 but the first reference image is 256x256", "the mask must have the same size"],
        ),
        (
            "edit_image",
            edit | {"mask_image_path": "opaque-mask.png"},
            ["opaque-mask.png must be a PNG with an alpha channel", "it is a PNG without alpha"],
        ),
        (
            "edit_image",
            edit | {"mask_image_path": "small-mask.png", "mask_image_base64": b64(png_bytes(256, 256, "RGBA"))},
            ["Give either mask_image_path or mask_image_base64, not both."],
        ),
        (
            "transform_image",
            {"prompt": "x", "reference_image_path": "notes.png"},
            ["notes.png is not a PNG, JPEG or WebP image"],
        ),
        (
            "transform_image",
            {"prompt": "x", "reference_image_base64": "this is not base64!"},
            ["reference_image_base64 is not valid base64"],
        ),
        (
            "transform_image",
            {"prompt": "x", "reference_image_base64": "data:image/png,abc"},
            ["reference_image_base64 is a data: URL without ';base64,' data."],
        ),
        ("edit_image", {"prompt": "x"}, ["edit_image needs a reference image", "reference_image_path"]),
        ("transform_image", {"prompt": "x"}, ["transform_image needs a reference image"]),
        (
            "edit_image",
            {"prompt": "x", "reference_image_path": "missing.png"},
            ["'missing.png' was not found in", str(settings.input_dir)],
        ),
        (
            "transform_image",
            {"prompt": "x", "reference_image_path": "../photo.png"},
            ["'../photo.png' contains '..'"],
        ),
        (
            "transform_image",
            {"prompt": "x", "reference_image_path": "/etc/hosts.png"},
            [
                "input path '/etc/hosts.png' is outside the allowed folder",
                f"Input images are read from OPENAI_IMAGE_INPUT_DIR ({settings.input_dir})",
                "or send the image as reference_image_base64",
            ],
        ),
        (
            "edit_image",
            edit | {"input_fidelity": "low"},
            [
                "input_fidelity 'low' is not available for gpt-image-2",
                "always reads input images at high fidelity",
                "allowed: none (omit it)",
            ],
        ),
    ]
    for tool, args, phrases in cases:
        message = await refused(client, tool, args)
        for phrase in phrases:
            assert phrase in message, (args, message)

    assert image_requests(emulator) == []
    assert files_under(settings.output_dir) == before
    assert await history_total(client) == 0


async def test_a_reference_over_50_mb_is_refused_before_reading_it(
    client: Client, emulator: EmulatorServer, write_input: Callable[..., Path]
) -> None:
    huge = write_input("huge.png", data=png_bytes(16, 16))
    with huge.open("r+b") as handle:  # sparse: 51 MB on paper, nothing written
        handle.truncate(51 * 1024 * 1024)

    message = await refused(client, "edit_image", {"prompt": "x", "reference_image_path": "huge.png"})

    assert message == "input path 'huge.png' is 51 MB; the limit is 50 MB."
    assert image_requests(emulator) == []


async def test_moderation_on_edit_is_not_sent_and_noted(
    client: Client, emulator: EmulatorServer, write_input: Callable[..., Path]
) -> None:
    write_input("photo.png")

    result = await succeeds(
        client, "edit_image", {"prompt": "x", "reference_image_path": "photo.png", "moderation": "low"}
    )

    [request] = image_requests(emulator)
    assert "moderation" not in request["fields"]
    note = "moderation applies to generate_image only; the edit endpoint uses its default filtering."
    assert f"Note: {note}" in text(result)
    assert result.structured_content["warnings"] == [note]


async def test_input_fidelity_high_on_gpt_image_2_is_not_sent_and_noted(
    client: Client, emulator: EmulatorServer, write_input: Callable[..., Path]
) -> None:
    write_input("photo.png")

    result = await succeeds(
        client, "transform_image", {"prompt": "x", "reference_image_path": "photo.png", "input_fidelity": "high"}
    )

    [request] = image_requests(emulator)
    assert "input_fidelity" not in request["fields"]
    assert "Note: input_fidelity not sent: gpt-image-2 always reads input images at high fidelity." in text(result)


async def test_input_fidelity_low_on_gpt_image_1_5_is_sent_with_the_shutdown_warning(
    client: Client, emulator: EmulatorServer, write_input: Callable[..., Path], before_sunset: dt.datetime
) -> None:
    write_input("photo.png")

    result = await succeeds(
        client,
        "edit_image",
        {"prompt": "x", "reference_image_path": "photo.png", "input_fidelity": "low", "model": "gpt-image-1.5"},
    )

    [request] = image_requests(emulator)
    assert request["fields"]["input_fidelity"] == "low"
    assert request["fields"]["model"] == "gpt-image-1.5"
    assert (
        "Note: Model 'gpt-image-1.5' shuts down on 2026-12-01; switch to gpt-image-2.6-sunburst before then."
        in text(result)
    )
