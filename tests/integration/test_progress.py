"""Progress in worded stages, as a client over stdio hears it: validated → sent → each partial image → received →
saved, strictly increasing, for every image tool and in a job's status; partial previews are billed and shown."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import anyio
import anyio.to_thread
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, BlobResourceContents, ResourceLink
from stdio_support import emulator_params
from tool_support import decode_image, image_requests, png_bytes, refused, succeeds, text

from local_sandbox.standins.emulator import EmulatorServer

pytestmark = pytest.mark.anyio
PREVIEW = re.compile(r"; preview: (file://\S+)$")


@pytest.fixture
async def client(tmp_path: Path, emulator: EmulatorServer) -> AsyncIterator[Client]:
    async with Client(emulator_params(tmp_path, emulator)) as connected:
        yield connected


def without_link(message: str) -> str:
    return PREVIEW.sub("; preview: <link>", message)


@pytest.mark.parametrize(
    ("tool", "extra"),
    [
        ("generate_image", {}),
        ("edit_image", {"reference_image_path": "ref.png"}),
        ("transform_image", {"reference_image_path": "ref.png"}),
    ],
)
async def test_every_image_tool_reports_its_stages_in_words_and_in_order(
    tmp_path: Path, emulator: EmulatorServer, client: Client, tool: str, extra: dict[str, str]
) -> None:
    (tmp_path / "out").mkdir(exist_ok=True)
    (tmp_path / "out" / "ref.png").write_bytes(png_bytes(1024, 1024))
    heard: list[tuple[float, str]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        heard.append((value, message or ""))

    result = await client.call_tool(
        tool, {"prompt": "a lighthouse", "partial_images": 2, **extra}, progress_callback=on_progress
    )

    assert not result.is_error, text(result)
    values = [value for value, _ in heard]
    assert values == sorted(set(values)), heard  # strictly increasing
    assert [without_link(message) for _, message in heard] == [
        "Validated: 1 image with gpt-image-2, size auto, quality auto",
        "Sent to OpenAI (gpt-image-2); waiting for the image",
        "Partial image 1 of 2; preview: <link>",
        "Partial image 2 of 2; preview: <link>",
        f"Received from OpenAI: 1 image, {heard[4][1].rsplit(', ', 1)[1]}",
        "Saved 1 image",
        "Done",
    ]
    assert heard[-1][0] == 1.0
    assert image_requests(emulator)[0]["json" if tool == "generate_image" else "fields"]["partial_images"] in (2, "2")


async def test_a_jobs_status_follows_the_stages_and_links_its_latest_partial_image(
    tmp_path: Path, emulator: EmulatorServer, client: Client
) -> None:
    gate = emulator.hold(after_events=1)  # the answer waits after its first partial image
    started = await succeeds(
        client, "start_generation_job", {"tool_name": "generate_image", "prompt": "a lighthouse", "partial_images": 2}
    )
    assert started.structured_content is not None
    job_id = started.structured_content["job_id"]
    assert await anyio.to_thread.run_sync(gate.arrived.wait, 60)

    for _ in range(200):  # the status row catches up with the partial image that has arrived
        status = await succeeds(client, "check_job_status", {"job_id": job_id})
        assert status.structured_content is not None
        if status.structured_content["message"].startswith("Partial image 1 of 2"):
            break
        await anyio.sleep(0.05)
    job = status.structured_content
    assert (job["status"], job["progress"]) == ("running", pytest.approx(0.1 + 0.6 / 2))
    found = PREVIEW.search(job["message"])
    assert found, job["message"]
    preview = anyio.Path(unquote(urlsplit(found[1]).path))
    assert decode_image(await preview.read_bytes()).size == (256, 256)  # the emulator's partials are a quarter size
    assert f"running, 40%: Partial image 1 of 2; preview: {found[1]}" in text(status)
    [link] = [block for block in status.content if isinstance(block, ResourceLink)]  # a client can read it too
    assert str(link.uri) == f"gpt-image://jobs/{job_id}/preview"
    [contents] = (await client.read_resource(str(link.uri))).contents
    assert isinstance(contents, BlobResourceContents) and contents.mime_type == "image/png"
    assert base64.b64decode(contents.blob) == await preview.read_bytes()

    gate.release()
    for _ in range(200):
        done = await succeeds(client, "check_job_status", {"job_id": job_id})
        assert done.structured_content is not None
        if done.structured_content["status"] == "completed":
            break
        await anyio.sleep(0.05)
    assert (done.structured_content["status"], done.structured_content["progress"]) == ("completed", 1.0)
    assert not await preview.exists()  # the job is settled: its kept answer and preview are gone
    assert not [block for block in done.content if isinstance(block, ResourceLink)]
    for uri in (str(link.uri), "gpt-image://jobs/no-such-job/preview"):  # gone with the job, or never there
        with pytest.raises(MCPError) as caught:
            await client.read_resource(uri)
        assert (caught.value.error.code, caught.value.error.message) == (INVALID_PARAMS, f"Resource not found: {uri}")


async def test_partial_images_are_billed_as_100_output_tokens_each(emulator: EmulatorServer, client: Client) -> None:
    plain = await succeeds(client, "generate_image", {"prompt": "a lighthouse", "size": "1024x1024"})
    previewed = await succeeds(
        client, "generate_image", {"prompt": "a lighthouse", "size": "1024x1024", "partial_images": 3}
    )

    assert plain.structured_content is not None and previewed.structured_content is not None
    before, after = plain.structured_content, previewed.structured_content
    assert after["usage"]["output_tokens"] == before["usage"]["output_tokens"] + 300
    assert (before["usage"]["partial_image_tokens"], after["usage"]["partial_image_tokens"]) == (0, 300)
    assert after["cost"]["partial_images"] == pytest.approx(300 * 30 / 1_000_000)  # gpt-image-2: $30 per 1M
    assert after["cost"]["image_output"] == pytest.approx(before["cost"]["image_output"] + 0.009)
    assert "incl. partial images $0.0090" in text(previewed)


async def test_an_error_event_after_the_answer_began_is_explained_and_not_retried(
    tmp_path: Path, emulator: EmulatorServer, client: Client
) -> None:
    emulator.break_answer("stream_error")

    message = await refused(client, "generate_image", {"prompt": "a lighthouse", "partial_images": 1})

    assert message.startswith("OpenAI's safety system rejected the images it made (categories: violence) (request id")
    assert "Not retried" in message
    assert len(image_requests(emulator)) == 1
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


async def test_several_images_or_streaming_turned_off_come_as_one_plain_answer(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    async with Client(emulator_params(tmp_path, emulator, OPENAI_IMAGE_STREAM="false")) as client:
        single = await succeeds(client, "generate_image", {"prompt": "a kite", "partial_images": 2})
    async with Client(emulator_params(tmp_path, emulator)) as client:
        several = await succeeds(client, "generate_image", {"prompt": "kites", "sample_count": 2, "partial_images": 2})

    assert [request["json"].get("stream") for request in image_requests(emulator)] == [None, None]
    assert single.structured_content is not None and several.structured_content is not None
    assert single.structured_content["warnings"] == [
        "partial_images needs streaming, which OPENAI_IMAGE_STREAM=false turns off; none asked."
    ]
    assert several.structured_content["warnings"] == [
        "partial_images is for single images: with sample_count 2 the images arrive together, without previews."
    ]
