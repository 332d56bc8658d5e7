"""Every resource_link a result gives can be read: resources/read, /list and /templates/list of the local server,
through the SDK client in both protocol eras (the `client` fixture)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, BlobResourceContents
from tool_support import links, png_bytes, succeeds

from local_sandbox.local_server import build_local_server, build_parts
from local_sandbox.settings import LocalSettings

pytestmark = pytest.mark.anyio


async def read_bytes(client: Client, uri: str) -> tuple[bytes, str | None]:
    [contents] = (await client.read_resource(uri)).contents
    assert isinstance(contents, BlobResourceContents), contents
    return base64.b64decode(contents.blob), contents.mime_type


async def refusal(client: Client, uri: str) -> MCPError:
    with pytest.raises(MCPError) as caught:
        await client.read_resource(uri)
    return caught.value


async def test_every_link_of_a_result_reads_back_as_the_saved_bytes(client: Client, settings: LocalSettings) -> None:
    result = await succeeds(
        client,
        "generate_image",
        {"prompt": "two kites", "output_path": "kites.webp", "output_format": "webp", "sample_count": 2},
    )
    for link in links(result):
        data, mime = await read_bytes(client, str(link.uri))
        assert (data, mime) == ((settings.output_dir / link.name).read_bytes(), "image/webp")


async def test_an_image_in_the_input_folder_reads_back_too(settings: LocalSettings, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "photo.png").write_bytes(png_bytes())
    parts = build_parts(settings.model_copy(update={"input_dir": inputs}))
    try:
        async with Client(build_local_server(parts)) as client:
            assert await read_bytes(client, (inputs / "photo.png").as_uri()) == (png_bytes(), "image/png")
    finally:
        parts.store.close()


async def test_nothing_outside_the_folders_is_served(client: Client, settings: LocalSettings, tmp_path: Path) -> None:
    outside = tmp_path / "secret.png"
    outside.write_bytes(png_bytes())
    settings.output_dir.mkdir(parents=True, exist_ok=True)
    (settings.output_dir / "escape.png").symlink_to(outside)

    missing = await refusal(client, (settings.output_dir / "nothing.png").as_uri())
    assert (missing.error.code, missing.error.message) == (
        INVALID_PARAMS,
        f"Resource not found: {(settings.output_dir / 'nothing.png').as_uri()}",
    )
    for uri in (outside.as_uri(), (settings.output_dir / "escape.png").as_uri()):
        refused = await refusal(client, uri)
        assert refused.error.code == INVALID_PARAMS
        assert str(settings.output_dir) in refused.error.message, refused.error.message
    foreign = await refusal(client, "https://example.com/cat.png")
    assert foreign.error.message == "Resource not found: https://example.com/cat.png"


async def test_the_template_and_the_pages_of_recent_images(client: Client, settings: LocalSettings) -> None:
    template, previews = (await client.list_resource_templates()).resource_templates
    assert (template.uri_template, previews.uri_template) == ("file:///{+path}", "gpt-image://jobs/{job_id}/preview")
    assert str(settings.output_dir) in (template.description or "")

    settings.output_dir.mkdir(parents=True, exist_ok=True)
    for index in range(53):
        path = settings.output_dir / f"img-{index:02d}.png"
        path.write_bytes(png_bytes(8, 8))
        os.utime(path, (1_700_000_000 + index, 1_700_000_000 + index))
    first = await client.list_resources()
    second = await client.list_resources(cursor=first.next_cursor)
    assert first.next_cursor == "50" and second.next_cursor is None
    names = [resource.name for resource in (*first.resources, *second.resources)]
    assert names == [f"img-{index:02d}.png" for index in reversed(range(53))]  # newest first
    newest = first.resources[0]
    assert (str(newest.uri), newest.mime_type, newest.size) == (
        (settings.output_dir / "img-52.png").as_uri(),
        "image/png",
        len(png_bytes(8, 8)),
    )
    with pytest.raises(MCPError) as caught:
        await client.list_resources(cursor="page-two")
    assert "Invalid cursor 'page-two'" in caught.value.error.message
