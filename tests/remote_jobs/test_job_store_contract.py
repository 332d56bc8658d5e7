"""DynamoJobStore against the reference semantics of SQLiteJobStore: the same calls on both stores give the same
records. Then what only the DynamoDB store has: TTL, arguments in S3, lookup by job id, races across containers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clock import Clock
from remote_jobs_support import Stack

from gpt_image_mcp.aws.dynamo_jobs import DynamoJobStore
from gpt_image_mcp.core.errors import InvalidArgumentError
from gpt_image_mcp.core.jobs import JobRecord, JobStore
from local_sandbox.sqlite_jobs import SQLiteJobStore

A, B = "alice", "bob"
LEASE = 60.0
MAX = 2
DAY = 86_400


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", "dynamo"])
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[JobStore]:
    if request.param == "sqlite":
        sqlite = SQLiteJobStore(tmp_path / "history.db", clock=clock)
        yield sqlite
        sqlite.close()
    else:
        stack: Stack = request.getfixturevalue("stack")
        yield stack.store(clock=clock)


def job(
    job_id: str,
    user: str = A,
    tool: str = "generate_image",
    created: str = "2026-01-01T00:00:00.000+00:00",
    **arguments: Any,
) -> JobRecord:
    return JobRecord(
        job_id=job_id,
        user=user,
        tool_name=tool,
        arguments={"prompt": f"prompt {job_id}", **arguments},
        status="pending",
        created_at=created,
        updated_at=created,
    )


def got(store: JobStore, job_id: str, user: str = A) -> JobRecord:
    record = store.get(user, job_id)
    assert record is not None
    return record


# -- the shared contract (run against SQLite and DynamoDB) ------------------------------------


def test_create_get_round_trip_and_other_users_see_nothing(store: JobStore) -> None:
    created = job("j1", size="1024x1024", sample_count=2, transparent_background=True)
    store.create(created)
    assert store.get(A, "j1") == created
    assert store.get(B, "j1") is None
    assert store.get(A, "nope") is None
    assert store.get("", "j1") is None


def test_list_filters_pages_and_isolates_users(store: JobStore) -> None:
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
    assert store.list(A, limit=10, offset=0).records[0] == got(store, "e1")


def test_claim_is_exclusive_and_counts_attempts(store: JobStore, clock: Clock) -> None:
    store.create(job("j1"))
    claimed = store.claim("j1", "w1", LEASE, MAX)
    assert claimed is not None
    assert (claimed.status, claimed.lease_owner, claimed.attempts, claimed.message) == ("running", "w1", 1, "Started")
    assert claimed.lease_expires == clock.now + LEASE
    assert store.claim("j1", "w2", LEASE, MAX) is None  # the lease is live

    clock.now += LEASE + 1  # w1 stopped renewing: its job can be taken over, while attempts are left
    taken = store.claim("j1", "w2", LEASE, MAX)
    assert taken is not None
    assert (taken.lease_owner, taken.attempts) == ("w2", 2)
    clock.now += LEASE + 1
    assert store.claim("j1", "w3", LEASE, MAX) is None  # attempts used up: recover fails it instead


def test_only_the_owner_moves_a_running_job(store: JobStore, clock: Clock) -> None:
    store.create(job("j1"))
    store.claim("j1", "w1", LEASE, MAX)
    assert not store.heartbeat("j1", "w2", LEASE)
    assert not store.complete("j1", "w2", {"history_id": "h"}, "h")
    assert not store.fail("j1", "w2", "no")
    assert not store.mark_cancelled("j1", "w2")
    assert not store.release("j1", "w2")
    clock.now += 10
    assert store.heartbeat("j1", "w1", LEASE)
    assert store.heartbeat("j1", "w1", LEASE, progress=0.5, message="Halfway")
    running = got(store, "j1")
    assert (running.progress, running.message, running.lease_expires) == (0.5, "Halfway", clock.now + LEASE)
    assert store.complete("j1", "w1", {"history_id": "h1", "nested": {"x": [1, 2.5]}}, "h1")
    done = got(store, "j1")
    assert (done.status, done.progress, done.message, done.history_id) == ("completed", 1.0, "Done", "h1")
    assert done.result == {"history_id": "h1", "nested": {"x": [1, 2.5]}}
    assert (done.lease_owner, done.lease_expires) == (None, None)


def test_a_finished_job_never_changes(store: JobStore, clock: Clock) -> None:
    store.create(job("j1"))
    store.claim("j1", "w1", LEASE, MAX)
    assert store.fail("j1", "w1", "The prompt was refused.")
    failed = got(store, "j1")
    assert (failed.status, failed.error, failed.message) == ("failed", "The prompt was refused.", "Failed")
    clock.now += 3 * LEASE
    assert not store.complete("j1", "w1", {}, "h")
    assert not store.heartbeat("j1", "w1", LEASE)
    assert not store.release("j1", "w1")
    assert store.claim("j1", "w2", LEASE, MAX) is None
    assert store.request_cancel(A, "j1") == failed
    assert store.recover(lambda record: True, MAX) == []
    assert store.get(A, "j1") == failed


def test_request_cancel(store: JobStore) -> None:
    store.create(job("pending"))
    store.create(job("running"))
    store.claim("running", "w1", LEASE, MAX)

    assert store.request_cancel(B, "pending") is None  # another user's job: not found, untouched
    assert store.request_cancel(B, "running") is None
    assert store.request_cancel(A, "missing") is None
    assert not store.is_cancel_requested("running")

    cancelled = store.request_cancel(A, "pending")
    assert cancelled is not None
    assert (cancelled.status, cancelled.message) == ("cancelled", "Cancelled before it started")
    assert store.claim("pending", "w1", LEASE, MAX) is None  # never runs
    assert store.is_cancel_requested("pending")

    asked = store.request_cancel(A, "running")
    assert asked is not None
    assert (asked.status, asked.cancel_requested, asked.message) == ("running", True, "Cancelling")
    assert store.is_cancel_requested("running")
    assert store.mark_cancelled("running", "w1")
    stopped = got(store, "running")
    assert (stopped.status, stopped.lease_owner) == ("cancelled", None)
    assert stopped.message == "Cancelled while running; the request was stopped and nothing was saved"


def test_release_gives_the_job_back_without_counting_the_attempt(store: JobStore) -> None:
    store.create(job("j1"))
    store.claim("j1", "w1", LEASE, MAX)
    assert store.release("j1", "w1")
    released = got(store, "j1")
    assert (released.status, released.attempts, released.lease_owner, released.error) == ("pending", 0, None, None)
    assert store.pending(10) == ["j1"]


def test_release_with_a_reason_keeps_it_until_the_next_claim(store: JobStore) -> None:
    store.create(job("j1"))
    store.claim("j1", "w1", LEASE, MAX)
    assert store.release("j1", "w1", "OpenAI rate limit reached (429).")
    waiting = got(store, "j1")
    assert (waiting.status, waiting.attempts, waiting.error) == ("pending", 0, "OpenAI rate limit reached (429).")
    assert waiting.message == "Waiting for a worker to retry after a temporary error: OpenAI rate limit reached (429)."
    again = store.claim("j1", "w2", LEASE, MAX)
    assert again is not None
    assert (again.attempts, again.error) == (1, None)


def test_recover_resumes_fails_or_cancels_abandoned_jobs(store: JobStore, clock: Clock) -> None:
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
    assert got(store, "exhausted").error == (
        "The server stopped while the job was running (2 attempts); start a new job to try again."
    )
    resumed = got(store, "resume")
    assert (resumed.attempts, resumed.lease_owner) == (1, None)
    assert "the server stopped while the job was running (1 attempt)" in resumed.message
    assert got(store, "alive").status == "running"
    assert store.pending(10) == ["resume"]


# -- DynamoDB only ------------------------------------------------------------------------------


@pytest.fixture
def dynamo(stack: Stack, clock: Clock) -> DynamoJobStore:
    store: DynamoJobStore = stack.store(clock=clock)
    return store


def raw_item(stack: Stack, user: str, job_id: str) -> dict[str, Any]:
    response = stack.services.dynamodb.get_item(
        TableName=stack.names.jobs_table, Key={"user": {"S": user}, "job_id": {"S": job_id}}
    )
    item: dict[str, Any] = response["Item"]
    return item


def test_ttl_is_set_at_creation_refreshed_when_finished_and_expired_rows_are_gone(
    stack: Stack, dynamo: DynamoJobStore, clock: Clock
) -> None:
    created_at = clock.now
    dynamo.create(job("j1"))
    dynamo.create(job("j2"))
    assert int(raw_item(stack, A, "j1")["expires_at"]["N"]) == int(created_at) + 7 * DAY

    clock.now += 3 * DAY
    dynamo.claim("j1", "w1", LEASE, MAX)
    assert dynamo.complete("j1", "w1", {}, "h")
    assert int(raw_item(stack, A, "j1")["expires_at"]["N"]) == int(clock.now) + 7 * DAY  # kept 7 days from now

    clock.now = created_at + 7 * DAY + 1  # j2 expired; DynamoDB (and moto) may still hold the item
    assert "Item" in stack.services.dynamodb.get_item(
        TableName=stack.names.jobs_table, Key={"user": {"S": A}, "job_id": {"S": "j2"}}
    )
    assert dynamo.get(A, "j2") is None
    assert [r.job_id for r in dynamo.list(A, limit=10, offset=0).records] == ["j1"]
    assert dynamo.list(A, limit=10, offset=0).total == 1
    assert dynamo.claim("j2", "w1", LEASE, MAX) is None
    assert dynamo.request_cancel(A, "j2") is None
    assert not dynamo.is_cancel_requested("j2")
    assert dynamo.pending(10) == []


def test_big_arguments_go_to_s3_under_the_users_prefix(stack: Stack, dynamo: DynamoJobStore) -> None:
    blob = "A" * 400_000  # a base64 reference image over DynamoDB's item limit
    created = job("big", tool="transform_image", reference_image_base64=blob)
    dynamo.create(created)

    item = raw_item(stack, A, "big")
    assert "arguments" not in item
    assert item["arguments_key"]["S"] == "users/alice/.jobs/big.json"
    assert stack.objects("users/alice/.jobs/") == ["users/alice/.jobs/big.json"]
    assert json.loads(item["arguments_preview"]["S"]) == {"prompt": "prompt big"}

    assert dynamo.get(A, "big") == created  # get and claim give the arguments in full
    claimed = dynamo.claim("big", "w1", LEASE, MAX)
    assert claimed is not None
    assert claimed.arguments["reference_image_base64"] == blob
    listed = dynamo.list(A, limit=10, offset=0).records[0]  # a listing shows the preview
    assert listed.arguments == {"prompt": "prompt big"}
    assert listed.prompt == "prompt big"

    without_s3 = DynamoJobStore(stack.services.dynamodb, stack.names.jobs_table)
    with pytest.raises(InvalidArgumentError, match="reference_image_path instead of base64"):
        without_s3.create(job("big2", reference_image_base64=blob))


def test_worker_calls_find_the_job_by_id_once_its_user_is_known(stack: Stack, dynamo: DynamoJobStore) -> None:
    dynamo.create(job("j1"))
    other = stack.store()  # another container: it has only the queue message's user and id
    with pytest.raises(LookupError, match="get\\(user, job_id\\) first"):
        other.claim("j1", "w1", LEASE, MAX)
    assert other.get(B, "j1") is None  # the wrong user teaches it nothing
    with pytest.raises(LookupError):
        other.claim("j1", "w1", LEASE, MAX)
    assert other.get(A, "j1") is not None
    assert other.claim("j1", "w1", LEASE, MAX) is not None


def test_claim_races_between_containers(stack: Stack, dynamo: DynamoJobStore) -> None:
    """Six containers claim one job at once: exactly one wins, in every one of many trials (moto's server is made
    atomic for DynamoDB by `local_sandbox.standins.moto_server`, as DynamoDB is)."""
    stores = [stack.store() for _ in range(6)]
    for trial in range(40):
        job_id = f"race{trial}"
        dynamo.create(job(job_id))
        for each in stores:
            each.get(A, job_id)
        winners: list[str] = []
        barrier = threading.Barrier(len(stores))

        def claim(index: int, job_id: str, winners: list[str], barrier: threading.Barrier) -> None:
            barrier.wait()
            if stores[index].claim(job_id, f"w{index}", LEASE, MAX) is not None:
                winners.append(f"w{index}")

        threads = [
            threading.Thread(target=claim, args=(index, job_id, winners, barrier)) for index in range(len(stores))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(winners) == 1, f"trial {trial}: {winners}"
        assert got(dynamo, job_id).lease_owner == winners[0]


def test_resolve_applies_only_to_the_job_as_it_was_read(dynamo: DynamoJobStore, clock: Clock) -> None:
    dynamo.create(job("j1"))
    dynamo.claim("j1", "w1", LEASE, MAX)
    seen = got(dynamo, "j1")
    clock.now += 1
    dynamo.heartbeat("j1", "w1", LEASE)  # its worker is alive after all
    assert dynamo.resolve(seen, MAX) is None
    assert got(dynamo, "j1").status == "running"

    dynamo.create(job("j2"))
    gave_up = dynamo.resolve(got(dynamo, "j2"), MAX, give_up="Gave up after 5 deliveries: rate limited")
    assert gave_up is not None
    assert (gave_up.status, gave_up.error) == ("failed", "Gave up after 5 deliveries: rate limited")
    assert dynamo.resolve(gave_up, MAX, give_up="again") is None  # finished: never changes
