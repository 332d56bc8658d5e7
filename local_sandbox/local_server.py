"""Composition root of the local mode: filesystem images, SQLite history and jobs, the OpenAI client."""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator

from mcp.server.mcpserver import MCPServer

from gpt_image_mcp.core.catalog import load_catalog
from gpt_image_mcp.core.handoff import BudgetedCalls
from gpt_image_mcp.core.jobs import JobService
from gpt_image_mcp.core.service import ImageService
from gpt_image_mcp.core.upstream import ImagesClient
from gpt_image_mcp.server.app import build_server
from gpt_image_mcp.server.job_tools import register_job_tools
from gpt_image_mcp.server.tasks import TasksExtension
from local_sandbox.fs_store import FileSystemImageStore
from local_sandbox.job_runner import LocalJobRunner
from local_sandbox.settings import LocalSettings
from local_sandbox.spool import SpoolUpstreamCache
from local_sandbox.sqlite_history import SQLiteHistoryStore
from local_sandbox.sqlite_jobs import SQLiteJobStore

LOCAL_USER = "local"
SPOOL_FOLDER = "upstream-spool"  # beside the history database: paid answers kept until their images are saved


def build_service(settings: LocalSettings) -> ImageService:
    return ImageService(
        settings=settings,
        catalog=load_catalog(),
        client=ImagesClient.from_settings(settings),
        images=FileSystemImageStore(settings.output_dir, settings.input_dir),
        history=SQLiteHistoryStore(settings.history_db_path, wait_seconds=settings.history_db_wait_seconds),
    )


def build_jobs(service: ImageService, settings: LocalSettings) -> tuple[JobService, LocalJobRunner]:
    """Jobs in the history database, run by an in-process pool (start it with `runner.running(jobs)`); each paid
    answer is kept in a spool folder beside the database until its images are saved."""
    runner = LocalJobRunner(concurrency=settings.job_concurrency)
    spool = SpoolUpstreamCache(settings.history_db_path.parent / SPOOL_FOLDER)
    store = SQLiteJobStore(settings.history_db_path, wait_seconds=settings.history_db_wait_seconds)
    return JobService(service, store, runner, upstream_cache=spool), runner


@contextlib.asynccontextmanager
async def serving(service: ImageService, jobs: JobService, runner: LocalJobRunner) -> AsyncIterator[None]:
    """The server's lifespan: the job pool runs while it serves; the OpenAI connection pool is closed after."""
    try:
        async with runner.running(jobs):
            yield
    finally:
        await service.client.aclose()


def build_local_server(settings: LocalSettings) -> MCPServer:
    service = build_service(settings)
    jobs, runner = build_jobs(service, settings)
    # Every call is a durable job (its paid answer survives a failed save); one still running after the budget
    # continues as a background job; budget 0 waits as long as it takes.
    budget = float(settings.sync_budget_seconds) if settings.sync_budget_seconds > 0 else math.inf
    calls = BudgetedCalls(
        jobs, lambda record: runner.run_now(jobs, record), budget=lambda: budget, limit="OPENAI_IMAGE_SYNC_BUDGET"
    )
    server = build_server(
        service,
        current_user=lambda: LOCAL_USER,
        calls=calls,
        lifespan=lambda _server: serving(service, jobs, runner),
        extensions=[TasksExtension(jobs, lambda: LOCAL_USER)],  # image calls as MCP tasks, for clients that ask
    )
    register_job_tools(server, jobs, lambda: LOCAL_USER)
    return server
