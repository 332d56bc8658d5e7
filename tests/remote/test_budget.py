"""The 30 s policy: slow calls are refused before OpenAI is called; each attempt is capped by the time left."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time

import pytest
from mcp import Client
from remote_support import Events, body_of, png_bytes, succeeds

from gpt_image_mcp.core.budget import RequestBudget, TooSlowError
from gpt_image_mcp.core.catalog import load_catalog
from gpt_image_mcp.core.config import Settings
from gpt_image_mcp.core.errors import UpstreamError
from gpt_image_mcp.core.planning import plan_generate
from gpt_image_mcp.core.requests import GenerateImageArgs
from gpt_image_mcp.core.upstream import ImagesClient
from local_sandbox.standins.api_gateway import LambdaContainer
from local_sandbox.standins.emulator import EmulatorServer

REFERENCE = base64.b64encode(png_bytes(64, 64)).decode()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("generate_image", {"quality": "high"}),
        ("generate_image", {"size": "2560x2560", "quality": "low"}),
        ("generate_image", {"sample_count": 3, "quality": "low"}),
        ("edit_image", {"reference_image_base64": [REFERENCE, REFERENCE], "quality": "medium"}),
    ],
)
async def test_calls_run_on_the_worker_and_answer_in_the_request_when_they_finish_in_time(
    client: Client, emulator: EmulatorServer, tool: str, arguments: dict[str, object]
) -> None:
    result = await succeeds(client, tool, {"prompt": "slow", **arguments})
    assert result.structured_content is not None
    assert result.structured_content["status"] == "completed" and result.structured_content["images"]
    assert len(emulator.requests) == 1


@pytest.mark.anyio
async def test_fast_calls_still_run(client: Client, emulator: EmulatorServer) -> None:
    await succeeds(client, "edit_image", {"prompt": "ok", "reference_image_base64": [REFERENCE, REFERENCE],
                                          "quality": "low", "sample_count": 2})  # fmt: skip
    assert len(emulator.requests) == 1


def test_a_call_still_running_near_the_deadline_continues_as_a_job_and_is_charged_once(
    container: LambdaContainer, events: Events, emulator: EmulatorServer
) -> None:
    emulator.set_latency(4000)  # the invocation has 6 s, of which 4 are kept to answer: a 2 s wait
    started = time.monotonic()
    response = container.invoke(events.modern_call("generate_image", {"prompt": "late", "quality": "low"}),
                                function_timeout=6.0)  # fmt: skip
    assert time.monotonic() - started < 6.0
    result = body_of(response)["result"]
    assert not result["isError"] and result["structuredContent"]["status"] == "continues_as_job"
    assert "still running after 2 s (the 30 s a remote MCP request may run)" in json.dumps(result)
    job_id = result["structuredContent"]["job_id"]
    deadline = time.monotonic() + 30
    while True:  # the remote shape's SQS worker finishes it; wait, so that no later test sees its upstream call
        status = body_of(container.invoke(events.modern_call("check_job_status", {"job_id": job_id})))["result"]
        if status["structuredContent"]["status"] == "completed":
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    assert len(emulator.requests) == 1


@pytest.mark.anyio
async def test_each_attempt_is_capped_by_the_time_left(emulator: EmulatorServer) -> None:
    deadline = time.monotonic() + 1.6
    budget = RequestBudget(time_left=lambda: deadline - time.monotonic(), margin_seconds=0.6, min_attempt_seconds=0.3)
    settings = Settings(openai_api_key="sk-test", openai_base_url=emulator.base_url, max_retries=3)
    client = ImagesClient.from_settings(settings, budget=budget)
    catalog = load_catalog()
    args = GenerateImageArgs(prompt="slow", quality="low")
    spec, warnings = catalog.resolve("gpt-image-2", dt.date.today())
    plan = plan_generate(args, spec, catalog, warnings)
    emulator.set_latency(5000)
    started = time.monotonic()
    with pytest.raises(UpstreamError) as raised:
        await client.run(plan)
    assert raised.value.category == "timeout" and "start_generation_job" in raised.value.message
    assert "s left for this request" in str(raised.value)
    assert time.monotonic() - started < 1.6  # ended before the (stand-in) gateway limit, and was not retried
    budget_refuses = RequestBudget(time_left=lambda: 2.0)
    with pytest.raises(TooSlowError):
        budget_refuses.check(plan)
