"""SQLiteJobStore specifics (shared database, unknown ids) and the local runner's liveness check; the store contract
every JobStore meets (races between connections included) is in tests/remote_jobs/test_job_store_contract.py, run
against SQLite too, and the liveness policy (`abandoned`) is in tests/core/test_lifecycle.py."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from clock import Clock

from gpt_image_mcp.core.errors import ConfigurationError
from gpt_image_mcp.core.lifecycle import Claim, JobRecord, next_state
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
def store(tmp_path: Path) -> Iterator[SQLiteJobStore]:
    jobs = SQLiteJobStore(tmp_path / "state" / "history.db")
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


def test_a_write_to_an_unknown_job_or_another_users_changes_nothing(store: SQLiteJobStore, clock: Clock) -> None:
    store.create(job("j1"))
    change = next_state(job("j1"), Claim("w1", LEASE, MAX), clock.now)
    assert change is not None
    assert not store.write(job("missing"), change)
    assert not store.write(job("j1", user=B), change)
    assert store.get(A, "j1") == job("j1")


def test_jobs_of_a_database_from_before_the_background_flag_stay_listed(tmp_path: Path) -> None:
    """Migration 2 adds the flag; the jobs already there were all listed, and still are."""
    path = tmp_path / "history.db"
    connection = sqlite3.connect(path)
    for statements in MIGRATIONS[:2]:
        for statement in statements:
            connection.execute(statement)
    connection.execute("PRAGMA user_version = 2")
    connection.execute(
        "INSERT INTO jobs (job_id, user, tool_name, arguments_json, status, created_at, updated_at) "
        "VALUES ('old', 'alice', 'generate_image', '{\"prompt\": \"p\"}', 'completed', 't', 't')"
    )
    connection.commit()
    connection.close()
    store = SQLiteJobStore(path)
    old = store.get(A, "old")
    assert old is not None and old.background is True
    assert [r.job_id for r in store.list(A, background=True, limit=10, offset=0).records] == ["old"]
    store.close()


# -- the local runner's liveness check ------------------------------------------------------------


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
