"""Composition root of the local mode: filesystem images, SQLite history and jobs, the OpenAI client.

`build_parts` makes what the server is built from and `build_local_server` the server itself; the `gpt-image-mcp`
command and the tests call the same two functions (tests with a shorter job poll, or another user).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass

from mcp.server.mcpserver import MCPServer

from gpt_image_mcp.core.catalog import load_catalog
from gpt_image_mcp.core.handoff import BudgetedCalls, CallPolicy
from gpt_image_mcp.core.jobs import JobService
from gpt_image_mcp.core.service import ImageService
from gpt_image_mcp.core.upstream import ImagesClient
from gpt_image_mcp.server.app import LOCAL_TOOLS, build_server
from gpt_image_mcp.server.context import ToolContext
from gpt_image_mcp.server.resources import FileResources
from gpt_image_mcp.server.tasks import DEFAULT_POLL_INTERVAL_MS, TasksExtension
from local_sandbox.fs_store import FileSystemImageStore
from local_sandbox.job_runner import LocalJobRunner
from local_sandbox.settings import LocalSettings
from local_sandbox.spool import SpoolUpstreamCache
from local_sandbox.sqlite_history import SQLiteHistoryStore
from local_sandbox.sqlite_jobs import SQLiteJobStore

LOCAL_USER = "local"
SPOOL_FOLDER = "upstream-spool"  # beside the history database: paid answers kept until their images are saved
JOB_POLL_SECONDS = 0.2  # how often a running job checks for a cancel, and a waiting call for its job


@dataclass(frozen=True, slots=True)
class LocalParts:
    """What the local server is built from."""

    settings: LocalSettings
    service: ImageService
    store: SQLiteJobStore
    jobs: JobService
    runner: LocalJobRunner


def build_service(settings: LocalSettings) -> ImageService:
    return ImageService(
        settings=settings,
        catalog=load_catalog(),
        client=ImagesClient.from_settings(settings),
        images=FileSystemImageStore(settings.output_dir, settings.input_dir),
        history=SQLiteHistoryStore(settings.history_db_path, wait_seconds=settings.history_db_wait_seconds),
    )


def build_parts(settings: LocalSettings, *, poll_seconds: float = JOB_POLL_SECONDS) -> LocalParts:
    """The image service, and jobs in the history database run by an in-process pool (`serving` runs it); each
    paid answer is kept in a spool folder beside the database until its images are saved."""
    service = build_service(settings)
    store = SQLiteJobStore(settings.history_db_path, wait_seconds=settings.history_db_wait_seconds)
    runner = LocalJobRunner(concurrency=settings.job_concurrency)
    spool = SpoolUpstreamCache(settings.history_db_path.parent / SPOOL_FOLDER)
    jobs = JobService(service, store, runner, upstream_cache=spool, poll_seconds=poll_seconds)
    return LocalParts(settings=settings, service=service, store=store, jobs=jobs, runner=runner)


def call_policy(parts: LocalParts) -> CallPolicy:
    """Every call is a durable job (its paid answer survives a failed save), run at once; one still running after
    OPENAI_IMAGE_SYNC_BUDGET seconds continues as a background job; budget 0 waits as long as it takes."""
    seconds = parts.settings.sync_budget_seconds
    budget = float(seconds) if seconds > 0 else math.inf
    return BudgetedCalls(
        parts.jobs,
        parts.runner,
        budget=lambda: budget,
        limit="OPENAI_IMAGE_SYNC_BUDGET",
        poll_seconds=parts.jobs.poll_seconds,
    )


@contextlib.asynccontextmanager
async def serving(parts: LocalParts) -> AsyncIterator[None]:
    """The server's lifespan: the job pool runs while it serves; the OpenAI connection pool is closed after."""
    try:
        async with parts.runner.running(parts.jobs):
            yield
    finally:
        await parts.service.client.aclose()


def build_local_server(
    parts: LocalParts, *, user: str = LOCAL_USER, task_poll_interval_ms: int = DEFAULT_POLL_INTERVAL_MS
) -> MCPServer:
    """The local server: every local tool, and image calls as MCP tasks for the clients that ask."""
    service = parts.service
    context = ToolContext(
        service=service,
        jobs=parts.jobs,
        current_user=lambda: user,
        calls=call_policy(parts),
        resources=FileResources(service.images, lambda: user, str(parts.settings.output_dir)),
    )
    tasks = TasksExtension(context, poll_interval_ms=task_poll_interval_ms)
    return build_server(context, LOCAL_TOOLS, lifespan=lambda _server: serving(parts), extensions=[tasks])
