"""Run a batch: every request to a finished job, a few at a time, resumable, stoppable with Ctrl-C.

Each request's job is started under a key made from the request's identity (`BatchRequest.key`), and the job store
derives the job id from that key (`JobService.start`). So the store itself remembers what was started, and no crash
can leave a started, perhaps paid, job that the next run does not find. A run meets the jobs of earlier runs as they
stand: completed ones are skipped with no upstream call, running or pending ones are waited for, and failed or
cancelled ones are retried under the request's next key (each try keeps its own job and its reason).

`stop()` (the first Ctrl-C) starts nothing more and lets the requests in flight finish. Cancelling the run (the
second Ctrl-C) stops at once: locally the jobs in flight go back to the store as pending and the next run completes
them; remotely they go on on the server and the next run collects them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

import anyio

from gpt_image_mcp.core.errors import UserFacingError
from gpt_image_mcp.core.results import ImageToolResult, JobInfo
from local_sandbox.batch.batchfile import BatchRequest
from local_sandbox.batch.estimate import Estimate

log = logging.getLogger(__name__)

State = Literal["waiting", "in flight", "done", "done earlier", "failed", "cancelled", "interrupted"]
FINISHED_JOB = ("completed", "failed", "cancelled")


class Backend(Protocol):
    """Where the jobs run: the local job store and pool, or a remote deployment's job tools."""

    poll_seconds: float

    async def start(self, request: BatchRequest, key: str) -> JobInfo:
        """Start the request's job under `key`, or find the one an earlier start with `key` made."""
        ...

    async def status(self, job_id: str) -> JobInfo: ...

    async def result(self, job_id: str) -> ImageToolResult:
        """A completed job's images, files and cost."""
        ...


@dataclass(slots=True)
class Outcome:
    """Where one request stands, from waiting to its end."""

    request: BatchRequest
    estimate: Estimate
    state: State = "waiting"
    job_id: str | None = None
    result: ImageToolResult | None = None
    error: str | None = None

    @property
    def label(self) -> str:
        """The state as shown: a request that never started reads 'not started'."""
        return "not started" if self.state == "waiting" else self.state

    @property
    def cost(self) -> float | None:
        return self.result.cost.total if self.result is not None and self.result.cost is not None else None


@dataclass(frozen=True, slots=True)
class Tally:
    total: int
    done: int  # in this run
    earlier: int  # done by an earlier run
    failed: int  # failed or cancelled
    in_flight: int
    spent: float  # the cost of what this run did

    @classmethod
    def of(cls, outcomes: list[Outcome]) -> Tally:
        def count(*states: State) -> int:
            return sum(outcome.state in states for outcome in outcomes)

        spent = sum(outcome.cost or 0.0 for outcome in outcomes if outcome.state == "done")
        return cls(
            total=len(outcomes),
            done=count("done"),
            earlier=count("done earlier"),
            failed=count("failed", "cancelled"),
            in_flight=count("in flight"),
            spent=spent,
        )

    @property
    def settled(self) -> int:
        return self.done + self.earlier + self.failed

    def line(self) -> str:
        """'7/12 done (2 earlier), 1 failed, $0.37 so far'."""
        earlier = f" ({self.earlier} earlier)" if self.earlier else ""
        return f"{self.done + self.earlier}/{self.total} done{earlier}, {self.failed} failed, ${self.spent:.2f} so far"


class Display(Protocol):
    def update(self, tally: Tally) -> None: ...

    def note(self, text: str) -> None: ...


class BatchRun:
    """Settles `outcomes` with at most `concurrency` jobs in flight."""

    def __init__(self, outcomes: list[Outcome], backend: Backend, display: Display, *, concurrency: int) -> None:
        self.outcomes = outcomes
        self.backend = backend
        self.display = display
        self.concurrency = concurrency
        self.stopping = False

    def stop(self) -> None:
        """Start nothing more; what is in flight finishes."""
        self.stopping = True

    @property
    def tally(self) -> Tally:
        return Tally.of(self.outcomes)

    async def run(self) -> None:
        waiting = iter(self.outcomes)
        self.display.update(self.tally)
        async with anyio.create_task_group() as group:
            for _ in range(min(self.concurrency, len(self.outcomes))):
                group.start_soon(self._work, waiting)

    async def _work(self, waiting: Iterator[Outcome]) -> None:
        for outcome in waiting:  # the workers share one iterator: each request is taken once
            if self.stopping:
                return
            try:
                await self._settle(outcome)
            except anyio.get_cancelled_exc_class():
                outcome.state = "interrupted"
                raise
            except UserFacingError as error:
                self._failed(outcome, error.message)
            except Exception as error:  # one request's surprise (a dropped connection) must not end the others
                log.debug("%s: unexpected error", outcome.request.where, exc_info=True)
                self._failed(outcome, f"{type(error).__name__}: {error}")
            self.display.update(self.tally)

    async def _settle(self, outcome: Outcome) -> None:
        request, attempt = outcome.request, 0
        outcome.state = "in flight"
        self.display.update(self.tally)
        job = await self.backend.start(request, request.key(attempt))
        while job.status in ("failed", "cancelled"):  # an earlier run's try, finished before this start
            attempt += 1
            job = await self.backend.start(request, request.key(attempt))
        outcome.job_id = job.job_id
        earlier = job.status == "completed"
        while job.status not in FINISHED_JOB:
            await anyio.sleep(self.backend.poll_seconds)
            job = await self.backend.status(job.job_id)
        if job.status == "completed":
            outcome.result = await self.backend.result(job.job_id)
            outcome.state = "done earlier" if earlier else "done"
        elif job.status == "cancelled":
            outcome.state, outcome.error = "cancelled", job.message
            self.display.note(f"{request.where} was cancelled: {job.message}")
        else:
            self._failed(outcome, job.error or job.message)

    def _failed(self, outcome: Outcome, reason: str) -> None:
        outcome.state, outcome.error = "failed", reason
        self.display.note(f"{outcome.request.where} failed: {reason}")
