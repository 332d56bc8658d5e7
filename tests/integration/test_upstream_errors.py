"""What the user sees when the Images API fails, how often it was asked, and that nothing half-done is left.

Faults come from the emulator (`inject`, or the keys `sk-invalid` / `sk-unverified` and the prompt word
`forbidden-content`); retry waits are kept to milliseconds with `retry-after-ms`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from mcp import Client
from tool_support import files_under, history_total, image_requests, refused, succeeds

from local_sandbox.settings import LocalSettings
from local_sandbox.standins.emulator import EmulatorServer

pytestmark = pytest.mark.anyio

QUICK_RETRY = {"retry-after-ms": "10"}
PROMPT = {"prompt": "a lighthouse at dusk", "output_path": "light.png"}


async def assert_nothing_kept(client: Client, settings: LocalSettings) -> None:
    """A failed call leaves no file and no history row."""
    assert files_under(settings.output_dir) == []
    assert await history_total(client) == 0


def statuses(emulator: EmulatorServer) -> list[object]:
    return [entry["status"] for entry in image_requests(emulator)]


@pytest.mark.settings(openai_api_key="sk-invalid")
async def test_rejected_api_key(client: Client, settings: LocalSettings, emulator: EmulatorServer) -> None:
    message = await refused(client, "generate_image", PROMPT)

    assert message.startswith("OpenAI rejected the API key (401). Check OPENAI_API_KEY")
    assert "https://platform.openai.com/api-keys" in message
    assert statuses(emulator) == [401]
    await assert_nothing_kept(client, settings)


@pytest.mark.settings(openai_api_key="sk-unverified")
async def test_unverified_organization(client: Client, settings: LocalSettings, emulator: EmulatorServer) -> None:
    message = await refused(client, "generate_image", PROMPT)

    assert "Your OpenAI organization must be verified to use gpt-image-2" in message
    assert "https://platform.openai.com/settings/organization/general" in message
    assert statuses(emulator) == [403]
    await assert_nothing_kept(client, settings)


async def test_content_policy_refusal_is_not_retried(
    client: Client, settings: LocalSettings, emulator: EmulatorServer
) -> None:
    message = await refused(client, "generate_image", {"prompt": "a forbidden-content poster"})

    assert "OpenAI's safety system rejected this request (categories: sexual)" in message
    assert "moderation='low'" in message
    assert "Not retried" in message
    assert statuses(emulator) == [400]
    await assert_nothing_kept(client, settings)


async def test_content_policy_refusal_on_edit(
    client: Client, settings: LocalSettings, emulator: EmulatorServer, write_input: Callable[..., Path]
) -> None:
    reference = write_input("ref.png")

    message = await refused(client, "edit_image", {"prompt": "forbidden-content", "reference_image_path": "ref.png"})

    assert "OpenAI's safety system rejected this request" in message
    assert statuses(emulator) == [400]
    assert files_under(settings.output_dir) == [reference.name]
    assert await history_total(client) == 0


async def test_unknown_parameter_names_the_parameter(
    client: Client, settings: LocalSettings, emulator: EmulatorServer
) -> None:
    error = {
        "message": "Unknown parameter: 'frobnicate'.",
        "type": "invalid_request_error",
        "param": "frobnicate",
        "code": "unknown_parameter",
    }
    emulator.inject(400, body={"error": error})

    message = await refused(client, "generate_image", PROMPT)

    assert message.startswith("OpenAI rejected the parameter 'frobnicate': Unknown parameter: 'frobnicate'.")
    assert "(request id req_" in message
    assert statuses(emulator) == [400]
    await assert_nothing_kept(client, settings)


async def test_rate_limit_is_retried_after_the_asked_wait(
    client: Client, settings: LocalSettings, emulator: EmulatorServer
) -> None:
    emulator.inject(429, headers=QUICK_RETRY)

    result = await succeeds(client, "generate_image", PROMPT)

    assert statuses(emulator) == [429, 200]
    assert image_requests(emulator)[0]["json"] == image_requests(emulator)[1]["json"]
    assert files_under(settings.output_dir) == ["light.png"]
    assert await history_total(client) == 1
    assert result.structured_content["images"][0]["path"] == "light.png"


async def test_rate_limit_storm_gives_up_after_the_retries(
    client: Client, settings: LocalSettings, emulator: EmulatorServer
) -> None:
    assert settings.max_retries == 2
    emulator.inject(429, headers=QUICK_RETRY, times=3)

    message = await refused(client, "generate_image", PROMPT)

    assert message.startswith("OpenAI rate limit reached (429)")
    assert "OpenAI said: Rate limit reached for images per min" in message
    assert message.endswith("(gave up after 3 attempts)")
    assert statuses(emulator) == [429, 429, 429]
    await assert_nothing_kept(client, settings)


@pytest.mark.settings(max_retries=0)
async def test_rate_limit_without_retries(client: Client, settings: LocalSettings, emulator: EmulatorServer) -> None:
    emulator.inject(429, headers={"retry-after": "12"})

    message = await refused(client, "generate_image", PROMPT)

    assert message.startswith("OpenAI rate limit reached (429); OpenAI asked to wait 12 s.")
    assert "gave up" not in message
    assert statuses(emulator) == [429]
    await assert_nothing_kept(client, settings)


async def test_exhausted_quota_is_not_retried(
    client: Client, settings: LocalSettings, emulator: EmulatorServer
) -> None:
    emulator.inject(429, code="insufficient_quota", times=3)

    message = await refused(client, "generate_image", PROMPT)

    assert message.startswith("Your OpenAI account has no credit left (insufficient_quota).")
    assert "https://platform.openai.com/settings/organization/billing" in message
    assert "not retried" in message
    assert statuses(emulator) == [429]
    await assert_nothing_kept(client, settings)


async def test_server_error_is_retried(client: Client, settings: LocalSettings, emulator: EmulatorServer) -> None:
    emulator.inject(500, headers=QUICK_RETRY)

    await succeeds(client, "generate_image", PROMPT)

    assert statuses(emulator) == [500, 200]
    assert files_under(settings.output_dir) == ["light.png"]
    assert await history_total(client) == 1


async def test_server_error_on_edit_resends_the_images(
    client: Client, emulator: EmulatorServer, write_input: Callable[..., Path]
) -> None:
    reference = write_input("ref.png")
    emulator.inject(502, headers=QUICK_RETRY, path="/images/edits")

    await succeeds(client, "edit_image", {"prompt": "add a moon", "reference_image_path": "ref.png"})

    requests = image_requests(emulator)
    assert statuses(emulator) == [502, 200]
    assert [entry["files"] for entry in requests] == [
        [{"name": "image", "filename": "image.png", "content_type": "image/png", "size": reference.stat().st_size}]
    ] * 2


async def test_overload_storm_gives_up(client: Client, settings: LocalSettings, emulator: EmulatorServer) -> None:
    emulator.inject(503, headers=QUICK_RETRY, times=3)

    message = await refused(client, "generate_image", PROMPT)

    assert message.startswith("OpenAI had a server error (HTTP 503) (request id req_")
    assert "try again in a minute" in message
    assert message.endswith("(gave up after 3 attempts)")
    assert statuses(emulator) == [503, 503, 503]
    await assert_nothing_kept(client, settings)


@pytest.mark.settings(request_timeout=1.0)
async def test_timeout_is_reported_and_not_retried(
    client: Client, settings: LocalSettings, emulator: EmulatorServer
) -> None:
    emulator.inject(0, hang_ms=2500)

    message = await refused(client, "generate_image", PROMPT)

    assert message.startswith("OpenAI did not answer within 1 s.")
    assert "raise OPENAI_IMAGE_TIMEOUT" in message
    assert len(image_requests(emulator)) == 1  # sent once: a retry could be billed twice
    await assert_nothing_kept(client, settings)


@pytest.mark.settings(openai_base_url="http://127.0.0.1:1/v1", max_retries=1)
async def test_refused_connection(client: Client, settings: LocalSettings, emulator: EmulatorServer) -> None:
    message = await refused(client, "generate_image", PROMPT)

    assert message.startswith("Could not connect to the OpenAI API at http://127.0.0.1:1/v1 (")
    assert "OPENAI_BASE_URL" in message
    assert message.endswith("(gave up after 2 attempts)")
    assert image_requests(emulator) == []
    await assert_nothing_kept(client, settings)


@pytest.mark.settings(openai_api_key=None)
async def test_no_api_key(client: Client, settings: LocalSettings, emulator: EmulatorServer) -> None:
    message = await refused(client, "generate_image", PROMPT)

    assert message.startswith("OPENAI_API_KEY is not set, so no image can be made.")
    assert "--emulator" in message
    assert image_requests(emulator) == []
    await assert_nothing_kept(client, settings)


@pytest.mark.settings(openai_api_key=None)
async def test_no_api_key_still_checks_the_arguments_first(client: Client, emulator: EmulatorServer) -> None:
    message = await refused(client, "generate_image", {"prompt": "x", "size": "abc"})

    assert message.startswith("size 'abc' is not 'auto' or WIDTHxHEIGHT")
