"""One contract for every JobStore: the same lifecycle events (`core.lifecycle`), written by SQLite and by DynamoDB,
give the same records. Then what only the DynamoDB store has: TTL, arguments in S3, keys from the queue message,
claims racing across containers."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from clock import Clock
from remote_jobs_support import Stack

from gpt_image_mcp.aws.dynamo_jobs import DynamoJobStore
from gpt_image_mcp.core.errors import InvalidArgumentError
from gpt_image_mcp.core.jobs import JobStore, persist, recover_abandoned, transition
from gpt_image_mcp.core.lifecycle import (
    Cancelled,
    Claim,
    Complete,
    Event,
    Fail,
    GiveUp,
    HandOver,
    Heartbeat,
    JobRecord,
    Recover,
    Release,
    RequestCancel,
    next_state,
)
from local_sandbox.sqlite_jobs import SQLiteJobStore

A, B = "alice", "bob"
LEASE = 60.0
MAX = 2
DAY = 86_400


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", "dynamo"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[Callable[[], JobStore]]:
    """Opens another store on the same jobs: another connection to the database file (another server process), or
    another container's client of the table."""
    opened: list[SQLiteJobStore] = []

    def open_sqlite() -> JobStore:
        opened.append(SQLiteJobStore(tmp_path / "history.db"))
        return opened[-1]

    if request.param == "sqlite":
        yield open_sqlite
    else:
        stack: Stack = request.getfixturevalue("stack")
        yield lambda: stack.store(clock=clock)
    for each in opened:
        each.close()


@pytest.fixture
def store(open_store: Callable[[], JobStore]) -> JobStore:
    return open_store()


class Jobs:
    """The store driven the way `JobService` drives it: read the job, decide with the lifecycle, write."""

    def __init__(self, store: JobStore, clock: Clock) -> None:
        self.store, self.clock = store, clock

    def on(self, job_id: str, event: Event, user: str = A) -> JobRecord | None:
        job = self.store.get(user, job_id)
        return None if job is None else transition(self.store, job, event, self.clock.now)

    def claim(self, job_id: str, owner: str, user: str = A) -> JobRecord | None:
        return self.on(job_id, Claim(owner, LEASE, MAX), user)

    def request_cancel(self, user: str, job_id: str) -> JobRecord | None:
        job = self.store.get(user, job_id)
        return None if job is None else persist(self.store, job, RequestCancel(), self.clock.now)

    def recover(self, is_abandoned: Any) -> list[JobRecord]:
        return recover_abandoned(self.store, is_abandoned, MAX, self.clock.now)

    def pending(self) -> list[str]:
        return [record.job_id for record in self.store.scan("pending", 10)]


@pytest.fixture
def jobs(store: JobStore, clock: Clock) -> Jobs:
    return Jobs(store, clock)


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


def test_a_second_create_with_the_same_id_is_refused_and_the_first_row_kept(store: JobStore) -> None:
    """What a keyed start relies on: of two starts racing with one idempotency key, one row wins, the other hears it."""
    first = job("j1")
    store.create(first)
    with pytest.raises(Exception):  # noqa: B017 - each store raises its own (IntegrityError, ConditionalCheckFailed)
        store.create(dataclasses.replace(first, arguments={"prompt": "another"}))
    assert store.get(A, "j1") == first


def test_list_filters_pages_and_isolates_users(store: JobStore, jobs: Jobs) -> None:
    for index in range(5):
        store.create(job(f"a{index}", created=f"2026-01-01T00:00:0{index}.000+00:00"))
    store.create(job("e1", tool="edit_image", created="2026-01-01T00:00:09.000+00:00"))
    store.create(job("b1", user=B))
    assert jobs.claim("a0", "w") is not None

    page = store.list(A, limit=3, offset=1)
    assert (page.total, [r.job_id for r in page.records]) == (6, ["a4", "a3", "a2"])
    assert [r.job_id for r in store.list(A, status="running", limit=10, offset=0).records] == ["a0"]
    assert store.list(A, tool_name="edit_image", limit=10, offset=0).total == 1
    assert [r.job_id for r in store.list(B, limit=10, offset=0).records] == ["b1"]
    assert store.list("carol", limit=10, offset=0) == ([], 0)
    assert store.list(A, limit=10, offset=0).records[0] == got(store, "e1")


