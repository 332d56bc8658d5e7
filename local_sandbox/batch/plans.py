"""Check every request of a batch with the tools' own planning code before anything is sent.

Locally that is `ImageService.plan`, exactly what a tool call runs: the model and its capabilities, the input images
(read and sniffed), the output path and the room for the images. Against a remote deployment the input images live
in the caller's remote folder, so the client checks what it can without them (`core.planning`: the model, size,
quality, format, transparency, compression, and that an edit has a reference image); the server checks the images
when each job starts, before OpenAI is paid.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path

from gpt_image_mcp.core.catalog import Catalog
from gpt_image_mcp.core.errors import UserFacingError
from gpt_image_mcp.core.planning import ImagePlan, Streaming, as_list, plan_edit, plan_generate, resolve_model
from gpt_image_mcp.core.requests import TransformImageArgs
from gpt_image_mcp.core.service import ImageService
from local_sandbox.batch.batchfile import BatchFileError, BatchRequest

Planner = Callable[[BatchRequest], Awaitable[ImagePlan]]


async def plan_all(path: Path, requests: list[BatchRequest], planner: Planner) -> list[ImagePlan]:
    """Each request's plan; `BatchFileError` naming every request that would be refused."""
    plans, problems = [], []
    for request in requests:
        try:
            plans.append(await planner(request))
        except UserFacingError as error:
            problems.append(f"{request.where}: {error.message}")
    if problems:
        raise BatchFileError(path, problems)
    return plans


def service_planner(service: ImageService, user: str) -> Planner:
    """The local check: the service's own `plan`, as a tool call runs it."""

    async def plan(request: BatchRequest) -> ImagePlan:
        return await service.plan(user, request.tool, request.args)

    return plan


def offline_planner(catalog: Catalog, default_model: str, today: dt.date) -> Planner:
    """The remote check: the planning every image tool shares, with the catalog this client has (a request without
    a model is planned with `default_model`, and with the partial previews it asks for; the server may default to
    other ones)."""

    async def plan(request: BatchRequest) -> ImagePlan:
        args = request.args
        spec, warnings = resolve_model(args, default_model, catalog, today)
        if isinstance(args, TransformImageArgs) and not (
            as_list(args.reference_image_path) or as_list(args.reference_image_base64)
        ):
            plan_edit(request.tool, args, spec, catalog, warnings, [], None)  # refuses: it needs a reference image
        return plan_generate(args, spec, catalog, warnings, Streaming(partial_images=args.partial_images or 0))

    return plan
