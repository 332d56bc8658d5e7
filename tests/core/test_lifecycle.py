"""The job lifecycle as a pure function: each event from each state, the messages a user reads, the values a store
must still find before it writes, and a queue worker's decision for each delivery."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from gpt_image_mcp.core.lifecycle import (
    CANCELLED_AFTER_STOP,
    CANCELLED_BEFORE_START,
    CANCELLED_WHILE_RUNNING,
    RELEASED,
    STALE_LEASE_SECONDS,
    Cancelled,
    Change,
    Claim,
    Complete,
    Delivery,
    Event,
    Fail,
    GiveUp,
    HandOver,
    Heartbeat,
    JobRecord,
    OwnerAlive,
    Recover,
    Release,
    RequestCancel,
    abandoned,
    apply,
    never_claimed,
    next_state,
    on_delivery,
)
from gpt_image_mcp.core.requests import JobStatus

NOW = 1_800_000_000.0
STAMP = "2027-01-15T08:00:00.000+00:00"  # NOW as ISO 8601
LEASE = 60.0
MAX = 2


def job(status: JobStatus = "pending", **fields: Any) -> JobRecord:
    record = JobRecord(
        job_id="j1",
        user="alice",
        tool_name="generate_image",
        arguments={"prompt": "a fox"},
        status=status,
        created_at="2027-01-01T00:00:00.000+00:00",
        updated_at="2027-01-01T00:00:00.000+00:00",
    )
    return dataclasses.replace(record, **fields)


def held(owner: str = "w1", expires: float = NOW + 10, attempts: int = 1, **fields: Any) -> JobRecord:
    return job("running", lease_owner=owner, lease_expires=expires, attempts=attempts, **fields)


def after(record: JobRecord, event: Event) -> JobRecord:
    change = next_state(record, event, NOW)
    assert change is not None, f"{event} does not apply to a {record.status} job"
    return apply(record, change)


AS_READ = ("status", "lease_owner", "lease_expires", "attempts", "cancel_requested")


def as_read(record: JobRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in AS_READ}


# -- claim -------------------------------------------------------------------------------------------


def test_a_claim_takes_a_pending_job_and_counts_an_attempt() -> None:
    pending = job(error="OpenAI rate limit reached (429).", progress=0.0)
    change = next_state(pending, Claim("w1", LEASE, MAX), NOW)
    assert change == Change(
        sets={
            "status": "running",
            "lease_owner": "w1",
            "lease_expires": NOW + LEASE,
            "attempts": 1,
            "progress": 0.0,
            "message": "Started",
            "error": None,
            "updated_at": STAMP,
        },
        expect=as_read(pending),
    )


def test_a_claim_takes_over_an_expired_lease_while_attempts_are_left() -> None:
    expired = held(owner="dead", expires=NOW - 1, attempts=1)
    taken = after(expired, Claim("w2", LEASE, MAX))
    assert (taken.lease_owner, taken.attempts, taken.lease_expires) == ("w2", 2, NOW + LEASE)
    assert next_state(expired, Claim("w2", LEASE, MAX), NOW).expect == as_read(expired)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "record",
    [
        held(expires=NOW + 1),  # a live lease
        held(expires=NOW),  # expiring this instant: still its owner's
        held(expires=NOW - 1, attempts=MAX),  # attempts used up: recovery fails it instead
        held(expires=None),
        job(cancel_requested=True),
        held(expires=NOW - 1, cancel_requested=True),
        job("completed"),
        job("failed"),
        job("cancelled"),
    ],
)
def test_a_claim_does_not_apply(record: JobRecord) -> None:
    assert next_state(record, Claim("w2", LEASE, MAX), NOW) is None


# -- the owner's events ----------------------------------------------------------------------------


def test_a_heartbeat_renews_the_lease_and_reports_progress_when_given() -> None:
    running = held()
    assert next_state(running, Heartbeat("w1", LEASE), NOW) == Change(
        {"lease_expires": NOW + LEASE}, {"status": "running", "lease_owner": "w1"}
    )
    reported = after(running, Heartbeat("w1", LEASE, progress=0.5, message="Halfway"))
    assert (reported.progress, reported.message, reported.updated_at) == (0.5, "Halfway", STAMP)
    only_progress = after(running, Heartbeat("w1", LEASE, progress=0.25))
    assert (only_progress.progress, only_progress.message) == (0.25, running.message)


@pytest.mark.parametrize(
    ("event", "status", "message"),
    [
        (Complete("w1", {"history_id": "h1"}, "h1"), "completed", "Done"),
        (Fail("w1", "The prompt was refused."), "failed", "Failed"),
        (Cancelled("w1"), "cancelled", CANCELLED_WHILE_RUNNING),
        (Release("w1"), "pending", RELEASED),
        (
            Release("w1", "OpenAI rate limit reached (429)."),
            "pending",
            "Waiting for a worker to retry after a temporary error: OpenAI rate limit reached (429).",
        ),
    ],
)
def test_the_owners_last_event_gives_up_the_lease(event: Event, status: str, message: str) -> None:
    running = held(progress=0.4)
    change = next_state(running, event, NOW)
    assert change is not None
    assert change.expect["status"] == "running"
    assert change.expect["lease_owner"] == "w1"
    ended = apply(running, change)
    assert (ended.status, ended.message, ended.lease_owner, ended.lease_expires) == (status, message, None, None)
    assert ended.updated_at == STAMP


def test_complete_fail_and_release_record_what_they_carry() -> None:
    done = after(held(), Complete("w1", {"history_id": "h1", "images": []}, "h1"))
    assert (done.progress, done.result, done.history_id) == (1.0, {"history_id": "h1", "images": []}, "h1")
    assert after(held(), Fail("w1", "The prompt was refused.")).error == "The prompt was refused."
    retried = after(held(attempts=2, progress=0.5), Release("w1", "OpenAI rate limit reached (429)."))
    assert (retried.attempts, retried.progress, retried.error) == (1, 0.0, "OpenAI rate limit reached (429).")
    assert after(held(error="old"), Release("w1")).error is None


def test_release_does_not_count_the_interrupted_attempt_and_never_goes_below_zero() -> None:
    assert after(held(attempts=1), Release("w1")).attempts == 0
    assert after(held(attempts=0), Release("w1")).attempts == 0
    change = next_state(held(attempts=1), Release("w1"), NOW)
    assert change is not None
    assert change.expect == {"status": "running", "lease_owner": "w1", "attempts": 1}


@pytest.mark.parametrize(
    "event",
    [
        Heartbeat("w2", LEASE),
        Complete("w2", {}, "h"),
        Fail("w2", "no"),
        Cancelled("w2"),
        Release("w2"),
    ],
)
@pytest.mark.parametrize("record", [held(owner="w1"), job("pending"), job("completed", lease_owner=None)])
def test_only_the_owner_of_a_running_job_moves_it(event: Event, record: JobRecord) -> None:
    assert next_state(record, event, NOW) is None


# -- the user's cancel -----------------------------------------------------------------------------


def test_cancel_stops_a_pending_job_at_once_and_asks_a_running_one_to_stop() -> None:
    cancelled = next_state(job(), RequestCancel(), NOW)
    assert cancelled == Change(
        {"status": "cancelled", "message": CANCELLED_BEFORE_START, "updated_at": STAMP}, {"status": "pending"}
    )
    asked = after(held(), RequestCancel())
    assert (asked.status, asked.cancel_requested, asked.message, asked.lease_owner) == (
        "running",
        True,
        "Cancelling",
        "w1",
    )
    for finished in ("completed", "failed", "cancelled"):
        assert next_state(job(finished), RequestCancel(), NOW) is None


# -- recovery and giving up ------------------------------------------------------------------------


def test_recover_resumes_fails_or_cancels_and_only_the_job_as_read() -> None:
    resumed = after(held(owner="dead", attempts=1, progress=0.3), Recover(MAX))
    assert (resumed.status, resumed.attempts, resumed.progress, resumed.lease_owner) == ("pending", 1, 0.0, None)
    assert resumed.message == "Waiting for a worker: resuming, the server stopped while the job was running (1 attempt)"
    failed = after(held(owner="dead", attempts=2), Recover(MAX))
    assert (failed.status, failed.message) == ("failed", "Failed")
    assert failed.error == "The server stopped while the job was running (2 attempts); start a new job to try again."
    cancelled = after(held(owner="dead", cancel_requested=True), Recover(MAX))
    assert (cancelled.status, cancelled.message) == ("cancelled", CANCELLED_AFTER_STOP)

    abandoned = held(owner="dead", expires=NOW - 5)
    change = next_state(abandoned, Recover(MAX), NOW)
    assert change is not None
    assert change.expect == as_read(abandoned)  # a renewed lease or a new owner means someone works on it
    for record in (job(), job("completed")):
        assert next_state(record, Recover(MAX), NOW) is None


def test_giving_up_fails_a_pending_or_abandoned_job_with_the_reason() -> None:
    reason = "Gave up after 5 deliveries: OpenAI rate limit reached (429)."
    for record in (job(), held(owner="dead", expires=NOW - 5)):
        gave_up = after(record, GiveUp(reason))
        assert (gave_up.status, gave_up.error, gave_up.message, gave_up.lease_owner) == (
            "failed",
            reason,
            "Failed",
            None,
        )
    cancelled = after(held(owner="dead", cancel_requested=True), GiveUp(reason))
    assert (cancelled.status, cancelled.error) == ("cancelled", None)
    assert next_state(job("completed"), GiveUp(reason), NOW) is None


def test_a_call_handed_over_becomes_a_background_job_while_unfinished() -> None:
    for record in (job(background=False), held(background=False)):
        assert next_state(record, HandOver(), NOW) == Change({"background": True}, {"status": record.status})
    assert next_state(job("completed", background=False), HandOver(), NOW) is None


@pytest.mark.parametrize("event", [Claim("w", LEASE, MAX), Recover(MAX), GiveUp("x"), RequestCancel(), HandOver()])
@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_a_finished_job_never_changes(event: Event, status: JobStatus) -> None:
    assert next_state(job(status), event, NOW) is None


def test_a_job_never_claimed_is_told_apart_from_one_given_back() -> None:
    """Whether an earlier attempt may have kept a paid answer: only a job no worker ever took has none."""
    fresh = job()
    assert never_claimed(fresh)
    claimed = after(fresh, Claim("w1", LEASE, MAX))
    assert not never_claimed(claimed)
    later = NOW + 30  # the attempt got an answer, then gave the job back (shutdown, temporary error)
    for event in (Release("w1"), Release("w1", "Throttled")):
        change = next_state(claimed, event, later)
        assert change is not None
        given_back = apply(claimed, change)
        assert (given_back.status, given_back.attempts) == ("pending", 0)
        assert not never_claimed(given_back)
    assert not never_claimed(after(held(owner="dead", expires=NOW - 1), Recover(MAX)))  # resumed: pending again


# -- the liveness policy ---------------------------------------------------------------------------


def running(owner: str | None, expires: float) -> JobRecord:
    return job("running", lease_owner=owner, lease_expires=expires)


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


# -- a queue's delivery ----------------------------------------------------------------------------

LAST = 5


def decide(record: JobRecord | None, delivery: int = 1) -> Delivery:
    return on_delivery(record, delivery, LAST, MAX, NOW)


def test_a_missing_or_finished_job_ends_its_message() -> None:
    assert decide(None).action == "drop"
    assert decide(None).why == "no such job (expired, never written, or not this user's): message dropped"
    finished = decide(job("completed"))
    assert (finished.action, finished.why) == ("acknowledge", "job already completed: duplicate delivery acknowledged")
    assert decide(job("cancelled"), LAST).action == "acknowledge"


def test_a_pending_job_or_one_whose_worker_died_is_run() -> None:
    assert decide(job()) == Delivery("run", "claim and run")
    assert decide(held(owner="dead", expires=NOW - 1, attempts=1)).action == "run"  # the claim takes it over


def test_a_job_held_elsewhere_waits_for_a_redelivery() -> None:
    assert decide(held(expires=NOW + 1)) == Delivery("wait", "the job is running in another worker")
    assert decide(held(expires=NOW + 1), LAST) == Delivery(
        "wait", "still running in another worker at the last delivery", at_once=True
    )
    long_stale = held(expires=NOW - STALE_LEASE_SECONDS - 1)
    assert decide(long_stale).action == "run"


def test_an_abandoned_job_that_cannot_be_resumed_is_settled() -> None:
    for record in (
        held(owner="dead", expires=NOW - 1, attempts=MAX),
        held(owner="dead", expires=NOW - 1, cancel_requested=True),
    ):
        assert decide(record) == Delivery("settle", "job left running by a stopped worker", Recover(MAX))


@pytest.mark.parametrize(
    ("record", "last"),
    [
        (job(error="OpenAI rate limit reached (429)."), "OpenAI rate limit reached (429)."),
        (held(owner="dead", expires=NOW - 1, attempts=1), "the server stopped while the job was running (1 attempt)"),
        (job(), "the job was interrupted before it could finish"),
    ],
)
def test_the_last_delivery_fails_the_job_with_the_last_reason(record: JobRecord, last: str) -> None:
    assert decide(record, LAST) == Delivery(
        "dead_letter", "last delivery", GiveUp(f"Gave up after {LAST} deliveries: {last}"), at_once=True
    )
    assert decide(record, LAST + 1).event == GiveUp(f"Gave up after {LAST + 1} deliveries: {last}")