def test_list_shows_background_jobs_or_every_job(store: JobStore, jobs: Jobs, clock: Clock) -> None:
    """Synchronous calls are recorded as jobs too (`background=False`); a listing of background jobs leaves them out
    until a call continues in the background (`HandOver`)."""
    store.create(job("started", created="2026-01-01T00:00:01.000+00:00"))
    store.create(dataclasses.replace(job("call", created="2026-01-01T00:00:02.000+00:00"), background=False))
    store.create(dataclasses.replace(job("slow call", created="2026-01-01T00:00:03.000+00:00"), background=False))
    assert got(store, "call").background is False

    def listed(background: bool | None) -> list[str]:
        return [r.job_id for r in store.list(A, background=background, limit=10, offset=0).records]

    assert listed(None) == ["slow call", "call", "started"]
    assert listed(True) == ["started"]
    assert listed(False) == ["slow call", "call"]
    assert store.list(A, background=True, limit=10, offset=0).total == 1

    jobs.claim("slow call", "w1")
    handed = jobs.on("slow call", HandOver())
    assert handed is not None and handed.background
    assert got(store, "slow call") == handed
    assert listed(True) == ["slow call", "started"]
    assert store.list(A, background=True, status="running", limit=10, offset=0).total == 1

    jobs.on("call", RequestCancel())
    assert jobs.on("call", HandOver()) is None  # finished: never changes
    assert listed(True) == ["slow call", "started"]


def test_claim_is_exclusive_and_counts_attempts(store: JobStore, jobs: Jobs, clock: Clock) -> None:
    store.create(job("j1"))
    claimed = jobs.claim("j1", "w1")
    assert claimed is not None
    assert (claimed.status, claimed.lease_owner, claimed.attempts, claimed.message) == ("running", "w1", 1, "Started")
    assert claimed.lease_expires == clock.now + LEASE
    assert claimed == got(store, "j1")  # what the lifecycle says is what the store wrote
    assert jobs.claim("j1", "w2") is None  # the lease is live

    clock.now += LEASE + 1  # w1 stopped renewing: its job can be taken over, while attempts are left
    taken = jobs.claim("j1", "w2")
    assert taken is not None
    assert (taken.lease_owner, taken.attempts) == ("w2", 2)
    clock.now += LEASE + 1
    assert jobs.claim("j1", "w3") is None  # attempts used up: recover fails it instead


def test_a_claim_written_against_a_stale_read_is_refused(store: JobStore, jobs: Jobs, clock: Clock) -> None:
    """The conditional write behind every claim: two workers read the same pending job, the first claim wins, the
    second (decided on what it read) is refused by the store, whatever the order of the threads."""
    store.create(job("j1"))
    first_read, second_read = got(store, "j1"), got(store, "j1")
    assert transition(store, first_read, Claim("w1", LEASE, MAX), clock.now) is not None
    change = next_state(second_read, Claim("w2", LEASE, MAX), clock.now)
    assert change is not None  # as read, the job was there to take
    assert not store.write(second_read, change)
    assert got(store, "j1").lease_owner == "w1"

    clock.now += LEASE + 1  # a takeover too: of two workers that saw the lease expired, one gets the job
    third_read, fourth_read = got(store, "j1"), got(store, "j1")
    assert transition(store, third_read, Claim("w3", LEASE, MAX), clock.now) is not None
    assert transition(store, fourth_read, Claim("w4", LEASE, MAX), clock.now) is None
    assert (got(store, "j1").lease_owner, got(store, "j1").attempts) == ("w3", 2)


def test_only_the_owner_moves_a_running_job(store: JobStore, jobs: Jobs, clock: Clock) -> None:
    store.create(job("j1"))
    jobs.claim("j1", "w1")
    assert jobs.on("j1", Heartbeat("w2", LEASE)) is None
    assert jobs.on("j1", Complete("w2", {"history_id": "h"}, "h")) is None
    assert jobs.on("j1", Fail("w2", "no")) is None
    assert jobs.on("j1", Cancelled("w2")) is None
    assert jobs.on("j1", Release("w2")) is None
    clock.now += 10
    assert jobs.on("j1", Heartbeat("w1", LEASE)) is not None
    assert jobs.on("j1", Heartbeat("w1", LEASE, progress=0.5, message="Halfway")) is not None
    running = got(store, "j1")
    assert (running.progress, running.message, running.lease_expires) == (0.5, "Halfway", clock.now + LEASE)
    assert jobs.on("j1", Complete("w1", {"history_id": "h1", "nested": {"x": [1, 2.5]}}, "h1")) is not None
    done = got(store, "j1")
    assert (done.status, done.progress, done.message, done.history_id) == ("completed", 1.0, "Done", "h1")
    assert done.result == {"history_id": "h1", "nested": {"x": [1, 2.5]}}
    assert (done.lease_owner, done.lease_expires) == (None, None)


