"""The local backend: the batch's jobs in the local server's SQLite job store, run by its in-process pool.

Built with the local server's own composition (`local_server.build_parts` and `serving`), so a batch job is the same
durable job a `start_generation_job` call makes: `list_jobs` shows it, and a job a stopped batch left pending is run
by whichever local process opens the database next.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from gpt_image_mcp.core.results import ImageToolResult, JobInfo
from gpt_image_mcp.server.replies import job_info
from local_sandbox.batch.batchfile import BatchRequest
from local_sandbox.local_server import LOCAL_USER, LocalParts, serving


class LocalBackend:
    def __init__(self, parts: LocalParts, *, user: str = LOCAL_USER) -> None:
        self.parts = parts
        self.user = user
        self.poll_seconds = parts.jobs.poll_seconds

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[LocalBackend]:
        """The job pool runs for the block; cancelled, it gives the jobs in flight back to the store."""
        async with serving(self.parts):
            yield self

    async def start(self, request: BatchRequest, key: str) -> JobInfo:
        record = await self.parts.jobs.start(self.user, request.tool, request.args, idempotency_key=key)
        return job_info(record)

    async def status(self, job_id: str) -> JobInfo:
        return job_info(await self.parts.jobs.status(self.user, job_id))

    async def result(self, job_id: str) -> ImageToolResult:
        record = await self.parts.jobs.status(self.user, job_id)
        return ImageToolResult.model_validate(record.result)
