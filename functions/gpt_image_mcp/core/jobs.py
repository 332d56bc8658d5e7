"""Durable background jobs: the records, the store interface, and the use case every worker runs.

A slow image call must outlive a tool call's time limit and the process that started it. So the job row
is written before `start` returns, and every later change is a conditional transition in the store: a
finished job never changes again, and a job has at most one live owner, who holds a lease it renews.
A worker that dies stops renewing; `recover` hands its job to the next worker or fails it with the reason.

Where the work runs is a `JobQueue`: locally an in-process worker pool, remotely a message queue whose
consumer calls `JobService.execute`. The store is synchronous like the other stores (SQLite, boto3); the
service calls it from worker threads.

Nothing is charged twice: a job's history record has an id derived from the job id (adding it again is a
no-op), and with an `UpstreamCache` the images OpenAI returned are kept until the job is settled, so a
re-run after a worker died mid-save re-uses them instead of paying for a second call.
"""

from __future__ import annotations

import builtins
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple, NoReturn, Protocol, get_args

import anyio
import anyio.to_thread
from pydantic import ValidationError

from gpt_image_mcp.core.errors import (
    CancelledJobError,
    InvalidArgumentError,
    NotFoundError,
    StorageError,
    UserFacingError,
)
from gpt_image_mcp.core.requests import ARGS_BY_TOOL, ImageToolArgs, ImageToolName, JobStatus
from gpt_image_mcp.core.results import ImageToolResult
from gpt_image_mcp.core.service import ImageOutcome, ImageService
from gpt_image_mcp.core.upstream import UpstreamResult

log = logging.getLogger(__name__)

JOB_STATUSES: tuple[JobStatus, ...] = get_args(JobStatus)
TERMINAL: frozenset[JobStatus] = frozenset({"completed", "failed", "cancelled"})
DEFAULT_LEASE_SECONDS = 60.0
DEFAULT_MAX_ATTEMPTS = 2  # each attempt may be billed upstream: one retry after a crash, then fail
STALE_LEASE_SECONDS = 900.0  # an expired lease this old is taken over even if its owner still looks alive
WAITING = "Waiting for a worker"
_HISTORY_IDS = uuid.UUID("5d0c6f1e-8f5b-4a57-9a43-2f7c1e0b9d21")  # namespace of the history ids of jobs


def utc_iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds")


def job_history_id(job_id: str) -> str:
    """The history id a job's images are recorded under: fixed per job, so a re-run cannot add a second row."""
    return str(uuid.uuid5(_HISTORY_IDS, job_id))


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


class JobPage(NamedTuple):
    records: list[JobRecord]
    total: int


class JobStore(Protocol):
    """Per-user job rows with atomic, conditional transitions.

    Calls a user makes take `user` and never see another user's jobs. Worker calls (`claim` and what
    follows) take the job id and the worker's `owner` id, and change a job only while that owner holds it.
    """

    def create(self, record: JobRecord) -> None:
        """Insert a new pending job; it is durable when this returns."""
        ...

    def get(self, user: str, job_id: str) -> JobRecord | None:
        """The job, or None when it does not exist or belongs to another user."""
        ...

    def list(
        self, user: str, *, status: JobStatus | None = None, tool_name: str | None = None, limit: int, offset: int
    ) -> JobPage:
        """Newest first, with the total that matches the filters."""
        ...

    def claim(self, job_id: str, owner: str, lease_seconds: float, max_attempts: int) -> JobRecord | None:
        """pending -> running for `owner` (or take over a running job whose lease expired, while attempts are
        left and no cancel was asked), counting an attempt. None when the job is not there to take."""
        ...

    def heartbeat(
        self,
        job_id: str,
        owner: str,
        lease_seconds: float,
        *,
        progress: float | None = None,
        message: str | None = None,
    ) -> bool:
        """Extend the lease (and record progress); False when `owner` no longer holds the job."""
        ...

    def complete(self, job_id: str, owner: str, result: dict[str, Any], history_id: str) -> bool:
        """running -> completed, only for the owner."""
        ...

    def fail(self, job_id: str, owner: str, error: str) -> bool:
        """running -> failed with a user-facing reason, only for the owner."""
        ...

    def mark_cancelled(self, job_id: str, owner: str) -> bool:
        """running -> cancelled after the owner stopped the work, only for the owner."""
        ...

    def release(self, job_id: str, owner: str, reason: str | None = None) -> bool:
        """running -> pending when the owner shuts down cleanly; the interrupted attempt is not counted.
        With a `reason` (a temporary error, to be retried later) the job keeps it in `error` and `message`
        until the next claim."""
        ...

    def request_cancel(self, user: str, job_id: str) -> JobRecord | None:
        """pending -> cancelled at once; running -> cancel_requested (the owner stops it); finished: unchanged.
        Returns the job as it now is, or None when the user has no such job."""
        ...

    def is_cancel_requested(self, job_id: str) -> bool:
        """Whether the owner should stop: a cancel was asked (or the job is already cancelled)."""
        ...

    def recover(self, abandoned: Callable[[JobRecord], bool], max_attempts: int) -> builtins.list[JobRecord]:
        """For running jobs that `abandoned` says nobody works on: cancelled if a cancel was asked, else
        pending again while attempts < max_attempts, else failed with the reason. Returns the changed jobs."""
        ...

    def pending(self, limit: int) -> builtins.list[str]:
        """Ids of pending jobs of every user, oldest first: work a worker pool can pick up."""
        ...


