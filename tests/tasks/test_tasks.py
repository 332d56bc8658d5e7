"""MCP tasks (SEP-2663) over the durable jobs: handles, polling, synchronous fallback, refusals, cancel, isolation.

In memory, with the SDK's own `Client` in both eras; the emulator stands in for OpenAI.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, ImageContent, ResourceLink, TextContent
from task_support import (
    OTHER_USER,
    POLL_MS,
    CreateTaskResult,
    TasksClient,
    cancel_task,
    get_task,
    start_task,
    update_task,
)
from waiting import eventually

from gpt_image_mcp.core.service import ImageService
from gpt_image_mcp.server.tasks import TASKS_EXTENSION
from local_sandbox.local_server import LOCAL_USER, build_local_server, build_parts
from local_sandbox.settings import LocalSettings
from local_sandbox.sqlite_jobs import SQLiteJobStore
from local_sandbox.standins.emulator import EmulatorServer

pytestmark = pytest.mark.anyio
TASK_KEYS = {"taskId", "status", "statusMessage", "createdAt", "lastUpdatedAt", "ttlMs", "pollIntervalMs"}


def text(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def saved_files(settings: LocalSettings) -> list[Path]:
    return sorted(p for p in settings.output_dir.rglob("*") if p.is_file()) if settings.output_dir.exists() else []


def job_total(store: SQLiteJobStore) -> int:
    return store.list(LOCAL_USER, limit=1, offset=0).total


async def handle_of(client: Client, arguments: dict[str, Any]) -> CreateTaskResult:
    answer = await start_task(client, "generate_image", arguments)
    assert isinstance(answer, CreateTaskResult), answer
    return answer


async def test_a_declaring_client_gets_a_task_and_polls_it_to_the_rich_result(
    task_server: MCPServer, emulator: EmulatorServer, settings: LocalSettings, job_store: SQLiteJobStore
) -> None:
    emulator.set_latency(300)
    tasks = TasksClient()
    arguments = {"prompt": "a lighthouse", "output_path": "sea/light.png", "include_thumbnail": True}
    async with Client(task_server, extensions=[tasks]) as client:
        assert client.protocol_version == "2026-07-28"
        assert TASKS_EXTENSION in (client.server_capabilities.extensions or {})
        result = await client.call_tool("generate_image", arguments)

    assert not result.is_error, text(result)
    assert [type(block) for block in result.content] == [TextContent, ResourceLink, ImageContent]
    assert "Saved 1 image" in text(result)
    link = result.content[1]
    assert isinstance(link, ResourceLink)
    assert link.uri == (settings.output_dir / "sea" / "light.png").as_uri()
    assert result.structured_content is not None
    assert result.structured_content["images"][0]["path"] == "sea/light.png"
    assert saved_files(settings) == [settings.output_dir / "sea" / "light.png"]

    [handle] = tasks.handles
    assert str(uuid.UUID(handle.task_id)) == handle.task_id  # the job's uuid: unguessable
    assert (handle.status, handle.poll_interval_ms, handle.ttl_ms) == ("working", POLL_MS, None)
    record = job_store.get(LOCAL_USER, handle.task_id)
    assert record is not None
    assert record.status == "completed"
    assert record.history_id == result.structured_content["history_id"]
    statuses = [status for status, _ in tasks.seen]
    assert statuses[0] == "working"
    assert statuses[-1] == "completed"
    assert ("working", "10%: Sent to OpenAI (gpt-image-2); waiting for the image") in tasks.seen, tasks.seen


async def test_tasks_get_reads_a_finished_task_with_its_files_as_they_are_now(
    task_server: MCPServer, settings: LocalSettings
) -> None:
    tasks = TasksClient()
    async with Client(task_server, extensions=[tasks]) as client:
        done = await client.call_tool(
            "generate_image", {"prompt": "pair", "output_path": "pair.png", "sample_count": 2}
        )
        assert not done.is_error, text(done)
        (settings.output_dir / "pair_1.png").unlink()
        later = await get_task(client, tasks.handles[0].task_id)
    assert later.status == "completed" and later.result is not None
    result = later.result["structuredContent"]
    assert [image["link"] for image in result["images"]] == [
        (settings.output_dir / name).as_uri() for name in ("pair_1.png", "pair_2.png")
    ]
    assert result["warnings"][0] == "No longer in your folder, so their links do not work: pair_1.png."
    assert done.structured_content is not None and done.structured_content["warnings"] == []


async def test_the_task_result_is_the_synchronous_result(task_server: MCPServer, emulator: EmulatorServer) -> None:
    """Field for field the CallToolResult JSON the synchronous tool returns (file names and ids aside)."""
    arguments = {"prompt": "twins", "include_thumbnail": True, "return_base64": True}
    async with Client(task_server) as plain:
        synchronous = await plain.call_tool("generate_image", {**arguments, "output_path": "a.png"})
    async with Client(task_server, extensions=[TasksClient()]) as client:
        handle = await handle_of(client, {**arguments, "output_path": "b.png"})
        assert handle.model_dump(by_alias=True, exclude={"meta"}).keys() == TASK_KEYS | {"resultType"}
        await eventually(lambda: _status_is(client, handle.task_id, "completed"))
        task = await get_task(client, handle.task_id)

    assert task.result_type == "complete"
    assert task.result is not None
    polled = CallToolResult.model_validate(task.result)
    assert polled.is_error is False
    assert [block.type for block in polled.content] == [block.type for block in synchronous.content]
    assert polled.content[2] == synchronous.content[2]  # the thumbnail of the same emulator picture
    full = [(block.type, getattr(block, "mime_type", None)) for block in (polled.content[3], synchronous.content[3])]
    assert full == [("image", "image/png")] * 2  # the full images differ only in their embedded history ids
    assert polled.structured_content is not None
    assert synchronous.structured_content is not None
    ignore = {"history_id", "images"}
    assert {k: v for k, v in polled.structured_content.items() if k not in ignore} == {
        k: v for k, v in synchronous.structured_content.items() if k not in ignore
    }
    assert text(polled).replace("b.png", "a.png").split("History id")[0] == text(synchronous).split("History id")[0]


async def _status_is(client: Client, task_id: str, wanted: str) -> bool:
    status: str = (await get_task(client, task_id)).status
    return status == wanted


async def test_the_handle_is_answered_only_after_the_job_row_exists(
    task_server: MCPServer, emulator: EmulatorServer, job_store: SQLiteJobStore
) -> None:
    emulator.set_latency(1000)
    async with Client(task_server, extensions=[TasksClient()]) as client:
        handle = await handle_of(client, {"prompt": "at once"})
        assert job_store.get(LOCAL_USER, handle.task_id) is not None
        first = await get_task(client, handle.task_id)
        assert (first.task_id, first.status, first.created_at) == (handle.task_id, "working", handle.created_at)
        assert (await update_task(client, handle.task_id)).result_type == "complete"  # nothing to answer: an ack
        await cancel_task(client, handle.task_id)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_clients_that_do_not_declare_tasks_get_the_synchronous_result(
    task_server: MCPServer, emulator: EmulatorServer, job_store: SQLiteJobStore, mode: str
) -> None:
    async with Client(task_server, mode=mode) as client:
        result = await client.call_tool("generate_image", {"prompt": "right away", "output_path": "now.png"})
    assert not result.is_error, text(result)
    assert result.structured_content is not None
    assert result.structured_content["images"][0]["path"] == "now.png"
    # The one job row is the synchronous call's own (every local call is a durable job), finished before it answered.
    page = job_store.list(LOCAL_USER, status=None, tool_name=None, limit=10, offset=0)
    assert [(record.status, record.history_id) for record in page.records] == [
        ("completed", result.structured_content["history_id"])
    ]


async def test_other_tools_stay_synchronous_for_a_declaring_client(task_server: MCPServer) -> None:
    async with Client(task_server, extensions=[TasksClient()]) as client:
        answer = await client.session.call_tool("list_history", {}, allow_claimed=True)
    assert isinstance(answer, CallToolResult)
    assert not answer.is_error


@pytest.mark.parametrize(
    "arguments",
    [
        {},
        {"prompt": ""},
        {"prompt": "x", "sample_count": 11},
        {"prompt": "x", "quality": "xhigh"},
        {"prompt": "x", "output_format": "jpeg", "transparent_background": True},
        {"prompt": "x", "model": "gpt-image-1"},
        {"prompt": "x", "n": 4},
    ],
)
async def test_bad_arguments_get_the_synchronous_refusal_and_no_job(
    task_server: MCPServer, emulator: EmulatorServer, job_store: SQLiteJobStore, arguments: dict[str, Any]
) -> None:
    async with Client(task_server) as plain:
        synchronous = await plain.call_tool("generate_image", arguments)
    async with Client(task_server, extensions=[TasksClient()]) as client:
        answer = await start_task(client, "generate_image", arguments)
    assert isinstance(answer, CallToolResult)
    assert synchronous.is_error
    assert answer.model_dump() == synchronous.model_dump()
    assert job_total(job_store) == 0
    assert emulator.requests == []


async def test_a_refused_job_is_a_completed_task_with_the_refusal(
    task_server: MCPServer, emulator: EmulatorServer
) -> None:
    """SEP-2663: an is_error tool result completes the task; `failed` is only for JSON-RPC errors."""
    emulator.inject(400, code="moderation_blocked")
    async with Client(task_server) as plain:
        synchronous = await plain.call_tool("generate_image", {"prompt": "refused"})
    emulator.inject(400, code="moderation_blocked")
    tasks = TasksClient()
    async with Client(task_server, extensions=[tasks]) as client:
        result = await client.call_tool("generate_image", {"prompt": "refused"})
    assert result.is_error
    assert synchronous.is_error
    assert without_request_id(text(result)) == without_request_id(text(synchronous))
    assert tasks.seen[-1] == ("completed", text(result))


def without_request_id(message: str) -> str:
    return re.sub(r"req_[0-9a-f]+", "req_…", message)


async def test_cancelling_a_running_task_stops_it_and_saves_nothing(
    task_server: MCPServer, emulator: EmulatorServer, settings: LocalSettings, service: ImageService
) -> None:
    answer = emulator.hold()  # OpenAI's answer waits until the test releases it
    async with Client(task_server, extensions=[TasksClient()]) as client:
        handle = await handle_of(client, {"prompt": "stop me"})
        assert await anyio.to_thread.run_sync(answer.arrived.wait, 10)
        assert (await get_task(client, handle.task_id)).status == "working"
        ack = await cancel_task(client, handle.task_id)
        assert ack.result_type == "complete"
        cancelled = await get_task(client, handle.task_id)
        assert cancelled.status == "cancelled"
        assert cancelled.result is None
        assert cancelled.status_message == "Cancelled while running; the request was stopped and nothing was saved"
        answer.release()
        await eventually(lambda: emulator.requests[0].get("status") == 200)  # past the answer: nothing arrives late
        assert (await get_task(client, handle.task_id)).status == "cancelled"
        await cancel_task(client, handle.task_id)  # cancelling a finished task is still acknowledged
    assert saved_files(settings) == []
    assert service.history.search(LOCAL_USER, limit=1, offset=0).total == 0


async def test_another_user_cannot_see_update_or_cancel_a_task(
    task_server: MCPServer, other_user_server: MCPServer, emulator: EmulatorServer, job_store: SQLiteJobStore
) -> None:
    emulator.set_latency(500)
    async with Client(task_server, extensions=[TasksClient()]) as owner:
        handle = await handle_of(owner, {"prompt": "mine"})
        async with Client(other_user_server, extensions=[TasksClient()]) as stranger:
            for call in (get_task, cancel_task, update_task):
                with pytest.raises(MCPError) as refused:
                    await call(stranger, handle.task_id)
                assert refused.value.error.code == -32602
                assert refused.value.error.message.endswith("Task not found")
        record = job_store.get(LOCAL_USER, handle.task_id)
        assert record is not None
        assert not record.cancel_requested
        assert job_store.list(OTHER_USER, limit=1, offset=0).total == 0
        with pytest.raises(MCPError) as unknown:
            await get_task(owner, str(uuid.uuid4()))
        assert unknown.value.error.code == -32602
        await eventually(lambda: _status_is(owner, handle.task_id, "completed"))


@pytest.mark.parametrize(("mode", "code"), [("auto", -32021), ("legacy", -32601)])
async def test_tasks_methods_need_the_declared_extension(task_server: MCPServer, mode: str, code: int) -> None:
    """A 2026 client without the capability gets -32021 (missing client capability); a 2025 client has no such
    method at all."""
    async with Client(task_server, extensions=[TasksClient()]) as client:
        handle = await handle_of(client, {"prompt": "exists"})
    async with Client(task_server, mode=mode) as client:
        with pytest.raises(MCPError) as refused:
            await get_task(client, handle.task_id)
    assert refused.value.error.code == code


async def test_the_local_server_offers_tasks(settings: LocalSettings, emulator: EmulatorServer) -> None:
    parts = build_parts(settings)
    server = build_local_server(parts)
    tasks = TasksClient()
    async with Client(server, extensions=[tasks]) as client:
        assert TASKS_EXTENSION in (client.server_capabilities.extensions or {})
        result = await client.call_tool("generate_image", {"prompt": "wired", "output_path": "wired.png"})
    assert not result.is_error, text(result)
    assert [handle.poll_interval_ms for handle in tasks.handles] == [1000]
    assert saved_files(settings) == [settings.output_dir / "wired.png"]
