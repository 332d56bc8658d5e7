"""How a synchronous image call runs, and when it continues as a background job instead of failing.

Clients give a tool call limited time (API Gateway cuts at 30 s; some desktop clients at 60 s), while a high
quality image can take minutes. Two policies share one shape, `run(...) -> ImageOutcome | Handoff`:

- `DirectCalls` runs the call in the request. With a `JobService`, a call the request's time budget refuses up front
  (`TooSlowError`, raised before anything is sent) is started as a durable job instead (the remote function, where
  work cannot outlive the response).
- `BudgetedCalls` runs every call as a durable job executed at once in this process and waits for it up to a budget:
  finished in time, the caller gets the images as usual; still running, the caller gets the job id and the work
  goes on, already recorded, cancellable and recoverable like any job (the local server).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import anyio

from gpt_image_mcp.core.budget import TooSlowError
from gpt_image_mcp.core.errors import UserFacingError
from gpt_image_mcp.core.jobs import JobRecord, JobService
from gpt_image_mcp.core.planning import ToolName
from gpt_image_mcp.core.requests import ImageToolArgs
from gpt_image_mcp.core.service import ImageOutcome, ImageService, Progress


@dataclass(frozen=True, slots=True)
class Handoff:
    """The call continues as `record`; `why` completes "continues as a background job: ..."."""

    record: JobRecord
    why: str


class CallPolicy(Protocol):
    async def run(
        self, user: str, tool: ToolName, args: ImageToolArgs, *, progress: Progress, safety_identifier: str | None
    ) -> ImageOutcome | Handoff: ...


class DirectCalls:
    def __init__(self, service: ImageService, jobs: JobService | None = None) -> None:
        self.service = service
        self.jobs = jobs

    async def run(
        self, user: str, tool: ToolName, args: ImageToolArgs, *, progress: Progress, safety_identifier: str | None
    ) -> ImageOutcome | Handoff:
        try:
            return await self.service.run(user, tool, args, progress=progress, safety_identifier=safety_identifier)
        except TooSlowError as too_slow:
            if self.jobs is None:
                raise
            return Handoff(await self.jobs.start(user, tool, args), too_slow.why)


class BudgetedCalls:
    """Each call is a job that `run_now(job_id)` starts executing at once, returning an event set when that
    execution ends; the caller waits at most `budget_seconds` for the job to finish."""

    def __init__(
        self,
        jobs: JobService,
        run_now: Callable[[str], Awaitable[anyio.Event]],
        *,
        budget_seconds: float,
        poll_seconds: float = 0.25,
    ) -> None:
        self.jobs = jobs
        self.run_now = run_now
        self.budget_seconds = budget_seconds
        self.poll_seconds = poll_seconds

    async def run(
        self, user: str, tool: ToolName, args: ImageToolArgs, *, progress: Progress, safety_identifier: str | None
    ) -> ImageOutcome | Handoff:
        record = await self.jobs.start(user, tool, args, enqueue=False)  # validated, then committed
        finished = await self.run_now(record.job_id)
        reported = -1.0
        with anyio.move_on_after(self.budget_seconds):
            while True:
                with anyio.move_on_after(self.poll_seconds):
                    await finished.wait()
                record = await self.jobs.status(user, record.job_id)  # another worker may have taken it
                if record.finished:
                    break
                if record.progress != reported:
                    reported = record.progress
                    await progress(record.progress, record.message)
        if not record.finished:
            return Handoff(record, f"it was still running after {self.budget_seconds:g} s (OPENAI_IMAGE_SYNC_BUDGET)")
        final, outcome = await self.jobs.result(user, record.job_id)
        if outcome is not None:
            await progress(1.0, "Done")
            return outcome
        raise UserFacingError(final.error or f"The call ended {final.status}: {final.message}")
