"""Durable background jobs: the store interface, and the use case every worker runs.

A slow image call must outlive a tool call's time limit and the process that started it. So the job row
is written before `start` returns, and every later change is a transition of `core.lifecycle`, written
conditionally by the store: a finished job never changes again, and a job has at most one live owner, who
holds a lease it renews. A worker that dies stops renewing; `recover` (or the queue's next delivery) hands its
job to the next worker or fails it with the reason.

Where the work runs is a `JobQueue`: locally an in-process worker pool, remotely a message queue whose
consumer calls `JobService.execute`. The store is synchronous like the other stores (SQLite, boto3); the
service calls it from worker threads.

Nothing is charged twice: a job's history record has an id derived from the job id (adding it again is a
no-op), and with an `UpstreamCache` the images OpenAI returned are kept until the job is settled, so a
re-run after a worker died mid-save re-uses them instead of paying for a second call.
"""

from __future__ import annotations

import builtins
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, NoReturn, Protocol

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
from gpt_image_mcp.core.events import Partial
from gpt_image_mcp.core.lifecycle import (
    Cancelled,
    Change,
    Claim,
    Complete,
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
    utc_iso,
)
from gpt_image_mcp.core.requests import ARGS_BY_TOOL, ImageToolArgs, ImageToolName, JobStatus
from gpt_image_mcp.core.results import ImageToolResult
from gpt_image_mcp.core.service import ImageOutcome, ImageService
from gpt_image_mcp.core.stages import Progress
from gpt_image_mcp.core.upstream import UpstreamResult

log = logging.getLogger(__name__)

DEFAULT_LEASE_SECONDS = 60.0
DELIVERED_OUTCOMES = 32  # outcomes kept for callers in this process that stopped waiting (past their budget)
DEFAULT_MAX_ATTEMPTS = 2  # each attempt may be billed upstream: one retry after a crash, then fail
RECOVERY_SCAN_LIMIT = 1000  # jobs looked at per status by one recovery sweep
_PERSIST_TRIES = 5  # a job moves on at most a few times while a user's change is written
_HISTORY_IDS = uuid.UUID("5d0c6f1e-8f5b-4a57-9a43-2f7c1e0b9d21")  # namespace of the history ids of jobs
_KEYED_JOBS = uuid.UUID("9b3e2c47-61d8-4f0a-b5c2-7e8d1a4f6c03")  # namespace of the ids of jobs started with a key


def job_history_id(job_id: str) -> str:
    """The history id a job's images are recorded under: fixed per job, so a re-run cannot add a second row."""
    return str(uuid.uuid5(_HISTORY_IDS, job_id))


def keyed_job_id(user: str, idempotency_key: str) -> str:
    """The id of the job `user` starts with `idempotency_key`. The key names the job itself, so the row is the only
    record of it: a start repeated after a crash, a lost answer or an interrupted batch finds that job, and there is
    no moment at which the job exists but the caller's mapping to it does not."""
    return str(uuid.uuid5(_KEYED_JOBS, f"{user}\n{idempotency_key}"))


class JobRef(NamedTuple):
    """A job as a queue carries it: the user (the store's key) and the job id."""

    user: str
    job_id: str


class JobPage(NamedTuple):
    records: list[JobRecord]
    total: int


class JobStore(Protocol):
    """Per-user job rows; every change is a `core.lifecycle` transition, written conditionally.

    A user's calls (`create`, `get`, `list`) take the user and never see another user's jobs. A worker knows the
    user of the job it works on (the queue message carries it; a recovery sweep reads it from `scan`), and names
    the job by both, as the user's calls do.
    """

    def create(self, record: JobRecord) -> None:
        """Insert a new pending job; it is durable when this returns."""
        ...

    def get(self, user: str, job_id: str) -> JobRecord | None:
        """The job, or None when it does not exist or belongs to another user."""
        ...

    def list(
        self,
        user: str,
        *,
        status: JobStatus | None = None,
        tool_name: str | None = None,
        background: bool | None = None,
        limit: int,
        offset: int,
    ) -> JobPage:
        """Newest first, with the total that matches the filters (`background`: only jobs with that flag)."""
        ...

    def write(self, job: JobRecord, change: Change) -> bool:
        """Write `change` (from `lifecycle.next_state(job, ...)`) to `job`'s row, atomically and only while the
        row still holds `change.expect`; whether it did."""
        ...

    def cancel_requested(self, user: str, job_id: str) -> bool:
        """Whether the owner should stop: a cancel was asked (or the job is already cancelled)."""
        ...

    def scan(self, status: JobStatus, limit: int) -> builtins.list[JobRecord]:
        """Jobs of every user in `status`, oldest first: what a recovery sweep looks at."""
        ...


