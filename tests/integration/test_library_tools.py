"""The read-only library tools: list_generated_images, list_history, get_history_by_uuid, get_metadata_from_image."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import CallToolResult
from tool_support import b64, image_requests, png_bytes, refused, succeeds, text

from gpt_image_mcp.core import metadata
from local_sandbox.settings import LocalSettings
from local_sandbox.standins.emulator import EmulatorServer

pytestmark = pytest.mark.anyio


async def generate(client: Client, prompt: str, **args: Any) -> CallToolResult:
    return await succeeds(client, "generate_image", {"prompt": prompt} | args)


# --- list_generated_images ----------------------------------------------------------------------------------


async def test_list_generated_images_newest_first_with_file_links(client: Client, settings: LocalSettings) -> None:
    for name in ("a.png", "b.png", "c.png"):  # on a timestamp tie the order falls back to the name, also c, b, a
        await generate(client, f"picture {name}", output_path=name)

    result = await succeeds(client, "list_generated_images", {})

    listed = result.structured_content
    assert listed["count"] == 3
    assert [image["path"] for image in listed["images"]] == ["c.png", "b.png", "a.png"]
    for image in listed["images"]:
        saved = settings.output_dir / image["path"]
        assert image["location"] == str(saved)
        assert image["link"] == saved.as_uri() and image["link"].startswith("file:///")
        assert image["bytes"] == saved.stat().st_size
    message = text(result)
    assert message.startswith("3 image(s), newest first:")
    assert message.index("c.png") < message.index("b.png") < message.index("a.png")


async def test_list_generated_images_limit(client: Client) -> None:
    for name in ("a.png", "b.png", "c.png"):
        await generate(client, "same picture", output_path=name)

    result = await succeeds(client, "list_generated_images", {"limit": 2})

    assert [image["path"] for image in result.structured_content["images"]] == ["c.png", "b.png"]


async def test_list_generated_images_in_one_directory(client: Client) -> None:
    await generate(client, "top level", output_path="top.png")
    await generate(client, "in a folder", output_path="posters/launch.png")

    result = await succeeds(client, "list_generated_images", {"directory": "posters"})

    assert result.structured_content["directory"] == "posters"
    assert [image["path"] for image in result.structured_content["images"]] == ["posters/launch.png"]


async def test_list_generated_images_before_anything_was_saved(client: Client) -> None:
    result = await succeeds(client, "list_generated_images", {})

    assert result.structured_content["count"] == 0
    assert text(result) == "0 image(s), newest first:"


async def test_list_generated_images_missing_directory(client: Client, settings: LocalSettings) -> None:
    await generate(client, "something", output_path="x.png")

    message = await refused(client, "list_generated_images", {"directory": "nowhere"})

    assert message == f"directory 'nowhere' was not found in {settings.output_dir}."


async def test_list_generated_images_refuses_a_directory_outside(client: Client) -> None:
    message = await refused(client, "list_generated_images", {"directory": "../elsewhere"})

    assert "directory '../elsewhere' contains '..'" in message


# --- list_history -------------------------------------------------------------------------------------------


@pytest.fixture
async def four_calls(client: Client, write_input: Callable[..., Path]) -> list[str]:
    """Three generations and one transform; their history ids, oldest first."""
    write_input("ref.png")
    results = [
        await generate(client, "Red apple on a table"),
        await generate(client, "green APPLE in the grass"),
        await generate(client, "blue sky"),
        await succeeds(
            client, "transform_image", {"prompt": "Apple pie, as a sketch", "reference_image_path": "ref.png"}
        ),
    ]
    return [result.structured_content["history_id"] for result in results]


async def test_list_history_pages_newest_first(client: Client, four_calls: list[str]) -> None:
    first = await succeeds(client, "list_history", {"limit": 2})
    second = await succeeds(client, "list_history", {"limit": 2, "offset": 2})
    beyond = await succeeds(client, "list_history", {"limit": 2, "offset": 4})

    assert first.structured_content["total"] == 4
    assert [r["uuid"] for r in first.structured_content["records"]] == [four_calls[3], four_calls[2]]
    assert [r["uuid"] for r in second.structured_content["records"]] == [four_calls[1], four_calls[0]]
    assert beyond.structured_content["records"] == []
    assert text(first).startswith("History: 4 record(s); showing 1-2.")
    assert text(second).startswith("History: 4 record(s); showing 3-4.")
    assert text(beyond) == "History: 4 record(s); showing none."
    newest = first.structured_content["records"][0]
    assert newest["tool_name"] == "transform_image"
    assert newest["prompt"] == "Apple pie, as a sketch"
    assert newest["image_count"] == 1
    assert newest["cost_usd"] > 0


async def test_list_history_filters_by_tool_and_prompt_text(client: Client, four_calls: list[str]) -> None:
    apple_calls = [four_calls[3], four_calls[1], four_calls[0]]
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"tool_name": "transform_image"}, [four_calls[3]]),
        ({"tool_name": "edit_image"}, []),
        ({"query": "apple"}, apple_calls),
        ({"query": "APPLE"}, apple_calls),  # any case, both ways
        ({"query": "ApPlE"}, apple_calls),
        ({"query": "pear"}, []),
        ({"query": "apple", "tool_name": "generate_image"}, [four_calls[1], four_calls[0]]),
    ]
    for args, expected in cases:
        result = await succeeds(client, "list_history", args)
        assert [r["uuid"] for r in result.structured_content["records"]] == expected, args
        assert result.structured_content["total"] == len(expected), args


async def test_list_history_bad_arguments(client: Client) -> None:
    cases = [
        ({"limit": 0}, "limit: Input should be greater than or equal to 1 (got 0)"),
        ({"limit": 101}, "limit: Input should be less than or equal to 100 (got 101)"),
        ({"offset": -1}, "offset: Input should be greater than or equal to 0 (got -1)"),
        ({"tool_name": "paint"}, "tool_name: Input should be 'generate_image', 'edit_image' or 'transform_image'"),
    ]
    for args, phrase in cases:
        message = await refused(client, "list_history", args)
        assert message.startswith("Invalid arguments: "), message
        assert phrase in message, message


# --- get_history_by_uuid ------------------------------------------------------------------------------------


async def test_get_history_by_uuid_links_are_made_at_read_time(client: Client, settings: LocalSettings) -> None:
    made = await generate(client, "two boats", output_path="boats.png", quality="low", sample_count=2)
    history_id = made.structured_content["history_id"]
    (settings.output_dir / "boats_1.png").unlink()

    record = (await succeeds(client, "get_history_by_uuid", {"uuid": history_id})).structured_content

    assert [(image["key"], image["link"]) for image in record["images"]] == [
        ("boats_1.png", None),
        ("boats_2.png", (settings.output_dir / "boats_2.png").as_uri()),
    ]


async def test_get_history_by_uuid_returns_the_whole_record(client: Client, settings: LocalSettings) -> None:
    made = await generate(client, "a paper boat", output_path="boat.png", quality="low", size="1536x1024")
    history_id = made.structured_content["history_id"]

    result = await succeeds(client, "get_history_by_uuid", {"uuid": history_id})

    record = result.structured_content
    assert record["uuid"] == history_id
    assert (record["tool_name"], record["model"], record["prompt"]) == ("generate_image", "gpt-image-2", "a paper boat")
    assert record["parameters"]["output_path"] == "boat.png"
    assert record["parameters"]["quality"] == "low"
    assert record["parameters"]["size"] == "1536x1024"
    assert record["parameters"]["model"] == "gpt-image-2"
    assert "return_base64" not in record["parameters"]
    saved = settings.output_dir / "boat.png"
    assert record["images"] == [
        {
            "key": "boat.png",
            "location": str(saved),
            "format": "png",
            "width": 1536,
            "height": 1024,
            "size_bytes": saved.stat().st_size,
            "link": saved.as_uri(),
        }
    ]
    assert record["usage"] == made.structured_content["usage"]
    assert record["cost"] == made.structured_content["cost"]
    assert len(record["param_hash"]) == 64
    message = text(result)
    assert "generate_image with gpt-image-2: 'a paper boat'" in message
    assert f"Files: {saved}" in message
    cost, usage = made.structured_content["cost"], made.structured_content["usage"]
    assert f"Cost: ${cost['total']:.4f} (image output ${cost['image_output']:.4f}" in message  # as the call said
    assert f"Tokens: {usage['input_text_tokens']:,} text in" in message
    made_lines = text(made).splitlines()
    assert [line for line in message.splitlines() if line.startswith(("Cost:", "Tokens:"))] == [
        line for line in made_lines if line.startswith(("Cost:", "Tokens:"))
    ]


async def test_get_history_by_uuid_unknown(client: Client) -> None:
    message = await refused(client, "get_history_by_uuid", {"uuid": "no-such-id"})

    assert message == "No history record with id 'no-such-id'. list_history shows the ids you have."


# --- get_metadata_from_image --------------------------------------------------------------------------------


async def test_metadata_of_a_saved_image_is_verified(client: Client) -> None:
    made = await generate(client, "a tin robot", output_path="robot.png")

    result = await succeeds(client, "get_metadata_from_image", {"image_path": "robot.png"})

    check = result.structured_content
    assert check["status"] == "verified"
    assert check["history_id"] == made.structured_content["history_id"]
    assert (check["format"], check["width"], check["height"]) == ("png", 1024, 1024)
    assert check["metadata"]["MCP-Prompt"] == "a tin robot"
    assert check["metadata"]["MCP-Model"] == "gpt-image-2"
    assert check["metadata"]["MCP-Tool"] == "generate_image"
    assert text(result).startswith(f"verified: Matches history record {made.structured_content['history_id']}")


async def test_metadata_of_a_jpeg_given_as_base64_is_verified(client: Client, settings: LocalSettings) -> None:
    await generate(client, "a tin robot", output_path="robot.jpg", output_format="jpeg")
    data = (settings.output_dir / "robot.jpg").read_bytes()

    result = await succeeds(client, "get_metadata_from_image", {"image_base64": b64(data)})

    assert result.structured_content["status"] == "verified"
    assert result.structured_content["path"] is None
    assert result.structured_content["format"] == "jpeg"


async def test_metadata_with_an_altered_prompt_is_a_mismatch(client: Client, settings: LocalSettings) -> None:
    made = await generate(client, "a tin robot", output_path="robot.png")
    saved = settings.output_dir / "robot.png"
    data = saved.read_bytes()
    saved.write_bytes(metadata.embed(data, metadata.read(data) | {"MCP-Prompt": "a golden robot"}))

    result = await succeeds(client, "get_metadata_from_image", {"image_path": "robot.png"})

    history_id = made.structured_content["history_id"]
    assert result.structured_content["status"] == "mismatch"
    assert result.structured_content["detail"] == f"Differs from history record {history_id}: prompt."
    assert text(result).startswith(f"mismatch: Differs from history record {history_id}: prompt.")


async def test_metadata_naming_an_unknown_history_record(client: Client, settings: LocalSettings) -> None:
    await generate(client, "a tin robot", output_path="robot.png")
    saved = settings.output_dir / "robot.png"
    data = saved.read_bytes()
    saved.write_bytes(metadata.embed(data, metadata.read(data) | {"MCP-History-UUID": "elsewhere"}))

    result = await succeeds(client, "get_metadata_from_image", {"image_path": "robot.png"})

    assert result.structured_content["status"] == "no_history"
    assert result.structured_content["history_id"] == "elsewhere"


async def test_metadata_of_a_plain_png(client: Client, settings: LocalSettings) -> None:
    settings.output_dir.mkdir(parents=True)
    (settings.output_dir / "plain.png").write_bytes(png_bytes(32, 32))

    result = await succeeds(client, "get_metadata_from_image", {"image_path": "plain.png"})

    assert result.structured_content["status"] == "no_metadata"
    assert result.structured_content["metadata"] == {}
    assert text(result) == "no_metadata: The file carries no metadata from this server."


async def test_metadata_needs_exactly_one_source(client: Client, emulator: EmulatorServer) -> None:
    for args in ({}, {"image_path": "robot.png", "image_base64": b64(png_bytes(8, 8))}):
        message = await refused(client, "get_metadata_from_image", args)
        assert message == "Give exactly one of image_path or image_base64.", args
    assert image_requests(emulator) == []


async def test_metadata_of_a_missing_file(client: Client, settings: LocalSettings) -> None:
    message = await refused(client, "get_metadata_from_image", {"image_path": "ghost.png"})

    assert message == f"image_path 'ghost.png' was not found in {settings.output_dir}."