def test_an_owner_that_lost_its_job_writes_nothing(store: JobStore, jobs: Jobs, clock: Clock) -> None:
    """The owner decides on the job as it holds it; once another worker took it over, the store refuses."""
    store.create(job("j1"))
    held_by_w1 = jobs.claim("j1", "w1")
    assert held_by_w1 is not None
    clock.now += LEASE + 1
    assert jobs.claim("j1", "w2") is not None
    for event in (Heartbeat("w1", LEASE), Complete("w1", {}, "h"), Fail("w1", "no"), Release("w1")):
        assert transition(store, held_by_w1, event, clock.now) is None
    assert (got(store, "j1").lease_owner, got(store, "j1").status) == ("w2", "running")


def test_a_finished_job_never_changes(store: JobStore, jobs: Jobs, clock: Clock) -> None:
    store.create(job("j1"))
    held = jobs.claim("j1", "w1")
    assert held is not None
    assert jobs.on("j1", Fail("w1", "The prompt was refused.")) is not None
    failed = got(store, "j1")
    assert (failed.status, failed.error, failed.message) == ("failed", "The prompt was refused.", "Failed")
    clock.now += 3 * LEASE
    assert jobs.on("j1", Complete("w1", {}, "h")) is None
    assert jobs.on("j1", Heartbeat("w1", LEASE)) is None
    assert jobs.on("j1", Release("w1")) is None
    assert jobs.claim("j1", "w2") is None
    assert jobs.request_cancel(A, "j1") == failed
    assert jobs.recover(lambda record: True) == []
    for event in (Complete("w1", {}, "h"), Release("w1"), GiveUp("x")):  # decided on a stale read: refused
        change = next_state(held, event, clock.now)
        assert change is not None
        assert not store.write(held, change)
    assert store.get(A, "j1") == failed


def test_request_cancel(store: JobStore, jobs: Jobs) -> None:
    store.create(job("pending"))
    store.create(job("running"))
    jobs.claim("running", "w1")

    assert jobs.request_cancel(B, "pending") is None  # another user's job: not found, untouched
    assert jobs.request_cancel(B, "running") is None
    assert jobs.request_cancel(A, "missing") is None
    assert not store.cancel_requested(A, "running")
    assert not store.cancel_requested(B, "running")

    cancelled = jobs.request_cancel(A, "pending")
    assert cancelled is not None
    assert (cancelled.status, cancelled.message) == ("cancelled", "Cancelled before it started")
    assert cancelled == got(store, "pending")
    assert jobs.claim("pending", "w1") is None  # never runs
    assert store.cancel_requested(A, "pending")

    asked = jobs.request_cancel(A, "running")
    assert asked is not None
    assert (asked.status, asked.cancel_requested, asked.message) == ("running", True, "Cancelling")
    assert store.cancel_requested(A, "running")
    assert not store.cancel_requested(B, "running")
    assert jobs.on("running", Cancelled("w1")) is not None
    stopped = got(store, "running")
    assert (stopped.status, stopped.lease_owner) == ("cancelled", None)
    assert stopped.message == "Cancelled while running; the request was stopped and nothing was saved"


def test_a_cancel_that_meets_a_claim_reads_again_and_asks_the_new_owner(
    store: JobStore, jobs: Jobs, clock: Clock
) -> None:
    store.create(job("j1"))
    seen_pending = got(store, "j1")
    jobs.claim("j1", "w1")  # between the user's read and the user's write
    asked = persist(store, seen_pending, RequestCancel(), clock.now)
    assert (asked.status, asked.cancel_requested, asked.lease_owner) == ("running", True, "w1")
    assert got(store, "j1") == asked


