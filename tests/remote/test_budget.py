"""The 30 s policy: slow calls are refused before OpenAI is called; each attempt is capped by the time left."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time

import pytest
from mcp import Client
from remote_support import Events, body_of, png_bytes, refused, succeeds

from gpt_image_mcp.core.budget import RequestBudget, TooSlowError
from gpt_image_mcp.core.catalog import load_catalog
from gpt_image_mcp.core.config import Settings
from gpt_image_mcp.core.errors import UpstreamError
from gpt_image_mcp.core.planning import plan_generate
from gpt_image_mcp.core.requests import GenerateImageArgs
from gpt_image_mcp.core.upstream import ImagesClient
from local_sandbox.emulator import EmulatorServer
from local_sandbox.remote_shape import LambdaContainer

REFERENCE = base64.b64encode(png_bytes(64, 64)).decode()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("tool", "arguments", "reason"),
    [
        ("generate_image", {"quality": "high"}, "quality 'high'"),
        ("generate_image", {"size": "2560x2560", "quality": "low"}, "size 2560x2560"),
        ("generate_image", {"sample_count": 3, "quality": "low"}, "sample_count 3"),
        ("edit_image", {"reference_image_base64": [REFERENCE, REFERENCE], "quality": "medium"}, "2 reference images"),
    ],
)
async def test_slow_calls_are_refused_before_any_upstream_call(
    client: Client, emulator: EmulatorServer, tool: str, arguments: dict[str, object], reason: str
) -> None:
    message = await refused(client, tool, {"prompt": "slow", **arguments})
    assert reason in message and "start_generation_job" in message and "30 s" in message
    assert emulator.requests == []


@pytest.mark.anyio
async def test_fast_calls_still_run(client: Client, emulator: EmulatorServer) -> None:
    await succeeds(client, "edit_image", {"prompt": "ok", "reference_image_base64": [REFERENCE, REFERENCE],
                                          "quality": "low", "sample_count": 2})  # fmt: skip
    assert len(emulator.requests) == 1


def test_too_little_time_left_in_the_invocation_is_refused(
    container: LambdaContainer, events: Events, emulator: EmulatorServer
) -> None:
    response = container.invoke(events.modern_call("generate_image", {"prompt": "late", "quality": "low"}),
                                function_timeout=6.0)  # fmt: skip
    result = body_of(response)["result"]
    assert result["isError"] and "Too little" in json.dumps(result)
    assert emulator.requests == []


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
