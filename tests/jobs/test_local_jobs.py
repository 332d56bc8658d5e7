"""Local jobs end to end: the job tools over MCP, the in-process runner, the emulator as OpenAI, and a
real server process killed with SIGKILL and started again."""

from __future__ import annotations

import io
import os
import signal
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, ImageContent, ResourceLink, TextContent
from PIL import Image
from stdio_support import emulator_params
from waiting import eventually

from gpt_image_mcp.core.errors import InvalidArgumentError, NotFoundError
from gpt_image_mcp.core.jobs import JobService
from gpt_image_mcp.core.lifecycle import Claim, JobRecord
from gpt_image_mcp.core.requests import GenerateImageArgs
from gpt_image_mcp.core.service import ImageService
from local_sandbox.job_runner import HOST, LocalJobRunner
from local_sandbox.local_server import LOCAL_USER
from local_sandbox.settings import LocalSettings
from local_sandbox.sqlite_jobs import SQLiteJobStore
from local_sandbox.standins.emulator import EmulatorServer

pytestmark = pytest.mark.anyio
JOB_TOOLS = ["start_generation_job", "check_job_status", "get_job_result", "cancel_job", "list_jobs"]


def text(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def saved_files(settings: LocalSettings) -> list[Path]:
    return sorted(p for p in settings.output_dir.rglob("*") if p.is_file()) if settings.output_dir.exists() else []


def history_total(service: ImageService) -> int:
    return service.history.search(LOCAL_USER, limit=1, offset=0).total


async def start(client: Client, **arguments: Any) -> str:
    result = await client.call_tool("start_generation_job", {"tool_name": "generate_image", **arguments})
    assert not result.is_error, text(result)
    assert result.structured_content is not None
    return str(result.structured_content["job_id"])


async def status(client: Client, job_id: str) -> dict[str, Any]:
    result = await client.call_tool("check_job_status", {"job_id": job_id})
    assert not result.is_error, text(result)
    assert result.structured_content is not None
    return result.structured_content


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_job_runs_to_completed_with_progress_and_a_rich_result(
    job_server: MCPServer, emulator: EmulatorServer, settings: LocalSettings, service: ImageService, mode: str
) -> None:
    emulator.set_latency(400)
    async with Client(job_server, mode=mode) as client:
        tools = [tool.name for tool in (await client.list_tools()).tools]
        assert tools[-5:] == JOB_TOOLS
        job_id = await start(client, prompt="a lighthouse", output_path="sea/light.png", include_thumbnail=True)

        seen: list[dict[str, Any]] = []

        async def finished() -> bool:
            seen.append(await status(client, job_id))
            return seen[-1]["status"] == "completed"

        await eventually(finished)
        running = [(s["progress"], s["message"]) for s in seen if s["status"] == "running"]
        assert (0.1, "Sent to OpenAI (gpt-image-2); waiting for the image") in running, seen
        assert seen[-1]["progress"] == 1.0
        assert seen[-1]["attempts"] == 1

        pending = await client.call_tool("get_job_result", {"job_id": job_id})
    assert not pending.is_error
    assert pending.structured_content is not None
    result = pending.structured_content["result"]
    assert result["images"][0]["path"] == "sea/light.png"
    assert result["history_id"] == seen[-1]["history_id"]
    assert [type(block) for block in pending.content] == [TextContent, TextContent, ResourceLink, ImageContent]
    assert "Saved 1 image" in text(pending)
    link = pending.content[2]
    assert isinstance(link, ResourceLink)
    assert link.uri == (settings.output_dir / "sea" / "light.png").as_uri()
    assert saved_files(settings) == [settings.output_dir / "sea" / "light.png"]
    assert service.history.get(LOCAL_USER, result["history_id"]) is not None


async def test_a_job_result_links_files_as_they_are_now(job_client: Client, settings: LocalSettings) -> None:
    job_id = await start(job_client, prompt="two shells", output_path="shells.png", sample_count=2)
    await eventually(lambda: _status_is(job_client, job_id))
    (settings.output_dir / "shells_2.png").unlink()

    result = await job_client.call_tool("get_job_result", {"job_id": job_id})

    assert not result.is_error, text(result)
    images = result.structured_content["result"]["images"]
    assert [image["link"] for image in images] == [
        (settings.output_dir / name).as_uri() for name in ("shells_1.png", "shells_2.png")
    ]
    warning = "No longer in your folder, so their links do not work: shells_2.png."
    assert warning in result.structured_content["result"]["warnings"]
    assert f"Note: {warning}" in text(result)


async def test_pending_and_running_results_say_where_the_job_stands(
    job_client: Client, emulator: EmulatorServer
) -> None:
    answer = emulator.hold()  # the job waits for OpenAI until the test releases the answer
    job_id = await start(job_client, prompt="a slow one")
    assert await anyio.to_thread.run_sync(answer.arrived.wait, 10)
    # The job's watcher writes the stage it reached at its next poll (one write per poll, not one per stage).
    await eventually(lambda: _progress_is(job_client, job_id, 0.1))
    result = await job_client.call_tool("get_job_result", {"job_id": job_id})
    answer.release()
    assert not result.is_error
    assert result.structured_content is not None
    assert result.structured_content["result"] is None
    assert result.structured_content["job"]["status"] == "running"
    assert f"Job {job_id} (generate_image): running, 10%" in text(result)


async def _progress_is(client: Client, job_id: str, progress: float) -> bool:
    return bool((await status(client, job_id))["progress"] == progress)


async def test_a_transform_job_reads_its_reference_image(
    job_client: Client, settings: LocalSettings, emulator: EmulatorServer
) -> None:
    settings.input_dir.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(buffer, "PNG")
    (settings.input_dir / "in.png").write_bytes(buffer.getvalue())
    job_id = await start(
        job_client, tool_name="transform_image", prompt="as a watercolour", reference_image_path="in.png"
    )
    await eventually(lambda: _status_is(job_client, job_id))
    assert emulator.requests[0]["path"] == "/v1/images/edits"


async def _status_is(client: Client, job_id: str, wanted: str = "completed") -> bool:
    return (await status(client, job_id))["status"] == wanted


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"quality": "xhigh"}, "quality 'xhigh' is not available for gpt-image-2"),
        ({"output_format": "jpeg", "transparent_background": True}, "transparent_background needs output_format"),
        ({"mask_image_path": "mask.png"}, "mask_image_path is not a parameter of generate_image"),
        ({"reference_image_base64": "AAAA"}, "reference_image_base64 is not a parameter of generate_image"),
        ({"sample_count": 11}, "sample_count: Input should be less than or equal to 10"),
        ({"tool_name": "edit_image"}, "edit_image needs a reference image"),
        ({"tool_name": "transform_image", "mask_image_base64": "AAAA"}, "only edit_image takes it"),
        ({"tool_name": "upscale_image"}, "tool_name: Input should be 'generate_image', 'edit_image'"),
        ({"model": "gpt-image-1"}, "gpt-image-1"),
    ],
)
async def test_bad_arguments_are_refused_before_a_job_exists(
    job_client: Client, job_store: SQLiteJobStore, emulator: EmulatorServer, arguments: dict[str, Any], message: str
) -> None:
    result = await job_client.call_tool(
        "start_generation_job", {"tool_name": "generate_image", "prompt": "x", **arguments}
    )
    assert result.is_error
    assert message in text(result)
    assert job_store.list(LOCAL_USER, limit=10, offset=0).total == 0
    assert emulator.requests == []


