"""The client half of the tasks extension, for tests only: what a task-aware MCP client does.

`TasksClient` declares `io.modelcontextprotocol/tasks` and claims `resultType: "task"` on tools/call, so
`client.call_tool(...)` still returns a plain `CallToolResult`: the handle is polled with tasks/get until the
task ends. `client.session.call_tool(..., allow_claimed=True)` returns the raw handle instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import anyio
import mcp.types as types
from mcp import Client
from mcp.client import ClaimContext, ClientExtension, ResultClaim

from gpt_image_mcp.server.tasks import TASKS_EXTENSION, TaskIdParams, UpdateTaskParams

TERMINAL = frozenset({"completed", "failed", "cancelled"})
POLL_MS = 50  # the test servers' poll interval: fast polling keeps the tests short
OTHER_USER = "someone-else"


class GetTaskRequest(types.Request[TaskIdParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    params: TaskIdParams
    name_param = "taskId"  # SEP-2663: on HTTP the Mcp-Name header carries the task id


class CancelTaskRequest(types.Request[TaskIdParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    params: TaskIdParams
    name_param = "taskId"


class UpdateTaskRequest(types.Request[UpdateTaskParams, Literal["tasks/update"]]):
    method: Literal["tasks/update"] = "tasks/update"
    params: UpdateTaskParams
    name_param = "taskId"


class TaskFields(types.Result):
    task_id: str
    status: str
    status_message: str | None = None
    created_at: str
    last_updated_at: str
    ttl_ms: int | None = None
    poll_interval_ms: int | None = None


class CreateTaskResult(TaskFields):
    result_type: Literal["task"] = "task"


class GetTaskResult(TaskFields):
    result_type: str | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class Ack(types.Result):
    result_type: str | None = None


class TaskEnded(Exception):
    """The task ended without a result (cancelled, or failed with a JSON-RPC error)."""

    def __init__(self, task: GetTaskResult) -> None:
        super().__init__(f"task {task.task_id} {task.status}: {task.error or task.status_message}")
        self.task = task


class TasksClient(ClientExtension):
    """Polls a task handle to its end; `seen` keeps every (status, statusMessage) observed, handle first."""

    identifier = TASKS_EXTENSION

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []
        self.handles: list[CreateTaskResult] = []

    def claims(self) -> Sequence[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=CreateTaskResult, resolve=self._poll)]

    async def _poll(self, created: CreateTaskResult, ctx: ClaimContext) -> types.CallToolResult:
        self.handles.append(created)
        self.seen.append((created.status, created.status_message))
        interval = created.poll_interval_ms
        while True:
            await anyio.sleep((interval or 500) / 1000)
            got = await ctx.session.send_request(
                GetTaskRequest(params=TaskIdParams(task_id=created.task_id)), GetTaskResult
            )
            self.seen.append((got.status, got.status_message))
            interval = got.poll_interval_ms or interval
            if got.status == "completed":
                return types.CallToolResult.model_validate(got.result)
            if got.status in TERMINAL:
                raise TaskEnded(got)


async def get_task(client: Client, task_id: str) -> GetTaskResult:
    return await client.session.send_request(GetTaskRequest(params=TaskIdParams(task_id=task_id)), GetTaskResult)


async def cancel_task(client: Client, task_id: str) -> Ack:
    return await client.session.send_request(CancelTaskRequest(params=TaskIdParams(task_id=task_id)), Ack)


async def update_task(client: Client, task_id: str) -> Ack:
    params = UpdateTaskParams(task_id=task_id, input_responses={"nothing": {"action": "accept"}})
    return await client.session.send_request(UpdateTaskRequest(params=params), Ack)


async def start_task(client: Client, tool: str, arguments: dict[str, Any]) -> types.CallToolResult | types.Result:
    """The raw answer to tools/call: a task handle (`CreateTaskResult`), or a tool result when the server answered
    synchronously."""
    return await client.session.call_tool(tool, arguments, allow_claimed=True)
