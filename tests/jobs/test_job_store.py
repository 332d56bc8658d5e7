"""SQLiteJobStore: conditional transitions, leases, recovery, user isolation; and the liveness policy."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpt_image_mcp.core.config import Settings
from gpt_image_mcp.core.errors import ConfigurationError
from gpt_image_mcp.core.jobs import STALE_LEASE_SECONDS, JobRecord, OwnerAlive, abandoned
from local_sandbox.job_runner import HOST, LocalJobRunner
from local_sandbox.sqlite_history import MIGRATIONS, SQLiteHistoryStore
from local_sandbox.sqlite_jobs import SQLiteJobStore

A, B = "alice", "bob"
LEASE = 60.0
MAX = 2


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


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


def test_create_get_round_trip_and_other_users_see_nothing(store: SQLiteJobStore) -> None:
    created = job("j1")
    store.create(created)
    assert store.get(A, "j1") == created
    assert store.get(B, "j1") is None
    assert store.get(A, "nope") is None


def test_list_filters_pages_and_isolates_users(store: SQLiteJobStore) -> None:
    for index in range(5):
        store.create(job(f"a{index}", created=f"2026-01-01T00:00:0{index}.000+00:00"))
    store.create(job("e1", tool="edit_image", created="2026-01-01T00:00:09.000+00:00"))
    store.create(job("b1", user=B))
    assert store.claim("a0", "w", LEASE, MAX) is not None

    page = store.list(A, limit=3, offset=1)
    assert (page.total, [r.job_id for r in page.records]) == (6, ["a4", "a3", "a2"])
    assert [r.job_id for r in store.list(A, status="running", limit=10, offset=0).records] == ["a0"]
    assert store.list(A, tool_name="edit_image", limit=10, offset=0).total == 1
    assert [r.job_id for r in store.list(B, limit=10, offset=0).records] == ["b1"]
    assert store.list("carol", limit=10, offset=0) == ([], 0)


def test_claim_is_exclusive_and_counts_attempts(store: SQLiteJobStore, clock: Clock) -> None:
    store.create(job("j1"))
    claimed = store.claim("j1", "w1", LEASE, MAX)
    assert claimed is not None
    assert (claimed.status, claimed.lease_owner, claimed.attempts) == ("running", "w1", 1)
    assert claimed.lease_expires == clock.now + LEASE
    assert store.claim("j1", "w2", LEASE, MAX) is None  # the lease is live

    clock.now += LEASE + 1  # w1 stopped renewing: its job can be taken over, while attempts are left
    taken = store.claim("j1", "w2", LEASE, MAX)
    assert taken is not None
    assert (taken.lease_owner, taken.attempts) == ("w2", 2)
    clock.now += LEASE + 1
    assert store.claim("j1", "w3", LEASE, MAX) is None  # attempts used up: recover fails it instead
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


def test_only_the_owner_moves_a_running_job(store: SQLiteJobStore, clock: Clock) -> None:
    store.create(job("j1"))
    store.claim("j1", "w1", LEASE, MAX)
    assert not store.heartbeat("j1", "w2", LEASE)
    assert not store.complete("j1", "w2", {"history_id": "h"}, "h")
    assert not store.fail("j1", "w2", "no")
    assert not store.mark_cancelled("j1", "w2")
    clock.now += 10
    assert store.heartbeat("j1", "w1", LEASE, progress=0.5, message="Halfway")
    running = store.get(A, "j1")
    assert running is not None
    assert (running.progress, running.message, running.lease_expires) == (0.5, "Halfway", clock.now + LEASE)
    assert store.complete("j1", "w1", {"history_id": "h1"}, "h1")
    done = store.get(A, "j1")
    assert done is not None
    assert (done.status, done.progress, done.result, done.history_id) == ("completed", 1.0, {"history_id": "h1"}, "h1")
    assert (done.lease_owner, done.lease_expires) == (None, None)


def test_a_finished_job_never_changes(store: SQLiteJobStore, clock: Clock) -> None:
    store.create(job("j1"))
    store.claim("j1", "w1", LEASE, MAX)
    store.fail("j1", "w1", "The prompt was refused.")
    failed = store.get(A, "j1")
    clock.now += 3 * LEASE
    assert not store.complete("j1", "w1", {}, "h")
    assert not store.heartbeat("j1", "w1", LEASE)
    assert not store.release("j1", "w1")
    assert store.claim("j1", "w2", LEASE, MAX) is None
    assert store.request_cancel(A, "j1") == failed
    assert store.recover(lambda record: True, MAX) == []
    assert store.get(A, "j1") == failed


def test_request_cancel(store: SQLiteJobStore) -> None:
    store.create(job("pending"))
    store.create(job("running"))
    store.claim("running", "w1", LEASE, MAX)

    assert store.request_cancel(B, "pending") is None  # another user's job: not found, untouched
    assert store.request_cancel(B, "running") is None
    assert not store.is_cancel_requested("running")

    cancelled = store.request_cancel(A, "pending")
    assert cancelled is not None
    assert (cancelled.status, cancelled.message) == ("cancelled", "Cancelled before it started")
    assert store.claim("pending", "w1", LEASE, MAX) is None  # never runs

    asked = store.request_cancel(A, "running")
    assert asked is not None
    assert (asked.status, asked.cancel_requested) == ("running", True)
    assert store.is_cancel_requested("running")
    assert store.mark_cancelled("running", "w1")
    stopped = store.get(A, "running")
    assert stopped is not None
    assert stopped.status == "cancelled"


def test_release_gives_the_job_back_without_counting_the_attempt(store: SQLiteJobStore) -> None:
    store.create(job("j1"))
    store.claim("j1", "w1", LEASE, MAX)
    assert store.release("j1", "w1")
    released = store.get(A, "j1")
    assert released is not None
    assert (released.status, released.attempts, released.lease_owner) == ("pending", 0, None)
    assert store.pending(10) == ["j1"]


def test_recover_resumes_fails_or_cancels_abandoned_jobs(store: SQLiteJobStore, clock: Clock) -> None:
    for job_id in ("resume", "exhausted", "cancelling", "alive"):
        store.create(job(job_id))
    store.claim("exhausted", "dead", LEASE, MAX)
    clock.now += LEASE + 1
    store.claim("exhausted", "dead", LEASE, MAX)  # the second attempt
    store.claim("resume", "dead", LEASE, MAX)
    store.claim("cancelling", "dead", LEASE, MAX)
    store.claim("alive", "live", LEASE, MAX)
    store.request_cancel(A, "cancelling")

    changed = store.recover(lambda record: record.lease_owner == "dead", MAX)

    assert {r.job_id: r.status for r in changed} == {
        "resume": "pending",
        "exhausted": "failed",
        "cancelling": "cancelled",
    }
    exhausted = store.get(A, "exhausted")
    assert exhausted is not None
    assert exhausted.error == (
        "The server stopped while the job was running (2 attempts); start a new job to try again."
    )
    resumed = store.get(A, "resume")
    assert resumed is not None
    assert (resumed.attempts, resumed.lease_owner) == (1, None)
    assert "the server stopped while the job was running (1 attempt)" in resumed.message
    alive = store.get(A, "alive")
    assert alive is not None
    assert alive.status == "running"
    assert store.pending(10) == ["resume"]


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
    assert Settings().job_concurrency == 2
    assert Settings.from_env({"OPENAI_IMAGE_JOB_CONCURRENCY": "4"}).job_concurrency == 4
    with pytest.raises(ConfigurationError, match="OPENAI_IMAGE_JOB_CONCURRENCY=0 is out of range; use 1-16"):
        Settings.from_env({"OPENAI_IMAGE_JOB_CONCURRENCY": "0"})
