"""The tool table's machinery: a tool declared once (`ToolSpec`), bound to a server's `ToolContext` as an SDK `Tool`.

Each tool module declares its tools as `ToolSpec`s next to their module-level handlers; a composition root lists the
specs it serves and `MCPServer(tools=[...])` takes them in that order (a stable order: clients and prompt caches
like it). The SDK `Tool` is built directly: its published input schema is the argument model's own (every field's
description and bounds), and its argument model passes the arguments through untouched, so validation happens once,
in the tool's model, and every bad argument, a missing one included, gets the same short message. The output schema
is the SDK's, derived from the declared output model, and each structured result is checked against it. Both schemas
come from `schema_cache`, which ships them pre-generated so start-up does not build them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, ConfigDict, ValidationError

from gpt_image_mcp.core.errors import InvalidArgumentError, UserFacingError
from gpt_image_mcp.core.requests import unknown_parameters
from gpt_image_mcp.server import schema_cache
from gpt_image_mcp.server.context import ToolContext
from gpt_image_mcp.server.replies import error_result

log = logging.getLogger(__name__)
ArgsT = TypeVar("ArgsT", bound=BaseModel)
T = TypeVar("T")

Handler = Callable[[ToolContext, ArgsT, Context], Awaitable[CallToolResult]]

# Reads the caller's own files and records; nothing outside this server.
READS = ToolAnnotations(read_only_hint=True, open_world_hint=False)
# Saves new files, never overwrites; calls OpenAI (the open world), and each call is billed anew.
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)


@dataclass(frozen=True, slots=True)
class ToolSpec(Generic[ArgsT]):
    """One tool: what a client sees of it (name, title, description, schemas, annotations) and what runs."""

    name: str
    title: str
    description: str
    arguments: type[ArgsT]
    output: type[BaseModel]
    annotations: ToolAnnotations
    handler: Handler[ArgsT]

    def input_schema(self, wording: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The argument model's schema, under the title the SDK gives a function's arguments; `wording` replaces
        parameter descriptions where the deployment serves them differently (remote: keys, not folders)."""
        schema = schema_cache.input_schema(self.arguments)
        properties = dict(schema["properties"])  # new dicts where wording differs: the cached schema is shared
        for name, text in (wording or {}).items():
            if name in properties:
                properties[name] = {**properties[name], "description": text}
        return {**schema, "properties": properties, "additionalProperties": False, "title": f"{self.name}Arguments"}

    def bind(self, context: ToolContext, wording: Mapping[str, str] | None = None) -> Tool:
        """The SDK tool that validates the arguments with `arguments` and runs `handler` with `context`."""

        async def run(arguments: dict[str, Any], ctx: Context) -> CallToolResult:
            return await guarded(self._call(context, arguments, ctx))

        return Tool(
            fn=run,
            name=self.name,
            title=self.title,
            description=self.description,
            parameters=self.input_schema(wording),
            fn_metadata=FuncMetadata(
                arg_model=_AsSent, output_schema=schema_cache.output_schema(self.output), output_model=self.output
            ),
            is_async=True,
            context_kwarg="ctx",
            annotations=self.annotations,
        )

    async def _call(self, context: ToolContext, arguments: Mapping[str, Any], ctx: Context) -> CallToolResult:
        return await self.handler(context, validate(self.arguments, arguments), ctx)


class _AsSent(ArgModelBase):
    """The SDK's view of a tool's arguments: all of them, as sent (the tool's own model validates them)."""

    model_config = ConfigDict(extra="allow")

    def model_dump_one_level(self) -> dict[str, Any]:
        return {"arguments": dict(self.model_extra or {})}


def validate(model: type[ArgsT], arguments: Mapping[str, Any]) -> ArgsT:
    """`model` from the arguments as sent; a list or object sent as a JSON string (some clients do) is decoded
    for the fields that are not plain strings. A parameter the tool does not take is refused, not ignored."""
    if unknown := unknown_parameters(arguments, model.model_fields):
        raise InvalidArgumentError(f"Invalid arguments: {'; '.join(unknown)}.")
    decoded = dict(arguments)
    for name, value in arguments.items():
        field = model.model_fields.get(name)
        if field is None or field.annotation is str or not isinstance(value, str):
            continue
        try:
            parsed = json.loads(value)
        except ValueError:
            continue
        if isinstance(parsed, list | dict):
            decoded[name] = parsed
    return model.model_validate(decoded)


async def guarded(call: Awaitable[T]) -> T | CallToolResult:
    """Run a handler; a user-facing error becomes an is_error result with just its message.

    Generic so a caller whose success is not a tool result (the tasks extension starting a job) refuses bad
    input with exactly the result the synchronous tool would give."""
    try:
        return await call
    except UserFacingError as error:
        log.info("tool refused: %s: %s", error.kind, error.message)
        return error_result(error.message)
    except ValidationError as error:
        return error_result(f"Invalid arguments: {describe_validation_error(error)}.")


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem: the parameter, what is wrong, and the value that was sent."""
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "arguments"
        sent = "" if item["type"] == "missing" else f" (got {item['input']!r:.60})"
        problems.append(f"{where}: {item['msg']}{sent}")
    return "; ".join(problems)