async def test_cancel_while_pending_never_runs(
    jobs: JobService, runner: LocalJobRunner, emulator: EmulatorServer, settings: LocalSettings
) -> None:
    record = await jobs.start(LOCAL_USER, "generate_image", GenerateImageArgs(prompt="never"))
    cancelled = await jobs.cancel(LOCAL_USER, record.job_id)
    assert (cancelled.status, cancelled.message) == ("cancelled", "Cancelled before it started")
    # What the pool does with it, step by step: the queued job is read and not claimed; the sweep finds nothing.
    assert await jobs.execute(cancelled, runner.owner) is None
    assert await jobs.recover(runner.owner_alive) == []
    assert emulator.requests == []
    assert (await jobs.status(LOCAL_USER, record.job_id)).status == "cancelled"
    with pytest.raises(InvalidArgumentError, match="already finished \\(cancelled\\)"):
        await jobs.cancel(LOCAL_USER, record.job_id)
    assert saved_files(settings) == []


async def test_cancel_while_running_stops_the_request_and_saves_nothing(
    job_client: Client, emulator: EmulatorServer, settings: LocalSettings, service: ImageService
) -> None:
    answer = emulator.hold()  # OpenAI's answer waits until the test releases it
    job_id = await start(job_client, prompt="stop me")
    assert await anyio.to_thread.run_sync(answer.arrived.wait, 10)
    result = await job_client.call_tool("cancel_job", {"job_id": job_id})
    assert not result.is_error, text(result)
    assert result.structured_content is not None
    assert result.structured_content["status"] == "cancelled"  # while the answer is held: aborted, not waited for
    assert "nothing was saved" in text(result)
    answer.release()
    await eventually(lambda: emulator.requests[0].get("status") == 200)  # past the emulator's answer: nothing late
    assert (await status(job_client, job_id))["status"] == "cancelled"
    assert saved_files(settings) == []
    assert history_total(service) == 0
    outcome = await job_client.call_tool("get_job_result", {"job_id": job_id})
    assert outcome.structured_content is not None
    assert outcome.structured_content["result"] is None
    assert "cancelled" in text(outcome)


