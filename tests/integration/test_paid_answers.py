"""The edges of an image call, as a user meets them: the real server over stdio, the emulator as OpenAI.

Every fault has its own message; nothing that can fail after OpenAI is paid is left to fail only then; a paid
answer outlives a failed save and is saved later without a second request; nothing broken is saved or recorded.
The emulator's request log tells which calls reached "OpenAI".
"""

from __future__ import annotations

import base64
import os
import re
import sqlite3
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from mcp import Client
from mcp.types import CallToolResult
from stdio_support import (
    NOBODY,
    as_ordinary_user,
    emulator_params,
    fill,
    forbidden_folder,
    remount,
    server_params,
    small_disk,
)
from tool_support import files_under, image_requests, png_bytes, refused, succeeds, text

from local_sandbox.standins.emulator import EmulatorServer, images
from local_sandbox.standins.emulator.faults import Gate

pytestmark = pytest.mark.anyio
PROMPT = {"prompt": "a lighthouse at dusk", "output_path": "light.png", "size": "1024x1024"}
NOTHING_SENT = "Nothing was sent to OpenAI."
MAY_HAVE_RUN = "OpenAI may still make (and bill) the images; it was not sent again"


@pytest.fixture
async def client(tmp_path: Path, emulator: EmulatorServer) -> AsyncIterator[Client]:
    async with Client(emulator_params(tmp_path, emulator)) as connected:
        yield connected


async def history_rows(client: Client) -> int:
    listed = await succeeds(client, "list_history", {})
    assert listed.structured_content is not None
    total: int = listed.structured_content["total"]
    return total


async def call_while(
    client: Client, gate: Gate, tool: str, args: dict[str, Any], meanwhile: Callable[[], None]
) -> CallToolResult:
    """Call `tool`; once its request has reached the emulator (and waits there), run `meanwhile`, then let the
    answer go: the world changes between the check before paying and the save after it."""
    results: list[CallToolResult] = []

    async def call() -> None:
        results.append(await client.call_tool(tool, args))

    async with anyio.create_task_group() as group:
        group.start_soon(call)
        assert await anyio.to_thread.run_sync(gate.arrived.wait, 60), "the request never reached the emulator"
        meanwhile()
        gate.release()
    return results[0]


def kept_job(message: str) -> str:
    """The job id a 'the images are kept' message names."""
    assert "The images OpenAI returned are kept" in message, message
    found = re.search(r"get_job_result with job_id '([0-9a-f-]+)'", message)
    assert found, message
    return found[1]


async def finish(client: Client, job_id: str) -> CallToolResult:
    """get_job_result until the kept images are saved (the server's own retry may get there first)."""
    for _ in range(100):
        result = await succeeds(client, "get_job_result", {"job_id": job_id})
        assert result.structured_content is not None
        if result.structured_content["job"]["status"] == "completed":
            return result
        await anyio.sleep(0.1)
    raise AssertionError(f"job {job_id} never completed: {text(result)}")


# -- refused before paying ---------------------------------------------------------------------------------


async def test_an_output_path_through_a_symlink_out_of_the_folder_is_refused_before_paying(
    tmp_path: Path, emulator: EmulatorServer, client: Client
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "elsewhere").symlink_to(outside, target_is_directory=True)

    message = await refused(client, "generate_image", {"prompt": "a cat", "output_path": "elsewhere/cat.png"})

    assert "output_path 'elsewhere/cat.png' goes through a symlink that leads outside" in message
    assert image_requests(emulator) == []
    assert list(outside.iterdir()) == []


async def test_a_full_disk_is_refused_before_paying(tmp_path: Path, emulator: EmulatorServer) -> None:
    with small_disk(tmp_path / "out", 1) as disk:
        async with Client(emulator_params(tmp_path, emulator)) as client:
            message = await refused(client, "generate_image", PROMPT)

    assert message.startswith(f"The disk holding {disk} is full (it has 1 MB free; this call's images may need")
    assert "Free some space there, or set OPENAI_IMAGE_OUTPUT_DIR to a folder on another disk." in message
    assert message.endswith(NOTHING_SENT)
    assert image_requests(emulator) == []


