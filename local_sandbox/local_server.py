"""Composition root of the local mode: filesystem images, SQLite history and jobs, the OpenAI client."""

from __future__ import annotations

import contextlib
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
from local_sandbox.sqlite_history import SQLiteHistoryStore
from local_sandbox.sqlite_jobs import SQLiteJobStore

LOCAL_USER = "local"


def build_service(settings: LocalSettings) -> ImageService:
    return ImageService(
        settings=settings,
        catalog=load_catalog(),
        client=ImagesClient.from_settings(settings),
        images=FileSystemImageStore(settings.output_dir, settings.input_dir),
        history=SQLiteHistoryStore(settings.history_db_path),
    )


def build_jobs(service: ImageService, settings: LocalSettings) -> tuple[JobService, LocalJobRunner]:
    """Jobs in the history database, run by an in-process pool; start the pool with `runner.running(jobs)`."""
    runner = LocalJobRunner(concurrency=settings.job_concurrency)
    return JobService(service, SQLiteJobStore(settings.history_db_path), runner), runner


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
    calls = None
    if settings.sync_budget_seconds > 0:  # a call still running after the budget continues as a job
        calls = BudgetedCalls(
            jobs,
            lambda job_id: runner.run_now(jobs, job_id),
            budget=lambda: settings.sync_budget_seconds,
            limit="OPENAI_IMAGE_SYNC_BUDGET",
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