def test_release_gives_the_job_back_without_counting_the_attempt(store: JobStore, jobs: Jobs) -> None:
    store.create(job("j1"))
    jobs.claim("j1", "w1")
    assert jobs.on("j1", Release("w1")) is not None
    released = got(store, "j1")
    assert (released.status, released.attempts, released.lease_owner, released.error) == ("pending", 0, None, None)
    assert jobs.pending() == ["j1"]


def test_release_never_takes_attempts_below_zero(store: JobStore, jobs: Jobs) -> None:
    """Where the stores once drifted (SQLite floored at 0, DynamoDB did not): a running job with no attempt
    counted, released, keeps 0."""
    store.create(dataclasses.replace(job("j1"), status="running", lease_owner="w1", lease_expires=1.0, attempts=0))
    assert jobs.on("j1", Release("w1")) is not None
    assert (got(store, "j1").status, got(store, "j1").attempts) == ("pending", 0)


def test_release_with_a_reason_keeps_it_until_the_next_claim(store: JobStore, jobs: Jobs) -> None:
    store.create(job("j1"))
    jobs.claim("j1", "w1")
    assert jobs.on("j1", Release("w1", "OpenAI rate limit reached (429).")) is not None
    waiting = got(store, "j1")
    assert (waiting.status, waiting.attempts, waiting.error) == ("pending", 0, "OpenAI rate limit reached (429).")
    assert waiting.message == "Waiting for a worker to retry after a temporary error: OpenAI rate limit reached (429)."
    again = jobs.claim("j1", "w2")
    assert again is not None
    assert (again.attempts, again.error) == (1, None)


def test_recover_resumes_fails_or_cancels_abandoned_jobs(store: JobStore, jobs: Jobs, clock: Clock) -> None:
    for job_id in ("resume", "exhausted", "cancelling", "alive"):
        store.create(job(job_id))
    jobs.claim("exhausted", "dead")
    clock.now += LEASE + 1
    jobs.claim("exhausted", "dead")  # the second attempt
    jobs.claim("resume", "dead")
    jobs.claim("cancelling", "dead")
    jobs.claim("alive", "live")
    jobs.request_cancel(A, "cancelling")

    changed = jobs.recover(lambda record: record.lease_owner == "dead")

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
    assert jobs.pending() == ["resume"]


def test_recover_applies_only_to_the_job_as_it_was_read(store: JobStore, jobs: Jobs, clock: Clock) -> None:
    """Where the stores once drifted (SQLite checked the owner, DynamoDB also the lease): a job whose worker renews
    its lease between the sweep's read and its write is alive after all, and keeps running; so does one that
    another worker took over."""
    store.create(job("j1"))
    jobs.claim("j1", "w1")
    seen = got(store, "j1")
    clock.now += 1
    jobs.on("j1", Heartbeat("w1", LEASE))  # same owner, a new lease
    assert transition(store, seen, Recover(MAX), clock.now) is None
    assert got(store, "j1").status == "running"

    clock.now += LEASE + 1
    seen = got(store, "j1")
    jobs.claim("j1", "w2")  # taken over between the read and the write
    assert transition(store, seen, Recover(MAX), clock.now) is None
    assert got(store, "j1").lease_owner == "w2"

    store.create(job("j2"))
    gave_up = jobs.on("j2", GiveUp("Gave up after 5 deliveries: rate limited"))
    assert gave_up is not None
    assert (gave_up.status, gave_up.error) == ("failed", "Gave up after 5 deliveries: rate limited")
    assert got(store, "j2") == gave_up
    assert jobs.on("j2", GiveUp("again")) is None  # finished: never changes


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
    jobs = Jobs(dynamo, clock)
    created_at = clock.now
    dynamo.create(job("j1"))
    dynamo.create(job("j2"))
    assert int(raw_item(stack, A, "j1")["expires_at"]["N"]) == int(created_at) + 7 * DAY
    j2_before_expiry = got(dynamo, "j2")

    clock.now += 3 * DAY
    jobs.claim("j1", "w1")
    assert int(raw_item(stack, A, "j1")["expires_at"]["N"]) == int(created_at) + 7 * DAY  # not finished: unchanged
    assert jobs.on("j1", Complete("w1", {}, "h")) is not None
    assert int(raw_item(stack, A, "j1")["expires_at"]["N"]) == int(clock.now) + 7 * DAY  # kept 7 days from now

    clock.now = created_at + 7 * DAY + 1  # j2 expired; DynamoDB (and moto) may still hold the item
    assert "Item" in stack.services.dynamodb.get_item(
        TableName=stack.names.jobs_table, Key={"user": {"S": A}, "job_id": {"S": "j2"}}
    )
    assert dynamo.get(A, "j2") is None
    assert [r.job_id for r in dynamo.list(A, limit=10, offset=0).records] == ["j1"]
    assert dynamo.list(A, limit=10, offset=0).total == 1
    assert jobs.claim("j2", "w1") is None
    assert transition(dynamo, j2_before_expiry, Claim("w1", LEASE, MAX), clock.now) is None  # the write refuses it
    assert jobs.request_cancel(A, "j2") is None
    assert not dynamo.cancel_requested(A, "j2")
    assert dynamo.scan("pending", 10) == []


