"""The SDK `Client` through the API Gateway stand-in, with a bearer token, in both protocol eras."""

from __future__ import annotations

import shlex
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.types import ResourceLink
from remote_support import png_bytes, refused, s3_object, succeeds, text

from local_sandbox.standins.emulator import EmulatorServer
from local_sandbox.standins.remote_shape import RemoteShape

pytestmark = pytest.mark.anyio


async def test_generate_link_download_and_history(client: Client, shape: RemoteShape, emulator: EmulatorServer) -> None:
    prompt = f"a remote fox {uuid.uuid4().hex[:8]}"
    result = await succeeds(
        client, "generate_image", {"prompt": prompt, "quality": "low", "output_path": "foxes/f.png"}
    )
    content = result.structured_content
    assert content is not None
    image = content["images"][0]
    assert image["location"].startswith(f"s3://{shape.env['IMAGES_BUCKET']}/users/")
    link = urlsplit(image["link"])
    assert f"{link.scheme}://{link.netloc}" == shape.moto_url  # presigned on moto's loopback server
    assert parse_qs(link.query)["X-Amz-Expires"] == ["900"]
    # The link to read it is the server's own (resources/read); the presigned URL is the one to download it.
    assert [str(block.uri) for block in result.content if isinstance(block, ResourceLink)] == [
        f"gpt-image://images/{image['path']}"
    ]
    async with httpx2.AsyncClient() as http:
        download = await http.get(image["link"])
    assert download.status_code == 200
    assert download.content == s3_object(image["location"]) and len(download.content) == image["bytes"]
    assert download.content.startswith(b"\x89PNG")

    listed = await succeeds(client, "list_generated_images", {"directory": "foxes"})
    assert image["path"] in [item["path"] for item in (listed.structured_content or {})["images"]]
    history = await succeeds(client, "list_history", {"query": prompt})
    records = (history.structured_content or {})["records"]
    assert [record["uuid"] for record in records] == [content["history_id"]]
    detail = await succeeds(client, "get_history_by_uuid", {"uuid": content["history_id"]})
    assert (detail.structured_content or {})["prompt"] == prompt
    assert len(emulator.requests) == 1


async def test_an_upload_link_states_its_limit_in_readable_units(client: Client) -> None:
    small = await succeeds(client, "create_upload_url", {"file_name": "tiny.png", "max_bytes": 100})
    assert "(image/png, up to 100 bytes), valid for 15 min" in text(small)
    default = await succeeds(client, "create_upload_url", {"file_name": "big.png"})
    assert "(image/png, up to 50 MB), valid for 15 min" in text(default)
    misnamed = await refused(client, "create_upload_url", {"filename": "big.png"})
    assert misnamed == "Invalid arguments: unknown parameter 'filename' (did you mean 'file_name'?)."


async def test_upload_through_a_presigned_post_then_edit(
    client: Client, shape: RemoteShape, emulator: EmulatorServer, tmp_path: Path
) -> None:
    made = await succeeds(client, "create_upload_url", {"file_name": "uploads/in.jpg", "content_type": "image/png"})
    upload = made.structured_content
    assert upload is not None
    assert upload["key"].startswith("uploads/in") and upload["key"].endswith(".png")  # extension follows the type
    assert upload["url"].startswith(shape.moto_url) and upload["expires_in"] == 900
    assert upload["curl"] in text(made) and upload["key"] in text(made)
    data = png_bytes(320, 240)
    local = tmp_path / upload["key"].rsplit("/", 1)[-1]
    local.write_bytes(data)
    # the curl example from the result, as a user would paste it
    done = await anyio.run_process(shlex.split(upload["curl"]), cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    folder = upload["location"].rsplit("/", 1)[0]
    assert s3_object(upload["location"]) == data and folder.endswith("/uploads")

    edited = await succeeds(
        client, "edit_image", {"prompt": "add a hat", "reference_image_path": upload["key"], "quality": "low"}
    )
    assert (edited.structured_content or {})["tool"] == "edit_image"
    history_id = (edited.structured_content or {})["history_id"]
    detail = await succeeds(client, "get_history_by_uuid", {"uuid": history_id})
    assert (detail.structured_content or {})["parameters"]["reference_images"] == [upload["key"]]
    assert [entry["path"] for entry in emulator.requests] == ["/v1/images/edits"]


async def test_upload_with_httpx_multipart(client: Client, shape: RemoteShape) -> None:
    made = await succeeds(client, "create_upload_url", {"file_name": "in.webp", "content_type": "image/png"})
    upload = made.structured_content or {}
    data = png_bytes(64, 64)
    async with httpx2.AsyncClient() as http:
        posted = await http.post(upload["url"], data=upload["fields"], files={"file": ("in.png", data, "image/png")})
    assert posted.status_code in (200, 201, 204), posted.text
    metadata = await client.call_tool("get_metadata_from_image", {"image_path": upload["key"]})
    assert not metadata.is_error and (metadata.structured_content or {})["status"] == "no_metadata"
