"""SQLiteJobStore specifics (shared database, races between connections) and the liveness policy; the store
contract every JobStore meets is in tests/remote_jobs/test_job_store_contract.py, run against SQLite too."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from clock import Clock

from gpt_image_mcp.core.errors import ConfigurationError
from gpt_image_mcp.core.jobs import STALE_LEASE_SECONDS, JobRecord, OwnerAlive, abandoned
from local_sandbox.job_runner import HOST, LocalJobRunner
from local_sandbox.settings import LocalSettings
from local_sandbox.sqlite_history import MIGRATIONS, SQLiteHistoryStore
from local_sandbox.sqlite_jobs import SQLiteJobStore

A, B = "alice", "bob"
LEASE = 60.0
MAX = 2


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[SQLiteJobStore]:
    jobs = SQLiteJobStore(tmp_path / "state" / "history.db", clock=clock)
    yield jobs
    jobs.close()


def job(
    job_id: str, user: str = A, tool: str = "generate_image", created: str = "2026-01-01T00:00:00.000+00:00"
) -> JobRecord:
    return JobRecord(
        job_id=job_id,
        user=user,
        tool_name=tool,
        arguments={"prompt": f"prompt {job_id}"},
        status="pending",
        created_at=created,
        updated_at=created,
    )


def test_shares_the_history_database(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    history, jobs = SQLiteHistoryStore(path), SQLiteJobStore(path)
    jobs.create(job("j1"))
    history.close()
    jobs.close()
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        indexes = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    finally:
        connection.close()
    assert {"history", "jobs"} <= tables
    assert "jobs_user_created" in indexes


def test_claiming_an_unknown_job_gives_nothing(store: SQLiteJobStore) -> None:
    # SQLite finds a job by id alone; the DynamoDB store needs its user first (see the contract tests).
    assert store.claim("missing", "w1", LEASE, MAX) is None


def test_claim_races_between_connections(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    stores = [SQLiteJobStore(path) for _ in range(4)]
    stores[0].create(job("j1"))
    winners: list[str] = []
    barrier = threading.Barrier(len(stores))

    def claim(index: int) -> None:
        barrier.wait()
        if stores[index].claim("j1", f"w{index}", LEASE, MAX) is not None:
            winners.append(f"w{index}")

    threads = [threading.Thread(target=claim, args=(index,)) for index in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for each in stores:
        each.close()
    assert len(winners) == 1


# -- the liveness policy ------------------------------------------------------------------------


def running(owner: str | None, expires: float) -> JobRecord:
    record = job("j1")
    record.status, record.lease_owner, record.lease_expires = "running", owner, expires
    return record


@pytest.mark.parametrize(
    ("alive", "expires", "expected"),
    [
        (True, 90.0, False),  # live owner, live lease
        (True, 10.0, False),  # live owner, expired lease (woke from sleep): keeps its job
        (True, 100.0 - STALE_LEASE_SECONDS - 1, True),  # ... unless the lease is long stale (a reused pid)
        (False, 200.0, True),  # dead owner: taken over at once
        (None, 200.0, False),  # unknown owner: the lease decides
        (None, 10.0, True),
    ],
)
def test_abandoned(alive: bool | None, expires: float, expected: bool) -> None:
    owner_alive: OwnerAlive = lambda owner: alive  # noqa: E731
    assert abandoned(running("w", expires), 100.0, owner_alive) is expected


def test_owner_liveness_by_process_id() -> None:
    runner = LocalJobRunner(concurrency=1)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert runner.owner_alive(runner.owner) is True
    assert runner.owner_alive(f"{HOST}:{os.getppid()}:abc") is True
    assert runner.owner_alive(f"{HOST}:{dead.pid}:abc") is False
    assert runner.owner_alive(f"{HOST}:{os.getpid()}:an-earlier-process") is False
    assert runner.owner_alive(f"elsewhere:{os.getpid()}:abc") is None
    assert runner.owner_alive("aws-request-id") is None


def test_job_concurrency_setting() -> None:
    assert LocalSettings().job_concurrency == 2
    assert LocalSettings.from_env({"OPENAI_IMAGE_JOB_CONCURRENCY": "4"}).job_concurrency == 4
    with pytest.raises(ConfigurationError, match="OPENAI_IMAGE_JOB_CONCURRENCY=0 is out of range; use 1-16"):
        LocalSettings.from_env({"OPENAI_IMAGE_JOB_CONCURRENCY": "0"})