def transition(store: JobStore, job: JobRecord, event: Event, now: float) -> JobRecord | None:
    """Apply `event` to `job` (as read) and write it conditionally: the job as it now is, or None when the event
    does not apply or the job changed since it was read."""
    change = next_state(job, event, now)
    if change is None or not store.write(job, change):
        return None
    return apply(job, change)


def persist(store: JobStore, job: JobRecord, event: Event, now: float) -> JobRecord:
    """Apply `event` to a job that may move on under it (pending -> running ...): read again and retried until it
    is written; the job as it now is (a finished job unchanged)."""
    for _ in range(_PERSIST_TRIES):
        changed = transition(store, job, event, now)
        if changed is not None:
            return changed
        again = store.get(job.user, job.job_id)
        if again is None:  # pragma: no cover - deleted meanwhile
            raise NotFoundError(f"No job with id '{job.job_id}'.")
        if again.finished:
            return again
        job = again
    raise UserFacingError(f"Job {job.job_id} kept changing while it was being updated; try again.")


def recover_abandoned(
    store: JobStore, is_abandoned: Callable[[JobRecord], bool], max_attempts: int, now: float
) -> builtins.list[JobRecord]:
    """`Recover` every running job that nobody works on (`is_abandoned`); the jobs it changed."""
    changed = []
    for job in store.scan("running", RECOVERY_SCAN_LIMIT):
        if is_abandoned(job) and (after := transition(store, job, Recover(max_attempts), now)) is not None:
            changed.append(after)
    return changed


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

    def keep_preview(self, user: str, job_id: str, data: bytes) -> str:
        """Keep the job's latest partial image (replacing the one before) and return a link to it."""
        ...

    def read_preview(self, user: str, job_id: str) -> bytes | None:
        """The job's latest partial image, or None when it has none (not yet, or no more: the job is settled)."""
        ...


def kept_answer(job_id: str) -> str:
    """How to finish a job whose paid answer is kept while its images cannot be saved."""
    return (
        f"The images OpenAI returned are kept (job {job_id}): once that is fixed, get_job_result with job_id "
        f"'{job_id}' saves them, with no new OpenAI call (the server also retries on its own)."
    )


Requeue = Callable[[Exception], bool]  # whether an attempt's error is temporary: the job waits for a redelivery