class JobQueue(Protocol):
    """Where a new job is handed for execution (in-process pool, SQS, ...). At-least-once is enough:
    `execute` claims the job atomically, so a duplicate delivery does nothing. The user goes along because
    a store keyed by user (DynamoDB) finds the job by both."""

    async def submit(self, user: str, job_id: str) -> None: ...


class UpstreamCache(Protocol):
    """The images OpenAI returned for a job, kept from right after the call until the job is settled.

    A worker that dies while saving leaves them behind; the re-run loads them instead of calling (and paying)
    again. Keyed by user and job id, like the job.
    """

    def load(self, user: str, job_id: str) -> UpstreamResult | None: ...

    def save(self, user: str, job_id: str, result: UpstreamResult) -> None: ...

    def discard(self, user: str, job_id: str) -> None: ...


Requeue = Callable[[Exception], bool]  # whether an attempt's error is temporary: the job waits for a redelivery


OwnerAlive = Callable[[str], bool | None]  # True / False when known (same host), None when only the lease can tell


def abandoned(record: JobRecord, now: float, owner_alive: OwnerAlive) -> bool:
    """Whether nobody works on a running job: its owner is known to be gone, or cannot be asked and let the
    lease expire. An owner that looks alive keeps its job (a laptop waking from sleep renews its lease)
    unless the lease is long stale, which covers a reused process id."""
    expires = record.lease_expires or 0.0
    if record.lease_owner is None or expires < now - STALE_LEASE_SECONDS:
        return True
    alive = owner_alive(record.lease_owner)
    return expires < now if alive is None else not alive


def kept_answer(job_id: str) -> str:
    """How to finish a job whose paid answer is kept while its images cannot be saved."""
    return (
        f"The images OpenAI returned are kept (job {job_id}): once that is fixed, get_job_result with job_id "
        f"'{job_id}' saves them, with no new OpenAI call (the server also retries on its own)."
    )


def interrupted_reason(attempts: int) -> str:
    return f"the server stopped while the job was running ({attempts} attempt{'s' if attempts != 1 else ''})"


@dataclass(slots=True)
class _Run:
    """Shared between a job's work and its watcher."""

    stop: str | None = None  # "cancel" or "lease_lost": why the watcher ended the work
    saving: bool = False  # past the last checkpoint: files and history are being written, do not interrupt
    kept: bool = False  # the paid answer is in the upstream cache: a failed save can be retried without paying
    outcome: ImageOutcome | None = None
    error: Exception | None = None


