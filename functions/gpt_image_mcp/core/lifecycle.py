"""The job lifecycle, in one place: which event takes a job from which state to which, with what message.

A job is pending, running (one worker holds its lease and renews it) or finished (completed, failed, cancelled; it
never changes again). `next_state(job, event, now)` is a pure function: given the job as read, it returns the
`Change` the event makes (`sets`) and the values it relied on (`expect`), or None when the event does not apply.
A store writes a change only while the job still holds the expected values (SQLite: `UPDATE ... WHERE`; DynamoDB:
a `ConditionExpression`), so of two writers that read the same job one wins and the other learns that it lost.
The stores keep no rule of their own; the SQLite store, the DynamoDB store, the local runner and the SQS worker
all go through here. `on_delivery` decides what a queue worker does with one delivery of a job's message, from the
job as read: also pure, so every branch is tested without a queue.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from gpt_image_mcp.core.requests import JobStatus

TERMINAL: frozenset[JobStatus] = frozenset({"completed", "failed", "cancelled"})
STALE_LEASE_SECONDS = 900.0  # an expired lease this old is taken over even if its owner still looks alive

# What a job says about itself, per state (`JobRecord.message`).
WAITING = "Waiting for a worker"
STARTED = "Started"
DONE = "Done"
FAILED = "Failed"
CANCELLING = "Cancelling"
CANCELLED_BEFORE_START = "Cancelled before it started"
CANCELLED_WHILE_RUNNING = "Cancelled while running; the request was stopped and nothing was saved"
CANCELLED_AFTER_STOP = "Cancelled (the server had stopped)"
RELEASED = f"{WAITING} (the server stopped while it ran; it resumes when the server starts)"


def retrying(reason: str) -> str:
    return f"{WAITING} to retry after a temporary error: {reason}"


def interrupted_reason(attempts: int) -> str:
    return f"the server stopped while the job was running ({attempts} attempt{'s' if attempts != 1 else ''})"


def resuming(attempts: int) -> str:
    return f"{WAITING}: resuming, {interrupted_reason(attempts)}"


def out_of_attempts(attempts: int) -> str:
    return f"{interrupted_reason(attempts).capitalize()}; start a new job to try again."


def utc_iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds")


@dataclass(slots=True)
class JobRecord:
    """One background image call and everything known about its progress."""

    job_id: str
    user: str
    tool_name: str
    arguments: dict[str, Any]  # the tool's validated arguments
    status: JobStatus
    created_at: str  # ISO 8601, UTC
    updated_at: str
    progress: float = 0.0
    message: str = WAITING
    attempts: int = 0
    error: str | None = None  # user-facing reason when failed; while pending, why the last attempt is retried
    result: dict[str, Any] | None = None  # the ImageToolResult, when completed
    history_id: str | None = None
    lease_owner: str | None = None
    lease_expires: float | None = None  # epoch seconds
    cancel_requested: bool = False
    background: bool = True  # False: the record of a synchronous call (list_jobs leaves it out unless asked)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    @property
    def prompt(self) -> str:
        return str(self.arguments.get("prompt", ""))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobRecord:
        return cls(**data)


# -- events ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claim:
    """A worker takes the job: a pending one, or a running one whose lease expired (its worker died) while
    attempts are left. Never a job with a cancel asked. Counts an attempt."""

    owner: str
    lease_seconds: float
    max_attempts: int


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The owner renews its lease, and reports progress when it has some."""

    owner: str
    lease_seconds: float
    progress: float | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Complete:
    owner: str
    result: dict[str, Any]
    history_id: str


@dataclass(frozen=True, slots=True)
class Fail:
    owner: str
    error: str  # user-facing


@dataclass(frozen=True, slots=True)
class Cancelled:
    """The owner stopped the work after a cancel was asked; nothing was saved."""

    owner: str


@dataclass(frozen=True, slots=True)
class Release:
    """The owner gives the job back as pending, the interrupted attempt not counted: when it shuts down (no
    reason), or after a temporary error (the reason, kept in `error` until the next claim)."""

    owner: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class RequestCancel:
    """The user cancels: a pending job at once; a running one is asked to stop (its owner does)."""


