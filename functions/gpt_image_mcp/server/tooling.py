"""Register a tool whose parameters are a pydantic model, and turn errors into clean tool results.

MCPServer derives a tool's input schema from the function signature. Image tools share most
parameters, so the signature is generated from the argument model: one definition, three tools,
each field's description and bounds visible to the client.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ValidationError, WithJsonSchema

from gpt_image_mcp.core.errors import UserFacingError

log = logging.getLogger(__name__)
ArgsT = TypeVar("ArgsT", bound=BaseModel)
T = TypeVar("T")


def error_result(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(text=message)], is_error=True)


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


def add_model_tool(
    server: MCPServer,
    name: str,
    model: type[ArgsT],
    handler: Callable[[ArgsT, Context], Awaitable[CallToolResult]],
    *,
    title: str,
    description: str,
    annotations: ToolAnnotations,
    output: type[BaseModel],
) -> None:
    properties = model.model_json_schema()["properties"]
    parameters = []
    hints: dict[str, Any] = {}
    for field_name, info in model.model_fields.items():
        # The client sees the model's own schema for the field; validation happens once, in `model`,
        # so every bad argument gets the same short message (the SDK would otherwise answer first).
        annotation = Annotated[Any, WithJsonSchema(properties[field_name])]
        default = inspect.Parameter.empty if info.is_required() else info.default
        parameters.append(
            inspect.Parameter(field_name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
        )
        hints[field_name] = annotation
    parameters.append(inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context))
    hints["ctx"] = Context
    returns = Annotated[CallToolResult, output]
    hints["return"] = returns

    async def tool(ctx: Context, **arguments: Any) -> CallToolResult:
        return await guarded(_validated_call(model, handler, arguments, ctx))

    tool.__signature__ = inspect.Signature(parameters, return_annotation=returns)  # type: ignore[attr-defined]
    tool.__annotations__ = hints
    tool.__name__ = name
    server.add_tool(tool, name=name, title=title, description=description, annotations=annotations)


async def _validated_call(
    model: type[ArgsT],
    handler: Callable[[ArgsT, Context], Awaitable[CallToolResult]],
    arguments: dict[str, Any],
    ctx: Context,
) -> CallToolResult:
    return await handler(model.model_validate(arguments), ctx)
