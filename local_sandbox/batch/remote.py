"""The remote backend: the deployment's job tools over MCP Streamable HTTP, with the MCP SDK's own client.

start_generation_job (with the request's key as `idempotency_key`), check_job_status and get_job_result, under the
caller's bearer token: the deployment's SQS workers do the work, as many at once as it allows, and a job goes on
when this client stops. The images stay in the caller's remote folder; the results carry their presigned links.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import TextContent

from gpt_image_mcp.core.errors import UserFacingError
from gpt_image_mcp.core.results import ImageToolResult, JobInfo, JobResult
from local_sandbox.batch.batchfile import BatchRequest

POLL_SECONDS = 1.0  # each check is a request to the deployment
TIMEOUT = httpx2.Timeout(30.0, read=120.0)  # a tool call that waits longer than this is lost, not slow


class RemoteBackend:
    def __init__(self, client: Client, *, poll_seconds: float = POLL_SECONDS) -> None:
        self.client = client
        self.poll_seconds = poll_seconds

    async def start(self, request: BatchRequest, key: str) -> JobInfo:
        arguments = {"tool_name": request.tool, **request.arguments, "idempotency_key": key}
        return JobInfo.model_validate(await self._call("start_generation_job", arguments))

    async def status(self, job_id: str) -> JobInfo:
        return JobInfo.model_validate(await self._call("check_job_status", {"job_id": job_id}))

    async def result(self, job_id: str) -> ImageToolResult:
        answer = JobResult.model_validate(await self._call("get_job_result", {"job_id": job_id}))
        if answer.result is None:
            raise UserFacingError(f"get_job_result gave no images for completed job {job_id}.")
        return answer.result

    async def _call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """The tool's structured content; a refusal (an is_error result) raises with the server's message."""
        result = await self.client.call_tool(tool, arguments)
        said = " ".join(block.text for block in result.content if isinstance(block, TextContent))
        if result.is_error:
            raise UserFacingError(said or f"{tool} failed without a message.")
        if result.structured_content is None:
            raise UserFacingError(f"{tool} answered without structured content: {said[:200]}")
        content: dict[str, Any] = result.structured_content
        return content


class _LastRefusal:
    """The last HTTP error status the deployment answered: the SDK reports a refused connection (a bad token) only as
    an MCP error without it."""

    def __init__(self) -> None:
        self.status: int | None = None

    async def __call__(self, response: httpx2.Response) -> None:
        if response.status_code >= 400:
            self.status = response.status_code


@contextlib.asynccontextmanager
async def connect(url: str, token: str) -> AsyncIterator[RemoteBackend]:
    """A client of the deployment at `url`, authenticated with `token`, for the block. A connection that cannot be
    made is a `UserFacingError` that says why (each request's own errors are the batch's, not this)."""
    refusal = _LastRefusal()
    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT, event_hooks={"response": [refusal]}
    )
    try:
        async with http, Client(streamable_http_client(url, http_client=http)) as client:
            yield RemoteBackend(client)
    except Exception as error:
        raise UserFacingError(_unreachable(url, error, refusal.status)) from error


def _unreachable(url: str, error: BaseException, status: int | None) -> str:
    if status == 401:
        return f"{url} refused the token (HTTP 401): give a valid API key or access token with --token."
    if status == 403:
        return f"{url} refused the token (HTTP 403): it lacks the scope for image tools."
    if status is not None:
        return f"{url} answered HTTP {status}: is it the MCP URL of a gpt-image-mcp deployment (ending in /mcp)?"
    cause = next(_leaves(error))
    if isinstance(cause, httpx2.TransportError):
        return f"cannot reach {url}: {cause or type(cause).__name__}."
    return f"the connection to {url} failed: {type(cause).__name__}: {cause}"


def _leaves(error: BaseException) -> Iterator[BaseException]:
    """The errors inside task groups' exception groups, depth first."""
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    else:
        yield error