@dataclass(frozen=True, slots=True)
class Recover:
    """Nobody works on the running job any more (`abandoned` says so): cancelled if a cancel was asked, else
    pending again while attempts are left, else failed with the reason."""

    max_attempts: int


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Nobody will run the job (the queue refused it, or gave up delivering it): failed with `reason`, or
    cancelled if a cancel was asked. Applies to a pending job and to a running one nobody works on."""

    reason: str


@dataclass(frozen=True, slots=True)
class HandOver:
    """A synchronous call's job continues in the background (the call's time ran out): from now on it is one of
    the user's background jobs."""


Event = Claim | Heartbeat | Complete | Fail | Cancelled | Release | RequestCancel | Recover | GiveUp | HandOver


@dataclass(frozen=True, slots=True)
class Change:
    """What an event does to a job: the fields it sets (`JobRecord` names; None clears), written only while the
    fields in `expect` still hold the values that were read."""

    sets: dict[str, Any]
    expect: dict[str, Any]

    @property
    def finishes(self) -> bool:
        return self.sets.get("status") in TERMINAL


def never_claimed(job: JobRecord) -> bool:
    """Whether no worker ever took `job` (as read): no earlier attempt can have paid for an answer and kept it.
    Every event that follows a claim stamps `updated_at`, and an attempt that got an answer took at least an upstream
    round trip, so a job whose `updated_at` is still its `created_at` has not been worked on."""
    return job.status == "pending" and job.attempts == 0 and job.updated_at == job.created_at


def apply(job: JobRecord, change: Change) -> JobRecord:
    """The job after `change` was written."""
    return dataclasses.replace(job, **change.sets)


def next_state(job: JobRecord, event: Event, now: float) -> Change | None:
    """The change `event` makes to `job` (as read) at `now`, or None when it does not apply to the job."""
    stamp = utc_iso(now)
    match event:
        case Claim(owner, lease_seconds, max_attempts):
            expired = job.lease_expires is not None and job.lease_expires < now
            takeover = job.status == "running" and expired and job.attempts < max_attempts
            if job.cancel_requested or not (job.status == "pending" or takeover):
                return None
            sets = {
                "status": "running",
                "lease_owner": owner,
                "lease_expires": now + lease_seconds,
                "attempts": job.attempts + 1,
                "progress": 0.0,
                "message": STARTED,
                "error": None,
                "updated_at": stamp,
            }
            return Change(sets, _as_read(job, "status", "lease_owner", "lease_expires", "attempts", "cancel_requested"))
        case Heartbeat(owner, lease_seconds, progress, message):
            if not _holds(job, owner):
                return None
            sets = {"lease_expires": now + lease_seconds}
            if progress is not None or message is not None:
                sets |= {"progress": progress, "message": message, "updated_at": stamp}
            return Change({name: value for name, value in sets.items() if value is not None}, _held_by(owner))
        case Complete(owner, result, history_id):
            finished = {"status": "completed", "progress": 1.0, "message": DONE, "result": result}
            return _owner_ends(job, owner, {**finished, "history_id": history_id}, stamp)
        case Fail(owner, error):
            return _owner_ends(job, owner, {"status": "failed", "message": FAILED, "error": error}, stamp)
        case Cancelled(owner):
            return _owner_ends(job, owner, {"status": "cancelled", "message": CANCELLED_WHILE_RUNNING}, stamp)
        case Release(owner, reason):
            released = {
                "status": "pending",
                "attempts": max(job.attempts - 1, 0),
                "progress": 0.0,
                "message": RELEASED if reason is None else retrying(reason),
                "error": reason,
            }
            change = _owner_ends(job, owner, released, stamp)
            return None if change is None else Change(change.sets, {**change.expect, "attempts": job.attempts})
        case RequestCancel():
            if job.status == "pending":
                sets = {"status": "cancelled", "message": CANCELLED_BEFORE_START, "updated_at": stamp}
            elif job.status == "running":
                sets = {"cancel_requested": True, "message": CANCELLING, "updated_at": stamp}
            else:
                return None
            return Change(sets, {"status": job.status})
        case Recover(max_attempts):
            if job.status != "running":
                return None
            if job.cancel_requested:
                sets = {"status": "cancelled", "message": CANCELLED_AFTER_STOP}
            elif job.attempts < max_attempts:
                sets = {"status": "pending", "progress": 0.0, "message": resuming(job.attempts)}
            else:
                sets = {"status": "failed", "message": FAILED, "error": out_of_attempts(job.attempts)}
            return _unowned(job, sets, stamp)
        case HandOver():
            if job.finished:
                return None
            return Change({"background": True}, {"status": job.status})
        case GiveUp(reason):
            if job.status not in ("pending", "running"):
                return None
            if job.cancel_requested:
                return _unowned(job, {"status": "cancelled", "message": CANCELLED_AFTER_STOP}, stamp)
            return _unowned(job, {"status": "failed", "message": FAILED, "error": reason}, stamp)