async def test_a_failed_job_reports_the_reason(job_client: Client, emulator: EmulatorServer) -> None:
    emulator.inject(400, code="moderation_blocked")
    job_id = await start(job_client, prompt="refused")
    await eventually(lambda: _status_is(job_client, job_id, "failed"))
    result = await job_client.call_tool("get_job_result", {"job_id": job_id})
    assert result.structured_content is not None
    error = result.structured_content["job"]["error"]
    assert error
    assert error in text(result)


async def test_users_cannot_see_or_cancel_each_others_jobs(
    jobs: JobService, job_store: SQLiteJobStore, runner: LocalJobRunner
) -> None:
    record = await jobs.start("alice", "generate_image", GenerateImageArgs(prompt="mine"))
    for call in (jobs.status, jobs.result, jobs.cancel):
        with pytest.raises(NotFoundError):
            await call("bob", record.job_id)
    assert (await jobs.list("bob", status=None, tool_name=None, limit=10, offset=0)).total == 0
    assert (await jobs.list("alice", status=None, tool_name=None, limit=10, offset=0)).total == 1
    assert (await jobs.status("alice", record.job_id)).status == "pending"


async def test_list_jobs_filters_and_pages(job_client: Client, jobs: JobService) -> None:
    ids = [await start(job_client, prompt=f"p{index}") for index in range(3)]
    await eventually(lambda: all_done(jobs, ids))
    result = await job_client.call_tool("list_jobs", {"status": "completed", "limit": 2, "offset": 1})
    assert result.structured_content is not None
    assert result.structured_content["total"] == 3
    assert [j["job_id"] for j in result.structured_content["jobs"]] == ids[::-1][1:3]
    empty = await job_client.call_tool("list_jobs", {"status": "failed"})
    assert empty.structured_content is not None
    assert empty.structured_content["jobs"] == []
    refused = await job_client.call_tool("list_jobs", {"limit": 101})
    assert refused.is_error


async def all_done(jobs: JobService, ids: list[str]) -> bool:
    records = [await jobs.status(LOCAL_USER, job_id) for job_id in ids]
    return all(record.status == "completed" for record in records)


async def test_concurrency_is_bounded(
    service: ImageService, job_store: SQLiteJobStore, emulator: EmulatorServer
) -> None:
    runner = LocalJobRunner(concurrency=2)
    jobs = JobService(service, job_store, runner, poll_seconds=0.05)
    emulator.set_latency(300)
    ids = [(await jobs.start(LOCAL_USER, "generate_image", GenerateImageArgs(prompt=f"p{i}"))).job_id for i in range(5)]
    most = 0

    async def all_completed() -> bool:
        nonlocal most
        page = job_store.list(LOCAL_USER, limit=10, offset=0)
        most = max(most, sum(record.status == "running" for record in page.records))
        return all(record.status == "completed" for record in page.records)

    async with runner.running(jobs):
        await eventually(all_completed)
    assert most == 2
    assert len(emulator.requests) == len(ids)


