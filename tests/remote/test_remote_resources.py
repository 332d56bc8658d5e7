"""Every resource_link of a remote result reads back through the Lambda handler, for its owner only."""

from __future__ import annotations

import base64
import io
import uuid
from collections.abc import AsyncIterator

import anyio.to_thread
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, BlobResourceContents, ResourceLink
from PIL import Image
from remote_support import mcp_client, s3_object, succeeds
from waiting import eventually

from local_sandbox.standins.emulator import EmulatorServer
from local_sandbox.standins.remote_shape import RemoteShape

pytestmark = pytest.mark.anyio


async def test_a_result_link_reads_back_for_its_owner_only(client: Client, shape: RemoteShape, mode: str) -> None:
    path = f"res/{uuid.uuid4().hex[:8]}.png"
    result = await succeeds(client, "generate_image", {"prompt": "a resource", "quality": "low", "output_path": path})
    [image] = result.structured_content["images"]
    [link] = [block for block in result.content if isinstance(block, ResourceLink)]
    assert str(link.uri) == f"gpt-image://images/{path}"
    assert image["link"].startswith(shape.moto_url)  # the download link stays a presigned URL

    [contents] = (await client.read_resource(str(link.uri))).contents
    assert isinstance(contents, BlobResourceContents) and contents.mime_type == "image/png"
    assert base64.b64decode(contents.blob) == s3_object(image["location"])

    listed = await client.list_resources()
    assert str(link.uri) in [str(resource.uri) for resource in listed.resources]
    templates = (await client.list_resource_templates()).resource_templates
    assert [t.uri_template for t in templates] == ["gpt-image://images/{+key}", "gpt-image://jobs/{job_id}/preview"]

    async with mcp_client(shape, shape.create_key(f"stranger-{uuid.uuid4().hex[:6]}"), mode) as stranger:
        answers = []
        for uri in (str(link.uri), "gpt-image://images/res/never-made.png"):
            with pytest.raises(MCPError) as caught:
                await stranger.read_resource(uri)
            answers.append((caught.value.error.code, caught.value.error.message.replace(uri, "<uri>")))
    assert answers == [(INVALID_PARAMS, "Resource not found: <uri>")] * 2  # someone else's image, or none at all


async def test_a_running_jobs_preview_reads_back_for_its_owner_only(
    client: Client, shape: RemoteShape, emulator: EmulatorServer, mode: str
) -> None:
    gate = emulator.hold("/images/generations", after_events=1)  # the answer waits after its first partial image
    try:
        started = await succeeds(
            client, "start_generation_job", {"tool_name": "generate_image", "prompt": "a kite", "partial_images": 2}
        )
        job_id = started.structured_content["job_id"]
        assert await anyio.to_thread.run_sync(gate.arrived.wait, 60)
        uri = f"gpt-image://jobs/{job_id}/preview"

        async def linked() -> bool:  # the status row catches up with the partial image that has arrived
            status = await succeeds(client, "check_job_status", {"job_id": job_id})
            return uri in [str(block.uri) for block in status.content if isinstance(block, ResourceLink)]

        await eventually(linked)
        [contents] = (await client.read_resource(uri)).contents
        assert isinstance(contents, BlobResourceContents) and contents.mime_type == "image/png"
        assert Image.open(io.BytesIO(base64.b64decode(contents.blob))).size == (256, 256)  # a quarter-size partial

        async with mcp_client(shape, shape.create_key(f"stranger-{uuid.uuid4().hex[:6]}"), mode) as stranger:
            with pytest.raises(MCPError) as caught:
                await stranger.read_resource(uri)
        assert (caught.value.error.code, caught.value.error.message) == (INVALID_PARAMS, f"Resource not found: {uri}")
    finally:
        gate.release()


@pytest.fixture(params=["auto", "legacy"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def client(shape: RemoteShape, mode: str) -> AsyncIterator[Client]:
    async with mcp_client(shape, shape.token, mode) as connected:
        yield connected