def _as_read(job: JobRecord, *names: str) -> dict[str, Any]:
    return {name: getattr(job, name) for name in names}


def _holds(job: JobRecord, owner: str) -> bool:
    return job.status == "running" and job.lease_owner == owner


def _held_by(owner: str) -> dict[str, Any]:
    """An owner's changes apply only while it still holds the job (nobody took it over)."""
    return {"status": "running", "lease_owner": owner}


_NO_LEASE = {"lease_owner": None, "lease_expires": None}


def _owner_ends(job: JobRecord, owner: str, sets: dict[str, Any], stamp: str) -> Change | None:
    """The owner's last change: it also gives up the lease."""
    if not _holds(job, owner):
        return None
    return Change({**sets, **_NO_LEASE, "updated_at": stamp}, _held_by(owner))


def _unowned(job: JobRecord, sets: dict[str, Any], stamp: str) -> Change:
    """A change made by someone other than the owner: only to the job exactly as read (a renewed lease means its
    worker is alive after all; a cancel asked meanwhile changes the outcome)."""
    expect = _as_read(job, "status", "lease_owner", "lease_expires", "attempts", "cancel_requested")
    return Change({**sets, **_NO_LEASE, "updated_at": stamp}, expect)


# -- who works on a job ------------------------------------------------------------------------------

OwnerAlive = Callable[[str], bool | None]  # True / False when known (same host), None when only the lease can tell


def abandoned(job: JobRecord, now: float, owner_alive: OwnerAlive) -> bool:
    """Whether nobody works on a running job: its owner is known to be gone, or cannot be asked and let the
    lease expire. An owner that looks alive keeps its job (a laptop waking from sleep renews its lease)
    unless the lease is long stale, which covers a reused process id."""
    expires = job.lease_expires or 0.0
    if job.lease_owner is None or expires < now - STALE_LEASE_SECONDS:
        return True
    alive = owner_alive(job.lease_owner)
    return expires < now if alive is None else not alive


def _lease_only(owner: str) -> bool | None:
    return None


# -- a queue's delivery ------------------------------------------------------------------------------

Action = Literal["drop", "acknowledge", "wait", "settle", "dead_letter", "run"]


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a queue worker does with one delivery of a job's message.

    - drop / acknowledge: the message is done with (no such job / the job already finished);
    - wait: leave the message for a redelivery (`at_once`: without backoff), since another worker holds the job;
    - settle: write `event` (the job's worker died and it cannot be resumed), then acknowledge;
    - dead_letter: the last delivery: write `event` (fail the job with the reason), then let the message go to
      the dead-letter queue at once;
    - run: claim the job and run it (a job whose worker died is taken over by the claim).
    """

    action: Action
    why: str
    event: Event | None = None
    at_once: bool = False


def on_delivery(job: JobRecord | None, delivery: int, last_delivery: int, max_attempts: int, now: float) -> Delivery:
    """The decision for delivery number `delivery` (SQS's receive count) of a job's message, from the job as read
    (None: missing). Delivery `last_delivery` is the last the queue makes before dead-lettering the message."""
    if job is None:
        return Delivery("drop", "no such job (expired, never written, or not this user's): message dropped")
    if job.finished:
        return Delivery("acknowledge", f"job already {job.status}: duplicate delivery acknowledged")
    held = job.status == "running" and not abandoned(job, now, _lease_only)
    if delivery >= last_delivery:
        if held:
            return Delivery("wait", "still running in another worker at the last delivery", at_once=True)
        if job.error:
            last = job.error
        elif job.status == "running":
            last = interrupted_reason(job.attempts)
        else:
            last = "the job was interrupted before it could finish"
        reason = f"Gave up after {delivery} deliveries: {last}"
        return Delivery("dead_letter", "last delivery", GiveUp(reason), at_once=True)
    if held:
        return Delivery("wait", "the job is running in another worker")
    if job.status == "running" and (job.cancel_requested or job.attempts >= max_attempts):
        return Delivery("settle", "job left running by a stopped worker", Recover(max_attempts))
    return Delivery("run", "claim and run")