def dead_owner() -> str:
    return f"{HOST}:{2**22 + 12345}:gone"  # above Linux's default pid_max, so no such process


async def test_start_up_resumes_a_job_whose_process_died(
    jobs: JobService, job_store: SQLiteJobStore, runner: LocalJobRunner, settings: LocalSettings
) -> None:
    record = await jobs.start(LOCAL_USER, "generate_image", GenerateImageArgs(prompt="orphan"))
    assert await jobs.advance(record, Claim(dead_owner(), 60.0, 2)) is not None  # a live lease, but a dead owner
    async with runner.running(jobs):
        await eventually(lambda: _job(job_store, record.job_id).status == "completed")
    assert _job(job_store, record.job_id).attempts == 2
    assert len(saved_files(settings)) == 1


async def test_start_up_fails_a_job_out_of_attempts(
    jobs: JobService, job_store: SQLiteJobStore, runner: LocalJobRunner, emulator: EmulatorServer
) -> None:
    record = await jobs.start(LOCAL_USER, "generate_image", GenerateImageArgs(prompt="crashes the server"))
    first = await jobs.advance(record, Claim(dead_owner(), -1.0, 2))
    assert first is not None
    second = await jobs.advance(first, Claim(dead_owner(), 60.0, 2))  # the first lease had expired: a second attempt
    assert second is not None
    async with runner.running(jobs):
        await eventually(lambda: _job(job_store, record.job_id).status == "failed")
    assert _job(job_store, record.job_id).error == (
        "The server stopped while the job was running (2 attempts); start a new job to try again."
    )
    assert emulator.requests == []


async def test_a_clean_shutdown_gives_the_running_job_back(
    jobs: JobService,
    job_store: SQLiteJobStore,
    runner: LocalJobRunner,
    emulator: EmulatorServer,
    settings: LocalSettings,
) -> None:
    emulator.set_latency(2000)
    async with runner.running(jobs):
        record = await jobs.start(LOCAL_USER, "generate_image", GenerateImageArgs(prompt="interrupted"))
        await eventually(lambda: len(emulator.requests) == 1)
    released = _job(job_store, record.job_id)
    assert (released.status, released.attempts, released.lease_owner) == ("pending", 0, None)
    emulator.set_latency(0)
    async with runner.running(jobs):
        await eventually(lambda: _job(job_store, record.job_id).status == "completed")
    assert len(saved_files(settings)) == 1


def _job(store: SQLiteJobStore, job_id: str) -> JobRecord:
    record = store.get(LOCAL_USER, job_id)
    assert record is not None
    return record


# -- a real server process, killed -------------------------------------------------------------


async def test_a_job_survives_sigkill_of_the_server(tmp_path: Path, emulator: EmulatorServer) -> None:
    params = emulator_params(tmp_path, emulator)
    emulator.set_latency(30_000)  # the first server dies long before OpenAI would answer
    async with Client(params) as client:
        job_id = await start(client, prompt="survivor", output_path="kept.png")
        store = SQLiteJobStore(tmp_path / "state" / "history.db")
        await eventually(lambda: len(emulator.requests) == 1)
        owner = _job(store, job_id).lease_owner
        assert owner is not None
        pid = int(owner.split(":")[-2])
        os.kill(pid, signal.SIGKILL)
    killed = _job(store, job_id)
    assert (killed.status, killed.attempts) == ("running", 1)  # as the dead process left it

    emulator.set_latency(0)
    async with Client(params) as client:
        await eventually(lambda: _status_is(client, job_id))
        final = await status(client, job_id)
        result = await client.call_tool("get_job_result", {"job_id": job_id})
    store.close()
    assert final["attempts"] == 2
    assert result.structured_content is not None
    assert result.structured_content["result"]["images"][0]["path"] == "kept.png"
    assert (tmp_path / "out" / "kept.png").is_file()
    assert len(emulator.requests) == 2
