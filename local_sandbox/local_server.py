"""Composition root of the local mode: filesystem images, SQLite history, the OpenAI client."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from gpt_image_mcp.core.catalog import load_catalog
from gpt_image_mcp.core.config import Settings
from gpt_image_mcp.core.service import ImageService
from gpt_image_mcp.core.upstream import ImagesClient, RetryPolicy
from gpt_image_mcp.server.app import build_server
from local_sandbox.fs_store import FileSystemImageStore
from local_sandbox.sqlite_history import SQLiteHistoryStore

LOCAL_USER = "local"


def build_service(settings: Settings) -> ImageService:
    client = ImagesClient(
        api_key=settings.openai_api_key,
        organization=settings.openai_organization,
        base_url=settings.openai_base_url,
        timeout=settings.request_timeout,
        retry=RetryPolicy(max_retries=settings.max_retries),
    )
    return ImageService(
        settings=settings,
        catalog=load_catalog(),
        client=client,
        images=FileSystemImageStore(settings.output_dir, settings.input_dir),
        history=SQLiteHistoryStore(settings.history_db_path),
    )


def build_local_server(settings: Settings) -> MCPServer:
    return build_server(build_service(settings), current_user=lambda: LOCAL_USER)
