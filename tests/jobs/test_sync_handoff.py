"""A synchronous image call past the local budget continues as a durable job (`BudgetedCalls`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from waiting import eventually

from gpt_image_mcp.core.service import ImageService
from local_sandbox.local_server import LOCAL_USER
from local_sandbox.settings import LocalSettings
from local_sandbox.sqlite_jobs import SQLiteJobStore
from local_sandbox.standins.emulator import EmulatorServer

pytestmark = pytest.mark.anyio
BUDGET = 1  # OPENAI_IMAGE_SYNC_BUDGET


@pytest.fixture
def settings(settings: LocalSettings) -> LocalSettings:
    return settings.model_copy(update={"sync_budget_seconds": BUDGET})


@pytest.fixture
async def budget_client(server: MCPServer) -> AsyncIterator[Client]:
    async with Client(server) as connected:
        yield connected


def saved_files(service: ImageService) -> list[Path]:
    root = service.settings.output_dir
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


async def test_a_call_within_the_budget_returns_its_images_and_is_recorded_as_a_finished_job(
    budget_client: Client, emulator: EmulatorServer, job_store: SQLiteJobStore
) -> None:
    result = await budget_client.call_tool("generate_image", {"prompt": "quick", "output_path": "quick.png"})
    assert not result.is_error, result.content
    assert result.structured_content is not None
    assert result.structured_content["status"] == "completed"
    assert result.structured_content["images"][0]["path"] == "quick.png"
    page = job_store.list(LOCAL_USER, status=None, tool_name=None, limit=10, offset=0)
    assert [record.status for record in page.records] == ["completed"]
    assert len(emulator.requests) == 1

    background = await budget_client.call_tool("list_jobs", {})
    assert background.structured_content is not None
    assert (background.structured_content["total"], background.structured_content["jobs"]) == (0, [])
    every = await budget_client.call_tool("list_jobs", {"include_synchronous": True})
    assert every.structured_content is not None
    assert [(j["job_id"], j["background"]) for j in every.structured_content["jobs"]] == [
        (page.records[0].job_id, False)
    ]


async def test_a_call_past_the_budget_continues_as_a_job_and_completes_with_one_upstream_call(
    budget_client: Client, emulator: EmulatorServer, service: ImageService
) -> None:
    emulator.set_latency(int(BUDGET * 1000) + 1500)
    result = await budget_client.call_tool("generate_image", {"prompt": "slow", "output_path": "slow.png"})
    assert not result.is_error, result.content
    content = result.structured_content
    assert content is not None and content["status"] == "continues_as_job" and content["images"] == []
    job_id = content["job_id"]
    listed = await budget_client.call_tool("list_jobs", {})  # told it continues as a job: it is listed as one
    assert listed.structured_content is not None
    assert [(j["job_id"], j["background"]) for j in listed.structured_content["jobs"]] == [(job_id, True)]
    message = result.content[0].text  # type: ignore[union-attr]
    assert (
        "still running after 1 s (OPENAI_IMAGE_SYNC_BUDGET)" in message
        and job_id in message
        and "get_job_result" in message
    )

    async def done() -> bool:
        status = await budget_client.call_tool("check_job_status", {"job_id": job_id})
        assert status.structured_content is not None
        return bool(status.structured_content["status"] == "completed")

    await eventually(done, every=0.1)
    final = await budget_client.call_tool("get_job_result", {"job_id": job_id})
    assert final.structured_content is not None
    assert final.structured_content["result"]["images"][0]["path"] == "slow.png"
    assert [path.name for path in saved_files(service)] == ["slow.png"]
    assert len(emulator.requests) == 1


async def test_a_handed_off_call_can_be_cancelled_and_saves_nothing(
    budget_client: Client, emulator: EmulatorServer, service: ImageService
) -> None:
    emulator.set_latency(4000)
    result = await budget_client.call_tool("generate_image", {"prompt": "stop me"})
    assert result.structured_content is not None
    job_id = result.structured_content["job_id"]
    cancelled = await budget_client.call_tool("cancel_job", {"job_id": job_id})
    assert cancelled.structured_content is not None and cancelled.structured_content["status"] == "cancelled"
    history = await budget_client.call_tool("list_history", {})
    assert history.structured_content is not None and history.structured_content["total"] == 0
    assert saved_files(service) == []


async def test_errors_reach_the_caller_as_before(budget_client: Client, emulator: EmulatorServer) -> None:
    result = await budget_client.call_tool("generate_image", {"prompt": "forbidden-content please"})
    assert result.is_error
    assert "safety system" in result.content[0].text  # type: ignore[union-attr]
    refused = await budget_client.call_tool("generate_image", {"prompt": "x", "output_format": "jpeg",
                                                                "transparent_background": True})  # fmt: skip
    assert refused.is_error and "JPEG has no alpha channel" in refused.content[0].text  # type: ignore[union-attr]
    assert len(emulator.requests) == 1
