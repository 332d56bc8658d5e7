"""How a synchronous image call runs, and when it continues as a background job instead of failing.

Clients give a tool call limited time (API Gateway cuts at 30 s; some desktop clients at 60 s), while a high
quality image can take minutes. `BudgetedCalls` runs every call as a durable job and waits for it up to a budget:
finished in time, the caller gets the images as usual (the job stays a record of the call, which `list_jobs` shows
only when asked); still running, the caller gets the job id and the work goes on as a background job, already
recorded, cancellable and recoverable like any job. Locally the job runs in this process; remotely on the SQS
worker. `CallPolicy` is the shape a tool handler relies on: `run(...) -> ImageOutcome | Handoff`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import anyio

from gpt_image_mcp.core.errors import UserFacingError
from gpt_image_mcp.core.jobs import JobService
from gpt_image_mcp.core.lifecycle import JobRecord
from gpt_image_mcp.core.planning import ToolName
from gpt_image_mcp.core.requests import ImageToolArgs
from gpt_image_mcp.core.service import ImageOutcome
from gpt_image_mcp.core.stages import Progress

FIRST_POLL_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class Handoff:
    """The call continues as `record`; `why` completes "continues as a background job: ..."."""

    record: JobRecord
    why: str


class CallPolicy(Protocol):
    async def run(
        self, user: str, tool: ToolName, args: ImageToolArgs, *, progress: Progress, safety_identifier: str | None
    ) -> ImageOutcome | Handoff: ...


class Runner(Protocol):
    """A worker in this process that runs a new job at once (the local job runner)."""

    owner: str

    async def run_now(self, jobs: JobService, job: JobRecord, progress: Progress | None = None) -> anyio.Event:
        """Run `job`, created claimed by `owner`, telling `progress` each step; the event is set when that run
        ends."""
        ...


class BudgetedCalls:
    """Each call is a durable job; the caller waits for it at most `budget()` seconds.

    With a `runner`, the job is created claimed by it (one write) and run at once in this process; the call hears
    every step as it happens. Without one, the job is queued as usual and a worker elsewhere runs it (the remote
    function: work cannot outlive a Lambda response, so the SQS worker does it and this call only watches the row,
    reporting the progress it finds there).
    """

    def __init__(
        self,
        jobs: JobService,
        runner: Runner | None,
        *,
        budget: Callable[[], float],
        limit: str,
        poll_seconds: float = 0.25,
    ) -> None:
        self.jobs = jobs
        self.runner = runner
        self.budget = budget
        self.limit = limit  # what the budget is, in words: "OPENAI_IMAGE_SYNC_BUDGET", "API Gateway's 30 s"
        self.poll_seconds = poll_seconds

    async def run(
        self, user: str, tool: ToolName, args: ImageToolArgs, *, progress: Progress, safety_identifier: str | None
    ) -> ImageOutcome | Handoff:
        budget = self.budget()
        if self.runner is None:
            # validated, committed, then queued for a worker
            record = await self.jobs.start(user, tool, args, background=False)
            finished = anyio.Event()  # never set here: the row tells when the worker is done
        else:
            record = await self.jobs.start(user, tool, args, background=False, owner=self.runner.owner)
            finished = await self.runner.run_now(self.jobs, record, progress)
        reported, wait = -1.0, FIRST_POLL_SECONDS
        with anyio.move_on_after(budget):
            while True:
                with anyio.move_on_after(wait):
                    await finished.wait()
                wait = min(wait * 1.5, self.poll_seconds)  # quick jobs answer quickly; long ones cost few reads
                ended = finished.is_set()
                record = await self.jobs.status(user, record.job_id)  # another worker may have taken it
                if record.finished:
                    break
                if ended and record.error:  # the attempt ended and gave the job back: its answer waits to be saved
                    raise UserFacingError(record.error)
                if self.runner is None and record.progress > reported:  # a runner here reports every step itself
                    reported = record.progress
                    await progress(record.progress, record.message)
        if not record.finished:
            record = await self.jobs.hand_over(record)  # one of the user's background jobs from now on
        if not record.finished:
            return Handoff(record, f"it was still running after {budget:.0f} s ({self.limit})")
        final, outcome = await self.jobs.result(user, record.job_id)
        if outcome is not None:
            await progress(1.0, "Done")
            return outcome
        raise UserFacingError(final.error or f"The call ended {final.status}: {final.message}")
