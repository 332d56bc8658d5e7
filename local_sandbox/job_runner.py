"""The local `JobQueue`: a bounded pool of workers in the server's own event loop.

The pool runs inside the MCP server's lifespan (stdio: the whole process; HTTP: the app). On start, and
every `sweep_seconds` after, it gives back the jobs of dead workers (`JobService.recover`) and queues
every pending job, so a job survives the process that accepted it: whichever server opens the database
next runs it. Each process has its own owner id (`host:pid:token`); a job held by a live process on this
host is never taken over, and one held by a dead process is taken over at once, without waiting out its lease.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.abc

from gpt_image_mcp.core.jobs import JobRef, JobService
from gpt_image_mcp.core.lifecycle import JobRecord
from gpt_image_mcp.core.stages import Progress

log = logging.getLogger(__name__)
HOST = socket.gethostname()


def new_owner_id() -> str:
    return f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists on this (POSIX) host; a zombie, killed but not yet reaped, counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS): existence is all we can tell
    return state != "Z"


class LocalJobRunner:
    """Runs jobs with at most `concurrency` at a time; `submit` only queues, so a tool call returns at once."""

    def __init__(self, *, concurrency: int, sweep_seconds: float = 15.0, owner: str | None = None) -> None:
        self.concurrency = concurrency
        self.sweep_seconds = sweep_seconds
        self.owner = owner or new_owner_id()
        self._send, self._receive = anyio.create_memory_object_stream[JobRef](math.inf)
        self._queued: set[str] = set()  # queued or running here: a sweep does not queue them twice
        self._active = False
        self._group: anyio.abc.TaskGroup | None = None

    async def submit(self, user: str, job_id: str) -> None:
        self._enqueue(JobRef(user, job_id))

    def _enqueue(self, job: JobRef) -> None:
        if job.job_id not in self._queued:
            self._queued.add(job.job_id)
            self._send.send_nowait(job)

    async def run_now(self, jobs: JobService, job: JobRecord, progress: Progress | None = None) -> anyio.Event:
        """Run `job` at once, outside the concurrency bound (a synchronous call is waiting for it, and hears its
        `progress`): a job that `JobService.start(owner=self.owner)` created already claimed. The event is set when
        that run ends. Without a running pool the job runs before this returns."""
        finished = anyio.Event()
        self._queued.add(job.job_id)

        async def execute() -> None:
            try:
                await self._execute(jobs, job, progress)
            finally:
                finished.set()

        if self._group is None:
            await execute()
        else:
            self._group.start_soon(execute)
        return finished

    def owner_alive(self, owner: str) -> bool | None:
        """True/False for owners on this host (by process id), None elsewhere: there only the lease tells."""
        if owner == self.owner:
            return True
        host, pid, _token = [*owner.rsplit(":", 2), "", ""][:3]
        if host != HOST or not pid.isdigit() or os.name != "posix":
            return None
        if int(pid) == os.getpid():
            return False  # an earlier process that had our pid, and is gone
        return pid_alive(int(pid))

    @contextlib.asynccontextmanager
    async def running(self, jobs: JobService) -> AsyncIterator[None]:
        """Run the pool for the duration of the block (the server's lifespan). A nested entry, such as a
        second in-process client of the same server, shares the pool of the first."""
        if self._active:
            yield
            return
        self._active = True
        try:
            async with anyio.create_task_group() as group:
                self._group = group
                for _ in range(self.concurrency):
                    group.start_soon(self._work, jobs)
                group.start_soon(self._sweep, jobs)
                try:
                    yield
                finally:
                    group.cancel_scope.cancel()
        finally:
            self._active = False
            self._group = None

    async def _work(self, jobs: JobService) -> None:
        async for job in self._receive:
            await self._execute(jobs, job)

    async def _execute(self, jobs: JobService, job: JobRef | JobRecord, progress: Progress | None = None) -> None:
        """Run a queued job (read, then claimed: it may have changed since it was queued) or one created claimed."""
        try:
            if isinstance(job, JobRecord):
                await jobs.run_new(job, self.owner, progress=progress)
            elif (record := await jobs.read(job.user, job.job_id)) is not None:
                await jobs.execute(record, self.owner, progress=progress)
        except Exception:
            log.exception("job %s: the worker failed", job.job_id)
        finally:
            self._queued.discard(job.job_id)

    async def _sweep(self, jobs: JobService) -> None:
        while True:
            try:
                for job in await jobs.recover(self.owner_alive):
                    self._enqueue(job)
            except Exception:
                log.exception("job sweep failed; retrying in %s s", self.sweep_seconds)
            await anyio.sleep(self.sweep_seconds)