class JobService:
    """Start, inspect, cancel and execute jobs; the same code behind the local pool and a remote worker."""

    def __init__(
        self,
        images: ImageService,
        store: JobStore,
        queue: JobQueue,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        poll_seconds: float = 0.2,
        cancel_wait_seconds: float = 2.0,
        safety_identifier: Callable[[str], str | None] = lambda user: None,
        clock: Callable[[], float] = time.time,
        upstream_cache: UpstreamCache | None = None,
    ) -> None:
        self.images = images
        self.store = store
        self.queue = queue
        self.upstream_cache = upstream_cache
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.poll_seconds = poll_seconds
        self.cancel_wait_seconds = cancel_wait_seconds
        self.safety_identifier = safety_identifier
        self.clock = clock

    # -- what a user calls ------------------------------------------------------------------------

    async def start(
        self, user: str, tool_name: ImageToolName, args: ImageToolArgs, *, enqueue: bool = True
    ) -> JobRecord:
        """Validate fully first (bad input is refused now, nothing queued), then persist, then enqueue.

        `enqueue=False` leaves the pending row to a caller that runs it at once (`execute`); should that caller
        die, recovery finds the row like any other pending job."""
        await self.images.plan(user, tool_name, args)
        now = utc_iso(self.clock())
        record = JobRecord(
            job_id=str(uuid.uuid4()),
            user=user,
            tool_name=tool_name,
            arguments=args.model_dump(mode="json"),
            status="pending",
            created_at=now,
            updated_at=now,
        )
        await anyio.to_thread.run_sync(self.store.create, record)
        if not enqueue:
            return record
        try:
            await self.queue.submit(user, record.job_id)
        except Exception as error:
            await self._unqueued(record, error)
        return record

    async def _unqueued(self, record: JobRecord, error: Exception) -> NoReturn:
        """The row is written but the queue refused the job: fail the row rather than leave it pending with
        nobody to run it. Claim-then-fail is atomic against a worker: if the send did get through and a worker
        already claimed the job, the claim here fails and the job runs normally."""
        log.error("job %s: could not be queued", record.job_id, exc_info=error)
        reason = (
            f"The job could not be queued for a worker ({type(error).__name__}); nothing was run or charged. "
            "Start it again."
        )
        owner = f"enqueue:{record.job_id}"

        def fail_row() -> None:
            if self.store.claim(record.job_id, owner, self.lease_seconds, self.max_attempts) is not None:
                self.store.fail(record.job_id, owner, reason)

        try:
            await anyio.to_thread.run_sync(fail_row)
        except Exception:
            log.exception("job %s: could not be marked failed either", record.job_id)
        raise UserFacingError(f"Job {record.job_id} was not started: {reason[0].lower()}{reason[1:]}") from error

    async def status(self, user: str, job_id: str) -> JobRecord:
        record = await anyio.to_thread.run_sync(self.store.get, user, job_id.strip())
        if record is None:
            raise NotFoundError(f"No job with id '{job_id}'. list_jobs shows the ids you have.")
        return record

    async def result(self, user: str, job_id: str) -> tuple[JobRecord, ImageOutcome | None]:
        """The job, and for a completed one the same outcome the image tool would have returned. A job waiting to
        save a kept answer (a save failed earlier) is given another try now: no new OpenAI call is made."""
        record = await self.status(user, job_id)
        if record.status == "pending" and record.error is not None and await self._has_kept_answer(user, job_id):
            await self.execute(job_id, f"result:{uuid.uuid4().hex[:12]}")
            record = await self.status(user, job_id)
        if record.status != "completed" or record.result is None:
            return record, None
        result = ImageToolResult.model_validate(record.result)
        return record, await self.images.reopen(user, result, _tool_args(record))

    async def cancel(self, user: str, job_id: str) -> JobRecord:
        """Cancel now if pending; if running, ask its worker to stop and wait briefly to confirm it did."""
        before = await self.status(user, job_id)
        if before.finished:
            raise InvalidArgumentError(f"Job {before.job_id} already finished ({before.status}); nothing to cancel.")
        record = await anyio.to_thread.run_sync(self.store.request_cancel, user, before.job_id)
        if record is None:  # pragma: no cover - deleted between the two calls
            raise NotFoundError(f"No job with id '{job_id}'.")
        if record.finished and record.status != "cancelled":
            raise InvalidArgumentError(f"Job {record.job_id} finished ({record.status}) before it could be cancelled.")
        with anyio.move_on_after(self.cancel_wait_seconds):
            while not record.finished:
                await anyio.sleep(self.poll_seconds)
                record = await self.status(user, record.job_id)
        return record

    async def list(
        self, user: str, *, status: JobStatus | None, tool_name: str | None, limit: int, offset: int
    ) -> JobPage:
        return await anyio.to_thread.run_sync(
            lambda: self.store.list(user, status=status, tool_name=tool_name, limit=limit, offset=offset)
        )

    # -- what a worker calls ----------------------------------------------------------------------

    async def recover(self, owner_alive: OwnerAlive) -> builtins.list[str]:
        """Give back or fail the jobs of dead workers, then return every pending job id (oldest first)."""

        def sweep() -> builtins.list[str]:
            now = self.clock()
            for record in self.store.recover(lambda r: abandoned(r, now, owner_alive), self.max_attempts):
                log.warning("job %s was left running by a stopped worker: now %s", record.job_id, record.status)
            return self.store.pending(1000)

        return await anyio.to_thread.run_sync(sweep)

    async def execute(self, job_id: str, owner: str, *, requeue: Requeue | None = None) -> JobRecord | None:
        """Claim the job and run it to completed, failed or cancelled. Does nothing when the job is not
        there to take (another worker has it, it finished, it was cancelled): safe under redelivery.

        With `requeue` (a queue that redelivers), an error it calls temporary gives the job back as pending,
        with the reason, instead of failing it; the caller then has the message delivered again."""
        claimed = await anyio.to_thread.run_sync(self.store.claim, job_id, owner, self.lease_seconds, self.max_attempts)
        if claimed is None:
            return None
        log.debug("job %s: attempt %d by %s", job_id, claimed.attempts, owner)
        try:
            run = await self._run(claimed, owner)
        except BaseException:
            # Cancelled from outside (the server shuts down): hand the job back for the next start.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.store.release, job_id, owner)
            raise
        return await self._settle(claimed, owner, run, requeue)

    async def _run(self, record: JobRecord, owner: str) -> _Run:
        """Run the image call while a watcher renews the lease and stops the call when a cancel is asked."""
        run = _Run()
        store, job_id = self.store, record.job_id

        async def progress(fraction: float, message: str) -> None:
            await anyio.to_thread.run_sync(
                lambda: store.heartbeat(job_id, owner, self.lease_seconds, progress=fraction, message=message)
            )

        async def checkpoint() -> None:
            if run.stop is not None or await anyio.to_thread.run_sync(store.is_cancel_requested, job_id):
                raise CancelledJobError("The job was cancelled; its images were not saved.")
            run.saving = True

        cache = self.upstream_cache

        async def keep(result: UpstreamResult) -> None:
            """Persist the paid-for images before saving; a failure here only loses the crash insurance."""
            if cache is None:
                return
            try:
                await anyio.to_thread.run_sync(cache.save, record.user, job_id, result)
            except Exception:
                log.warning("job %s: could not keep the upstream result", job_id, exc_info=True)
            else:
                run.kept = True

        async def work(scope: anyio.CancelScope) -> None:
            try:
                args = _tool_args(record)
                earlier = None if cache is None else await anyio.to_thread.run_sync(cache.load, record.user, job_id)
                if earlier is not None:
                    log.info("job %s: re-using the images an earlier attempt received", job_id)
                    run.kept = True
                run.outcome = await self.images.run(
                    record.user,
                    _tool_of(record),
                    args,
                    progress=progress,
                    before_save=checkpoint,
                    safety_identifier=self.safety_identifier(record.user),
                    history_id=job_history_id(job_id),
                    upstream=earlier,
                    after_upstream=keep if cache is not None else None,
                )
            except Exception as error:
                run.error = error
            finally:
                scope.cancel()  # the work is over: stop the watcher

        async with anyio.create_task_group() as group:
            group.start_soon(work, group.cancel_scope)
            await self._watch(job_id, owner, run, group.cancel_scope)
        return run

    async def _watch(self, job_id: str, owner: str, run: _Run, scope: anyio.CancelScope) -> None:
        """Every poll: stop the work if a cancel was asked; renew the lease a few times per lease period."""
        store, renew_every = self.store, self.lease_seconds / 3
        renewed, lost = self.clock(), False
        while True:
            await anyio.sleep(self.poll_seconds)
            if self.clock() - renewed >= renew_every:
                renewed = self.clock()
                held = await anyio.to_thread.run_sync(lambda: store.heartbeat(job_id, owner, self.lease_seconds))
                lost = lost or not held
            cancel = not run.saving and await anyio.to_thread.run_sync(store.is_cancel_requested, job_id)
            if run.saving:
                continue  # past the last checkpoint: files and history are being written, let them finish
            if lost or cancel:
                run.stop = "lease_lost" if lost else "cancel"
                scope.cancel()  # aborts the upstream request: the task running it is cancelled
                return

    async def _settle(self, record: JobRecord, owner: str, run: _Run, requeue: Requeue | None) -> JobRecord | None:
        """Write how the attempt ended, conditionally: a lost lease means another worker owns the job now."""
        job_id, store, error = record.job_id, self.store, run.error
        final = True
        if run.outcome is not None:
            result = run.outcome.result
            done = await anyio.to_thread.run_sync(
                store.complete, job_id, owner, result.model_dump(mode="json"), result.history_id or ""
            )
        elif run.stop == "lease_lost":
            log.warning("job %s: %s lost its lease; another worker has it", job_id, owner)
            return None
        elif run.stop == "cancel" or isinstance(error, CancelledJobError):
            done = await anyio.to_thread.run_sync(store.mark_cancelled, job_id, owner)
        elif isinstance(error, StorageError) and run.kept:  # the images wait, paid for, until they can be saved
            reason = f"{error.message} {kept_answer(job_id)}"
            log.warning("job %s: saving failed, the answer is kept: %s", job_id, error.message)
            done = await anyio.to_thread.run_sync(store.release, job_id, owner, reason)
            final = False
        elif error is not None and requeue is not None and requeue(error):
            temporary = f"a temporary error ({type(error).__name__})"
            reason = error.message if isinstance(error, UserFacingError) else temporary
            log.warning("job %s: temporary failure, to be retried: %s", job_id, reason)
            done = await anyio.to_thread.run_sync(store.release, job_id, owner, reason)
            final = False
        elif isinstance(error, UserFacingError):
            done = await anyio.to_thread.run_sync(store.fail, job_id, owner, error.message)
        elif isinstance(error, ValidationError):
            reason = f"the stored arguments are no longer valid: {error}"
            done = await anyio.to_thread.run_sync(store.fail, job_id, owner, reason)
        else:
            log.error("job %s failed unexpectedly", job_id, exc_info=error)
            reason = f"internal error ({type(error).__name__}); the server log has the details"
            done = await anyio.to_thread.run_sync(store.fail, job_id, owner, reason)
        if not done:
            log.warning("job %s: %s no longer held it when the attempt ended", job_id, owner)
        elif final and self.upstream_cache is not None:
            await anyio.to_thread.run_sync(self._discard, record.user, job_id)
        return await anyio.to_thread.run_sync(store.get, record.user, job_id)

    async def _has_kept_answer(self, user: str, job_id: str) -> bool:
        cache = self.upstream_cache
        return cache is not None and await anyio.to_thread.run_sync(cache.load, user, job_id) is not None

    def _discard(self, user: str, job_id: str) -> None:
        """Drop a settled job's kept upstream result; storage hygiene only, so errors are just logged."""
        assert self.upstream_cache is not None
        try:
            self.upstream_cache.discard(user, job_id)
        except Exception:
            log.info("job %s: the kept upstream result was not removed", job_id, exc_info=True)


def _tool_of(record: JobRecord) -> ImageToolName:
    if record.tool_name not in ARGS_BY_TOOL:
        raise InvalidArgumentError(f"Job {record.job_id} names an unknown tool '{record.tool_name}'.")
    return record.tool_name


def _tool_args(record: JobRecord) -> ImageToolArgs:
    return ARGS_BY_TOOL[_tool_of(record)].model_validate(record.arguments)
