"""The 30 s policy: every call runs on the worker and the request answers in time; each OpenAI attempt ends before
the worker's own time limit."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from mcp import Client
from remote_support import Events, body_of, png_bytes, succeeds
from waiting import wait_until

from gpt_image_mcp.core.catalog import load_catalog
from gpt_image_mcp.core.config import Settings
from gpt_image_mcp.core.errors import UpstreamError
from gpt_image_mcp.core.planning import plan_generate
from gpt_image_mcp.core.requests import GenerateImageArgs
from gpt_image_mcp.core.upstream import ImagesClient
from gpt_image_mcp.entry.lambda_worker import ATTEMPT_MARGIN_SECONDS, Deadline
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
    # The stand-in container stops waiting at the function's timeout, as Lambda would end the invocation there.
    response = container.invoke(events.modern_call("generate_image", {"prompt": "late", "quality": "low"}),
                                timeout=6.0, function_timeout=6.0)  # fmt: skip
    result = body_of(response)["result"]
    assert not result["isError"] and result["structuredContent"]["status"] == "continues_as_job"
    assert "still running after 2 s (the 30 s a remote MCP request may run)" in json.dumps(result)
    job_id = result["structuredContent"]["job_id"]

    def completed() -> bool:
        status = body_of(container.invoke(events.modern_call("check_job_status", {"job_id": job_id})))["result"]
        return bool(status["structuredContent"]["status"] == "completed")

    wait_until(completed, every=0.2)  # the remote shape's SQS worker finishes it: no later test sees its call
    assert len(emulator.requests) == 1


class FixedContext:
    """A Lambda context whose remaining time stands still: the attempt's cap follows from it alone."""

    def __init__(self, remaining_seconds: float) -> None:
        self.remaining_seconds = remaining_seconds

    def get_remaining_time_in_millis(self) -> int:
        return int(self.remaining_seconds * 1000)


@pytest.mark.anyio
async def test_a_worker_attempt_is_capped_by_the_time_left_and_not_retried(emulator: EmulatorServer) -> None:
    deadline = Deadline()
    deadline.begin(FixedContext(ATTEMPT_MARGIN_SECONDS + 1.0))  # one second for the attempt; none for a retry
    settings = Settings(openai_api_key="sk-test", openai_base_url=emulator.base_url, max_retries=3)
    client = ImagesClient.from_settings(settings, budget=deadline)
    catalog = load_catalog()
    args = GenerateImageArgs(prompt="slow", quality="low")
    spec, warnings = catalog.resolve("gpt-image-2", dt.date.today())
    emulator.set_latency(10_000)
    try:
        with pytest.raises(UpstreamError) as raised:
            await client.run(plan_generate(args, spec, catalog, warnings))
    finally:
        await client.aclose()
    assert raised.value.category == "timeout"
    assert str(raised.value).startswith(
        "OpenAI did not answer within the 1.0 s left before this run's time limit, so the request was stopped. "
        "The request had been sent, so OpenAI may still make (and bill) the images; it was not sent again."
    )
    assert len(emulator.requests) == 1  # not retried