@dataclass(slots=True)
class _Run:
    """Shared between a job's work and its watcher."""

    held: JobRecord  # the job as this worker last wrote it
    first: bool  # no earlier attempt: no answer can have been kept
    progress: tuple[float, str] | None = None  # reported, not yet written: the watcher writes it at its next poll
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
        # Outcomes of jobs run in this process for a waiting caller (a synchronous call): its `result` takes them as
        # they are, instead of reading the files back and making their previews again.
        self._delivered: dict[str, ImageOutcome] = {}

    # -- every transition ---------------------------------------------------------------------------

    async def advance(self, job: JobRecord, event: Event) -> JobRecord | None:
        """`transition` at the service's clock, off the event loop."""
        return await anyio.to_thread.run_sync(lambda: transition(self.store, job, event, self.clock()))

    async def read(self, user: str, job_id: str) -> JobRecord | None:
        return await anyio.to_thread.run_sync(self.store.get, user, job_id)

    # -- what a user calls ------------------------------------------------------------------------

    async def start(
        self,
        user: str,
        tool_name: ImageToolName,
        args: ImageToolArgs,
        *,
        background: bool = True,
        idempotency_key: str | None = None,
        owner: str | None = None,
    ) -> JobRecord:
        """Validate fully first (bad input is refused now, nothing queued), then persist, then enqueue.

        With `owner` the job is created already claimed by it (one write, not two) and not queued: that caller runs
        it at once (`run_new`); should it die, recovery finds the job like any other. `background=False` records a
        synchronous call's job, which `list` leaves out unless asked (`hand_over` makes it a background job). With an
        `idempotency_key` the job id comes from the key: a start with a key used before returns that job as it
        stands and pays for nothing."""
        job_id = str(uuid.uuid4()) if idempotency_key is None else keyed_job_id(user, idempotency_key)
        if idempotency_key is not None:
            earlier = await self._keyed(job_id, idempotency_key, user, tool_name, args)
            if earlier is not None:
                return earlier
        await self.images.plan(user, tool_name, args)
        clock = self.clock()
        now = utc_iso(clock)
        record = JobRecord(
            job_id=job_id,
            user=user,
            tool_name=tool_name,
            arguments=args.model_dump(mode="json"),
            status="pending",
            created_at=now,
            updated_at=now,
            background=background,
        )
        if owner is not None:
            claim = next_state(record, Claim(owner, self.lease_seconds, self.max_attempts), clock)
            assert claim is not None  # a new job can always be claimed
            record = apply(record, claim)
        try:
            await anyio.to_thread.run_sync(self.store.create, record)
        except Exception:
            # A store refuses a second row with the same id: a start with the same key got there first.
            if idempotency_key is None:
                raise
            earlier = await self._keyed(job_id, idempotency_key, user, tool_name, args)
            if earlier is None:
                raise
            return earlier
        if owner is not None:
            return record
        try:
            await self.queue.submit(user, record.job_id)
        except Exception as error:
            await self._unqueued(record, error)
        return record

    async def _keyed(
        self, job_id: str, key: str, user: str, tool_name: ImageToolName, args: ImageToolArgs
    ) -> JobRecord | None:
        """The job an earlier start with `key` made, or None. A pending one is queued again (safe: a worker claims a
        job once), in case the process that started it died before queueing it."""
        earlier = await self.read(user, job_id)
        if earlier is None:
            return None
        if earlier.tool_name != tool_name or earlier.arguments != args.model_dump(mode="json"):
            raise InvalidArgumentError(
                f"idempotency_key '{key}' was already used for another request (job {job_id}, {earlier.tool_name} "
                f"{earlier.prompt[:40]!r}); give each different request its own key."
            )
        if earlier.status == "pending":
            await self.queue.submit(user, job_id)
        return earlier

    async def _unqueued(self, record: JobRecord, error: Exception) -> NoReturn:
        """The row is written but the queue refused the job: fail the row rather than leave it pending with
        nobody to run it. The write is conditional on the row still pending: if the send did get through and a
        worker already claimed the job, it runs normally."""
        log.error("job %s: could not be queued", record.job_id, exc_info=error)
        reason = (
            f"The job could not be queued for a worker ({type(error).__name__}); nothing was run or charged. "
            "Start it again."
        )
        try:
            await self.advance(record, GiveUp(reason))
        except Exception:
            log.exception("job %s: could not be marked failed either", record.job_id)
        raise UserFacingError(f"Job {record.job_id} was not started: {reason[0].lower()}{reason[1:]}") from error

    async def status(self, user: str, job_id: str) -> JobRecord:
        record = await self.read(user, job_id.strip())
        if record is None:
            raise NotFoundError(f"No job with id '{job_id}'. list_jobs shows the ids you have.")
        return record

    async def result(self, user: str, job_id: str) -> tuple[JobRecord, ImageOutcome | None]:
        """The job, and for a completed one the same outcome the image tool would have returned. A job waiting to
        save a kept answer (a save failed earlier) is given another try now: no new OpenAI call is made."""
        record = await self.status(user, job_id)
        if record.status == "pending" and record.error is not None and await self._has_kept_answer(user, job_id):
            await self.execute(record, f"result:{uuid.uuid4().hex[:12]}")
            record = await self.status(user, job_id)
        if record.status != "completed" or record.result is None:
            return record, None
        if (fresh := self._delivered.pop(record.job_id, None)) is not None:  # made in this process a moment ago
            return record, fresh
        result = ImageToolResult.model_validate(record.result)
        return record, await self.images.reopen(user, result, _tool_args(record))

    async def preview(self, user: str, job_id: str) -> bytes | None:
        """The latest partial image of the caller's job while it is being made; NotFoundError for a job that is
        not the caller's (whoever else's it may be), None when there is no preview now."""
        record = await self.status(user, job_id)
        if self.upstream_cache is None or record.finished:
            return None
        return await anyio.to_thread.run_sync(self.upstream_cache.read_preview, user, record.job_id)

    async def cancel(self, user: str, job_id: str) -> JobRecord:
        """Cancel now if pending; if running, ask its worker to stop and wait briefly to confirm it did."""
        before = await self.status(user, job_id)
        if before.finished:
            raise InvalidArgumentError(f"Job {before.job_id} already finished ({before.status}); nothing to cancel.")
        record = await anyio.to_thread.run_sync(lambda: persist(self.store, before, RequestCancel(), self.clock()))
        if record.finished and record.status != "cancelled":
            raise InvalidArgumentError(f"Job {record.job_id} finished ({record.status}) before it could be cancelled.")
        with anyio.move_on_after(self.cancel_wait_seconds):
            while not record.finished:
                await anyio.sleep(self.poll_seconds)
                record = await self.status(user, record.job_id)
        return record

    async def hand_over(self, job: JobRecord) -> JobRecord:
        """A synchronous call's job continues in the background; the job as it now is."""
        return await anyio.to_thread.run_sync(lambda: persist(self.store, job, HandOver(), self.clock()))

    async def list(
        self,
        user: str,
        *,
        status: JobStatus | None,
        tool_name: str | None,
        limit: int,
        offset: int,
        background: bool | None = True,
    ) -> JobPage:
        """The user's background jobs (`background=None`: the jobs of synchronous calls too)."""
        return await anyio.to_thread.run_sync(
            lambda: self.store.list(
                user, status=status, tool_name=tool_name, background=background, limit=limit, offset=offset
            )
        )

    # -- what a worker calls ----------------------------------------------------------------------

    async def recover(self, owner_alive: OwnerAlive) -> builtins.list[JobRef]:
        """Give back or fail the jobs of dead workers, then return every pending job (oldest first)."""

        def sweep() -> builtins.list[JobRef]:
            now = self.clock()
            for job in recover_abandoned(
                self.store, lambda job: abandoned(job, now, owner_alive), self.max_attempts, now
            ):
                log.warning("job %s was left running by a stopped worker: now %s", job.job_id, job.status)
            return [JobRef(job.user, job.job_id) for job in self.store.scan("pending", RECOVERY_SCAN_LIMIT)]

        return await anyio.to_thread.run_sync(sweep)

    async def execute(
        self, job: JobRecord, owner: str, *, requeue: Requeue | None = None, progress: Progress | None = None
    ) -> JobRecord | None:
        """Claim `job` (as just read) and run it to completed, failed or cancelled. Does nothing when the job is
        not there to take (another worker has it, it finished, it was cancelled): safe under redelivery.

        With `requeue` (a queue that redelivers), an error it calls temporary gives the job back as pending,
        with the reason, instead of failing it; the caller then has the message delivered again. `progress` hears
        each step as the job's status does (a synchronous call waiting for its job)."""
        claimed = await self.advance(job, Claim(owner, self.lease_seconds, self.max_attempts))
        if claimed is None:
            return None
        return await self._attempt(_Run(held=claimed, first=never_claimed(job)), owner, requeue, progress)

    async def run_new(self, job: JobRecord, owner: str, *, progress: Progress | None = None) -> JobRecord | None:
        """Run a job that `start(owner=owner)` created already claimed by `owner` (`progress` as for `execute`)."""
        return await self._attempt(_Run(held=job, first=True), owner, None, progress)

    async def _attempt(
        self, run: _Run, owner: str, requeue: Requeue | None, progress: Progress | None
    ) -> JobRecord | None:
        log.debug("job %s: attempt %d by %s", run.held.job_id, run.held.attempts, owner)
        try:
            await self._run(run, owner, progress)
        except BaseException:
            # Cancelled from outside (the server shuts down): hand the job back for the next start.
            with anyio.CancelScope(shield=True):
                await self.advance(run.held, Release(owner))
            raise
        return await self._settle(run, owner, requeue, deliver=progress is not None)

    async def _heartbeat(
        self, run: _Run, owner: str, progress: float | None = None, message: str | None = None
    ) -> bool:
        """Renew the lease (and report progress); False when `owner` no longer holds the job."""
        after = await self.advance(run.held, Heartbeat(owner, self.lease_seconds, progress, message))
        if after is not None:
            run.held = after
        return after is not None

    async def _run(self, run: _Run, owner: str, listener: Progress | None) -> None:
        """Run the image call while a watcher renews the lease and stops the call when a cancel is asked."""
        record = run.held
        store, user, job_id = self.store, record.user, record.job_id

        async def progress(fraction: float, message: str) -> None:
            run.progress = (fraction, message)  # written by the watcher: a quick stage costs no write
            if listener is not None:
                await listener(fraction, message)

        cache = self.upstream_cache

        async def preview(partial: Partial) -> str | None:
            """The latest partial image, where the job's status can link to it; a failure only loses the link."""
            if cache is None:
                return None
            try:
                return await anyio.to_thread.run_sync(cache.keep_preview, user, job_id, partial.data)
            except Exception:
                log.info("job %s: the partial image was not kept", job_id, exc_info=True)
                return None

        async def checkpoint() -> None:
            if run.stop is not None or await anyio.to_thread.run_sync(store.cancel_requested, user, job_id):
                raise CancelledJobError("The job was cancelled; its images were not saved.")
            run.saving = True

        async def keep(result: UpstreamResult) -> None:
            """Persist the paid-for images before saving; a failure here only loses the crash insurance."""
            if cache is None:
                return
            try:
                await anyio.to_thread.run_sync(cache.save, user, job_id, result)
            except Exception:
                log.warning("job %s: could not keep the upstream result", job_id, exc_info=True)
            else:
                run.kept = True

        async def work(scope: anyio.CancelScope) -> None:
            try:
                args = _tool_args(record)
                earlier = None
                if cache is not None and not run.first:
                    earlier = await anyio.to_thread.run_sync(cache.load, user, job_id)
                if earlier is not None:
                    log.info("job %s: re-using the images an earlier attempt received", job_id)
                    run.kept = True
                run.outcome = await self.images.run(
                    user,
                    _tool_of(record),
                    args,
                    progress=progress,
                    preview=preview,
                    before_save=checkpoint,
                    safety_identifier=self.safety_identifier(user),
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
            await self._watch(run, owner, group.cancel_scope)

    async def _watch(self, run: _Run, owner: str, scope: anyio.CancelScope) -> None:
        """Every poll: stop the work if a cancel was asked; write the progress reported since the last poll, and
        renew the lease a few times per lease period (one write does both)."""
        store, user, job_id, renew_every = self.store, run.held.user, run.held.job_id, self.lease_seconds / 3
        renewed, lost = self.clock(), False
        while True:
            await anyio.sleep(self.poll_seconds)
            reported, run.progress = run.progress, None
            if reported is not None or self.clock() - renewed >= renew_every:
                renewed = self.clock()
                lost = lost or not await self._heartbeat(run, owner, *(reported or (None, None)))
            cancel = not run.saving and await anyio.to_thread.run_sync(store.cancel_requested, user, job_id)
            if run.saving:
                continue  # past the last checkpoint: files and history are being written, let them finish
            if lost or cancel:
                run.stop = "lease_lost" if lost else "cancel"
                scope.cancel()  # aborts the upstream request: the task running it is cancelled
                return

    async def _settle(self, run: _Run, owner: str, requeue: Requeue | None, *, deliver: bool) -> JobRecord | None:
        """Write how the attempt ended, conditionally: a lost lease means another worker owns the job now. With
        `deliver` (a caller in this process waits for the job) a completed outcome is kept for its `result`."""
        held, error = run.held, run.error
        event: Event
        if run.outcome is not None:
            result = run.outcome.result
            event = Complete(owner, result.model_dump(mode="json"), result.history_id or "")
        elif run.stop == "lease_lost":
            log.warning("job %s: %s lost its lease; another worker has it", held.job_id, owner)
            return None
        elif run.stop == "cancel" or isinstance(error, CancelledJobError):
            event = Cancelled(owner)
        elif isinstance(error, StorageError) and run.kept:  # the images wait, paid for, until they can be saved
            log.warning("job %s: saving failed, the answer is kept: %s", held.job_id, error.message)
            event = Release(owner, f"{error.message} {kept_answer(held.job_id)}")
        elif error is not None and requeue is not None and requeue(error):
            temporary = f"a temporary error ({type(error).__name__})"
            reason = error.message if isinstance(error, UserFacingError) else temporary
            log.warning("job %s: temporary failure, to be retried: %s", held.job_id, reason)
            event = Release(owner, reason)
        elif isinstance(error, UserFacingError):
            event = Fail(owner, error.message)
        elif isinstance(error, ValidationError):
            event = Fail(owner, f"the stored arguments are no longer valid: {error}")
        else:
            log.error("job %s failed unexpectedly", held.job_id, exc_info=error)
            event = Fail(owner, f"internal error ({type(error).__name__}); the server log has the details")
        settled = await self.advance(held, event)
        if settled is None:
            log.warning("job %s: %s no longer held it when the attempt ended", held.job_id, owner)
            return await self.read(held.user, held.job_id)
        if settled.finished and self.upstream_cache is not None:
            await anyio.to_thread.run_sync(self._discard, held.user, held.job_id)
        if deliver and run.outcome is not None and settled.status == "completed":
            self._delivered[held.job_id] = run.outcome
            while len(self._delivered) > DELIVERED_OUTCOMES:  # a waiter that went away: its oldest outcome goes
                self._delivered.pop(next(iter(self._delivered)))
        return settled

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