async def test_a_read_only_folder_is_refused_before_paying(tmp_path: Path, emulator: EmulatorServer) -> None:
    with small_disk(tmp_path / "out", 8) as disk:
        remount(disk, "ro")
        async with Client(emulator_params(tmp_path, emulator)) as client:
            message = await refused(client, "generate_image", PROMPT)

    assert message == (
        f"{disk} is on a read-only file system. Remount it read-write, or set OPENAI_IMAGE_OUTPUT_DIR to a folder "
        f"on another disk. {NOTHING_SENT}"
    )
    assert image_requests(emulator) == []


async def test_a_folder_the_server_may_not_write_is_refused_before_paying(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    folder = forbidden_folder(tmp_path / "out" / "theirs")
    async with Client(as_ordinary_user(emulator_params(tmp_path, emulator))) as client:
        message = await refused(client, "generate_image", {"prompt": "a cat", "output_path": "theirs/cat.png"})

    assert f"may not write in {folder}. Give it write permission there" in message
    assert message.endswith(NOTHING_SENT)
    assert image_requests(emulator) == []


async def test_an_input_file_the_server_may_not_read_is_refused_before_paying(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    reference = tmp_path / "out" / "ref.png"
    reference.parent.mkdir(parents=True)
    reference.write_bytes(png_bytes())
    if os.geteuid() == 0:
        os.chown(reference, NOBODY, NOBODY)
    reference.chmod(0o000)
    async with Client(as_ordinary_user(emulator_params(tmp_path, emulator))) as client:
        message = await refused(client, "edit_image", {"prompt": "add a moon", "reference_image_path": "ref.png"})

    assert message == "input path 'ref.png' could not be read: Permission denied."
    assert image_requests(emulator) == []


async def test_a_blank_prompt_is_refused_before_paying(emulator: EmulatorServer, client: Client) -> None:
    message = await refused(client, "generate_image", {"prompt": " \n\t "})

    assert "prompt: Value error, the prompt is blank (4 whitespace characters); describe the image to make" in message
    assert image_requests(emulator) == []


# -- a paid answer is never lost ----------------------------------------------------------------------------


async def test_a_disk_that_fills_during_the_call_keeps_the_images_until_they_can_be_saved(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    with small_disk(tmp_path / "out", 8) as disk:
        async with Client(emulator_params(tmp_path, emulator)) as client:
            fillers: list[Path] = []
            result = await call_while(
                client, emulator.hold(), "generate_image", PROMPT, lambda: fillers.append(fill(disk))
            )
            assert result.is_error
            message = text(result)
            assert message.startswith(f"The disk holding {disk} is full. Free some space there")
            job_id = kept_job(message)
            assert files_under(disk) == ["filler.bin"]  # no partial image left behind
            assert await history_rows(client) == 0

            fillers[0].unlink()
            done = await finish(client, job_id)

            assert done.structured_content is not None
            assert [image["path"] for image in done.structured_content["result"]["images"]] == ["light.png"]
            assert files_under(disk) == ["light.png"]
            assert await history_rows(client) == 1
    assert len(image_requests(emulator)) == 1  # saved from the kept answer: OpenAI was not asked again


async def test_a_folder_made_read_only_during_the_call_keeps_the_images(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    with small_disk(tmp_path / "out", 8) as disk:
        async with Client(emulator_params(tmp_path, emulator)) as client:
            result = await call_while(client, emulator.hold(), "generate_image", PROMPT, lambda: remount(disk, "ro"))
            message = text(result)
            assert result.is_error and message.startswith(f"{disk} is on a read-only file system.")
            job_id = kept_job(message)
            assert await history_rows(client) == 0

            remount(disk, "rw")
            await finish(client, job_id)
            assert files_under(disk) == ["light.png"]
    assert len(image_requests(emulator)) == 1


async def test_a_permission_taken_away_during_the_call_keeps_the_images(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    folder = tmp_path / "out" / "mine"
    folder.mkdir(parents=True)
    async with Client(as_ordinary_user(emulator_params(tmp_path, emulator))) as client:
        args = PROMPT | {"output_path": "mine/light.png"}
        result = await call_while(client, emulator.hold(), "generate_image", args, lambda: forbidden_folder(folder))
        message = text(result)
        assert result.is_error and f"may not write in {folder}." in message
        job_id = kept_job(message)

        folder.chmod(0o755)
        os.chown(folder, os.getuid(), os.getgid())
        await finish(client, job_id)
    assert files_under(folder) == ["light.png"]
    assert len(image_requests(emulator)) == 1


async def test_a_folder_removed_during_the_call_is_made_again(
    tmp_path: Path, emulator: EmulatorServer, client: Client
) -> None:
    folder = tmp_path / "out" / "posters"
    folder.mkdir(parents=True)
    args = PROMPT | {"output_path": "posters/light.png"}

    result = await call_while(client, emulator.hold(), "generate_image", args, folder.rmdir)

    assert not result.is_error, text(result)
    assert files_under(folder) == ["light.png"]


# -- nothing broken is saved -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("truncated_image", "its data is truncated"),
        ("corrupt_image", "fails its checksum"),
    ],
)
async def test_a_broken_image_is_not_saved_and_names_openais_answer(
    tmp_path: Path, emulator: EmulatorServer, client: Client, kind: str, reason: str
) -> None:
    emulator.break_answer(kind)

    message = await refused(client, "generate_image", PROMPT)

    assert message.startswith("OpenAI's answer was broken: image 1 of 1 does not decode (")
    assert reason in message
    assert "Nothing was saved. OpenAI may have billed the request; it was not sent again" in message
    assert re.search(r"\(request id req_[0-9a-f]+\)", message)
    assert files_under(tmp_path / "out") == []
    assert await history_rows(client) == 0
    assert len(image_requests(emulator)) == 1


async def test_the_good_images_of_a_partly_broken_answer_are_saved_and_the_broken_one_is_named(
    tmp_path: Path, emulator: EmulatorServer, client: Client
) -> None:
    emulator.break_answer("corrupt_image", images=[1])

    result = await succeeds(client, "generate_image", PROMPT | {"sample_count": 2})

    assert result.structured_content is not None
    assert [image["path"] for image in result.structured_content["images"]] == ["light.png"]
    assert files_under(tmp_path / "out") == ["light.png"]
    warnings = result.structured_content["warnings"]
    assert len(warnings) == 1 and warnings[0].startswith("OpenAI's answer was broken: image 2 of 2 does not decode")
    assert f"Note: {warnings[0]}" in text(result)
    assert await history_rows(client) == 1
    assert len(image_requests(emulator)) == 1


async def test_an_image_of_another_size_than_asked_reports_its_real_size(
    emulator: EmulatorServer, client: Client
) -> None:
    picture = images.render(1024, 1024, "png", False, None, "seed")
    body = {"created": 1, "data": [{"b64_json": base64.b64encode(picture).decode()}], "size": "1536x1024"}
    emulator.inject(200, body=body)

    result = await succeeds(client, "generate_image", PROMPT | {"size": "1536x1024"})

    assert result.structured_content is not None
    assert result.structured_content["size"] == "1024x1024"
    assert result.structured_content["warnings"] == [
        "OpenAI returned 1024x1024 instead of the 1536x1024 that was asked for."
    ]


# -- answers that are not images ---------------------------------------------------------------------------------


PLAIN = {"sample_count": 2}  # several images come in one plain JSON answer; a single one is streamed
STREAMED = {"partial_images": 1}


@pytest.mark.parametrize(
    ("kind", "extra", "phrases"),
    [
        ("malformed_json", PLAIN, ["its JSON does not parse (", "application/json", 'starting \'{"created": ']),
        (
            "malformed_json",
            STREAMED,
            ["its image_generation.completed event's data does not parse as JSON (", "text/event-stream"],
        ),
        ("html_page", PLAIN, ["the content type is text/html, not application/json", "starting '<!DOCTYPE html>"]),
        ("html_page", STREAMED, ["the content type is text/html, not application/json", "starting '<!DOCTYPE html>"]),
        ("empty_data", PLAIN, ["its 'data' list is empty: OpenAI returned no image", "application/json"]),
        (
            "empty_data",
            STREAMED,
            ["the stream ended without an image (events: image_generation.partial_image)", "text/event-stream"],
        ),
    ],
)
async def test_an_answer_that_is_not_images_says_what_came_back(
    tmp_path: Path, emulator: EmulatorServer, client: Client, kind: str, extra: dict[str, int], phrases: list[str]
) -> None:
    emulator.break_answer(kind)

    message = await refused(client, "generate_image", PROMPT | extra)

    assert message.startswith(f"The Images API at {emulator.base_url} answered, but not with images: ")
    assert "What came back: HTTP 200, " in message
    for phrase in phrases:
        assert phrase in message, (phrase, message)
    assert re.search(r"request id req_[0-9a-f]+", message)
    assert "OpenAI may have processed (and billed) the request, so it was not sent again." in message
    assert files_under(tmp_path / "out") == []
    assert len(image_requests(emulator)) == 1
    assert image_requests(emulator)[0]["json"].get("stream") is (True if extra is STREAMED else None)


# -- the retry rule ------------------------------------------------------------------------------------------------


async def test_a_connection_dropped_after_the_request_was_sent_is_not_retried(
    tmp_path: Path, emulator: EmulatorServer, client: Client
) -> None:
    emulator.inject(-1)

    message = await refused(client, "generate_image", PROMPT)

    assert message.startswith(f"The connection to the OpenAI API at {emulator.base_url} dropped after the request")
    assert MAY_HAVE_RUN in message
    assert "https://platform.openai.com/usage" in message
    assert len(image_requests(emulator)) == 1
    assert files_under(tmp_path / "out") == []


async def test_a_stalled_answer_times_out_and_is_not_retried(tmp_path: Path, emulator: EmulatorServer) -> None:
    emulator.break_answer("stalled_body")
    async with Client(emulator_params(tmp_path, emulator, OPENAI_IMAGE_TIMEOUT="5")) as client:
        message = await refused(client, "generate_image", PROMPT)

    assert message.startswith("OpenAI did not answer within 5 s.")
    assert MAY_HAVE_RUN in message
    assert len(image_requests(emulator)) == 1


# -- local state --------------------------------------------------------------------------------------------------


async def test_a_database_locked_past_the_wait_is_named_and_nothing_is_sent(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    database = tmp_path / "state" / "history.db"
    async with Client(emulator_params(tmp_path, emulator, HISTORY_DB_TIMEOUT="1")) as client:
        holder = sqlite3.connect(database, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            message = await refused(client, "generate_image", PROMPT)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert message.startswith(
            f"The history database {database} is locked by another program and stayed locked past the 1 s wait."
        )
        assert "or set HISTORY_DB_PATH to another file" in message
        assert image_requests(emulator) == []

        await succeeds(client, "generate_image", PROMPT)  # once the lock is gone, the same call works
    assert len(image_requests(emulator)) == 1


@pytest.mark.parametrize("fault", ["damaged", "unreadable"])
def test_a_history_database_that_cannot_be_used_stops_the_server_with_a_message(tmp_path: Path, fault: str) -> None:
    database = tmp_path / "state" / "history.db"
    database.parent.mkdir()
    if fault == "damaged":
        database.write_bytes(b"this is not an SQLite database, just some text" * 40)
    else:
        sqlite3.connect(database).close()
        if os.geteuid() == 0:
            os.chown(database, NOBODY, NOBODY)
        database.chmod(0o000)
    server = as_ordinary_user(server_params(tmp_path))

    finished = subprocess.run(
        [server.command, *server.args], env=server.env, cwd=server.cwd, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert finished.returncode == 1
    assert "Traceback" not in finished.stderr
    expected = "is damaged (file is not a database)" if fault == "damaged" else "cannot be opened ("
    assert f"gpt-image-mcp: The history database {database} {expected}" in finished.stderr
    assert "HISTORY_DB_PATH" in finished.stderr
