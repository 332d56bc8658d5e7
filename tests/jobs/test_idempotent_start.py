"""start_generation_job with an idempotency_key: the key names the job, so a repeated start finds it and pays nothing.

This is what lets a batch (or any client that lost an answer) start again without paying twice: there is no moment at
which the job exists but the caller's record of it does not.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from calls import refused, succeeds, text
from mcp import Client
from waiting import eventually

from gpt_image_mcp.core.jobs import JobService, keyed_job_id
from gpt_image_mcp.core.lifecycle import JobRecord
from gpt_image_mcp.core.requests import GenerateImageArgs
from local_sandbox.local_server import LOCAL_USER, LocalParts
from local_sandbox.sqlite_jobs import SQLiteJobStore
from local_sandbox.standins.emulator import EmulatorServer

pytestmark = pytest.mark.anyio


async def test_a_repeated_start_with_the_same_key_returns_the_first_job_and_calls_once(
    job_client: Client, job_store: SQLiteJobStore, emulator: EmulatorServer
) -> None:
    arguments = {"tool_name": "generate_image", "prompt": "a kite", "quality": "low", "idempotency_key": "kite-1"}
    first = await succeeds(job_client, "start_generation_job", arguments)
    job_id = (first.structured_content or {})["job_id"]
    assert job_id == keyed_job_id(LOCAL_USER, "kite-1")
    assert text(first).startswith(f"idempotency_key 'kite-1': Job {job_id} (generate_image): ")

    async def completed() -> bool:
        status = await succeeds(job_client, "check_job_status", {"job_id": job_id})
        return (status.structured_content or {})["status"] == "completed"

    await eventually(completed)
    again = await succeeds(job_client, "start_generation_job", arguments)
    assert (again.structured_content or {})["job_id"] == job_id
    assert (again.structured_content or {})["status"] == "completed"
    assert f"Job {job_id} (generate_image): completed. History id: " in text(again)
    assert len(emulator.requests) == 1
    assert job_store.list(LOCAL_USER, limit=10, offset=0).total == 1


async def test_a_key_used_for_another_request_is_refused(
    job_client: Client, job_store: SQLiteJobStore, emulator: EmulatorServer
) -> None:
    emulator.set_latency(30_000)  # the first job is still running: it is the one the key names either way
    base = {"tool_name": "generate_image", "quality": "low", "idempotency_key": "shared"}
    first = await succeeds(job_client, "start_generation_job", {**base, "prompt": "a red kite"})
    message = await refused(job_client, "start_generation_job", {**base, "prompt": "a blue kite"})
    job_id = (first.structured_content or {})["job_id"]
    assert message == (
        f"idempotency_key 'shared' was already used for another request (job {job_id}, generate_image 'a red kite'); "
        "give each different request its own key."
    )
    other_tool = await refused(
        job_client,
        "start_generation_job",
        {**base, "prompt": "a red kite", "tool_name": "transform_image", "reference_image_base64": "AAAA"},
    )
    assert "idempotency_key 'shared' was already used for another request" in other_tool
    assert job_store.list(LOCAL_USER, limit=10, offset=0).total == 1
    # The first job's request reaches OpenAI within this test, so it is not logged in the next test's emulator log.
    await eventually(lambda: len(emulator.requests) == 1)


async def test_a_pending_job_whose_starter_died_before_queueing_it_is_queued_again(
    parts: LocalParts, emulator: EmulatorServer
) -> None:
    args = GenerateImageArgs(prompt="left pending", quality="low")
    dying = JobService(parts.service, parts.store, LostMessages())  # the row is written, the message never sent
    orphan = await dying.start(LOCAL_USER, "generate_image", args, idempotency_key="orphan")
    async with parts.runner.running(parts.jobs):
        again = await parts.jobs.start(LOCAL_USER, "generate_image", args, idempotency_key="orphan")
        assert again.job_id == orphan.job_id
        await eventually(lambda: _status(parts.store, orphan) == "completed")
    assert len(emulator.requests) == 1


class LostMessages:
    """A queue that loses every job handed to it, as a process dying right after writing the row would."""

    async def submit(self, user: str, job_id: str) -> None:
        return None


class RivalFirstStore(SQLiteJobStore):
    """Another process, starting the same key, writes the job a moment before this one does."""

    def __init__(self, db_path: Path) -> None:
        super().__init__(db_path)
        self.db_path = db_path

    def create(self, record: JobRecord) -> None:
        rival = SQLiteJobStore(self.db_path)
        try:
            rival.create(record)
        finally:
            rival.close()
        super().create(record)


async def test_two_starts_with_one_key_at_the_same_moment_make_one_job(parts: LocalParts) -> None:
    store = RivalFirstStore(parts.settings.history_db_path)
    jobs = JobService(parts.service, store, parts.runner)
    try:
        record = await jobs.start(LOCAL_USER, "generate_image", GenerateImageArgs(prompt="race"), idempotency_key="k")
        assert record.job_id == keyed_job_id(LOCAL_USER, "k")
        assert store.list(LOCAL_USER, limit=10, offset=0).total == 1
        with pytest.raises(Exception, match="UNIQUE"):  # without a key, a clash is an error, never a silent merge
            await jobs.start(LOCAL_USER, "generate_image", GenerateImageArgs(prompt="race"))
    finally:
        store.close()


def test_a_key_names_a_job_per_user() -> None:
    assert keyed_job_id("alice", "k") == keyed_job_id("alice", "k")
    assert keyed_job_id("alice", "k") != keyed_job_id("bob", "k")
    assert keyed_job_id("alice", "k") != keyed_job_id("alice", "k2")


def _status(store: SQLiteJobStore, record: JobRecord) -> str | None:
    found = store.get(record.user, record.job_id)
    return None if found is None else found.status