def test_big_arguments_go_to_s3_under_the_users_prefix(stack: Stack, dynamo: DynamoJobStore, clock: Clock) -> None:
    blob = "A" * 400_000  # a base64 reference image over DynamoDB's item limit
    created = job("big", tool="transform_image", reference_image_base64=blob)
    dynamo.create(created)

    item = raw_item(stack, A, "big")
    assert "arguments" not in item
    assert item["arguments_key"]["S"] == "users/alice/.jobs/big.json"
    assert stack.objects("users/alice/.jobs/") == ["users/alice/.jobs/big.json"]
    assert json.loads(item["arguments_preview"]["S"]) == {"prompt": "prompt big"}

    assert dynamo.get(A, "big") == created  # get (and so the claim) gives the arguments in full
    claimed = Jobs(dynamo, clock).claim("big", "w1")
    assert claimed is not None
    assert claimed.arguments["reference_image_base64"] == blob
    listed = dynamo.list(A, limit=10, offset=0).records[0]  # a listing shows the preview
    assert listed.arguments == {"prompt": "prompt big"}
    assert listed.prompt == "prompt big"
    assert "arguments" not in raw_item(stack, A, "big")  # a transition never writes the arguments back

    without_s3 = DynamoJobStore(stack.services.dynamodb, stack.names.jobs_table)
    with pytest.raises(InvalidArgumentError, match="reference_image_path instead of base64"):
        without_s3.create(job("big2", reference_image_base64=blob))


def test_a_container_works_on_a_job_from_the_queue_messages_user_and_id(stack: Stack, clock: Clock) -> None:
    """No container needs to have seen a job before: the message's user and id are its key."""
    stack.store(clock=clock).create(job("j1"))
    other = stack.store(clock=clock)  # another container: it has only the queue message's user and id
    assert other.get(B, "j1") is None  # the wrong user finds nothing
    assert Jobs(other, clock).claim("j1", "w1", user=B) is None
    claimed = Jobs(other, clock).claim("j1", "w1", user=A)
    assert claimed is not None
    assert Jobs(stack.store(clock=clock), clock).on("j1", Heartbeat("w1", LEASE)) is not None


def test_claims_racing_from_many_processes_give_one_winner(
    store: JobStore, open_store: Callable[[], JobStore], clock: Clock
) -> None:
    """Six processes (server processes sharing the SQLite file; containers sharing the table) read one pending job
    and claim it at once: exactly one wins, in every one of many trials. SQLite's write lock makes the conditional
    UPDATE atomic; DynamoDB makes the conditional UpdateItem atomic, and so does its stand-in here
    (`local_sandbox.standins.moto_server`)."""
    stores = [open_store() for _ in range(6)]
    for trial in range(40):
        job_id = f"race{trial}"
        store.create(job(job_id))
        winners: list[str] = []
        barrier = threading.Barrier(len(stores))

        def claim(index: int, job_id: str, winners: list[str], barrier: threading.Barrier) -> None:
            read = got(stores[index], job_id)
            barrier.wait()
            if transition(stores[index], read, Claim(f"w{index}", LEASE, MAX), clock.now) is not None:
                winners.append(f"w{index}")

        threads = [
            threading.Thread(target=claim, args=(index, job_id, winners, barrier)) for index in range(len(stores))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(winners) == 1, f"trial {trial}: {winners}"
        assert got(store, job_id).lease_owner == winners[0]
