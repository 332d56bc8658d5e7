"""What every tool handler works with, handed to it explicitly: the services, the caller, the call policy, the clock.

A composition root (`local_sandbox.local_server`, `entry.lambda_mcp`) builds one `ToolContext` per server; the tool
table (`server.tooling`) passes it to each module-level handler with the validated arguments. The caller's identity
comes from `current_user` (locally a constant; remotely the verified token's subject), never from a tool argument,
so no call can name another user's data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from gpt_image_mcp.core.handoff import CallPolicy
from gpt_image_mcp.core.jobs import JobService
from gpt_image_mcp.core.service import ImageService
from gpt_image_mcp.server.resources import ResourceSpace


class UploadStore(Protocol):
    """Presigned uploads into a user's folder (`gpt_image_mcp.aws.s3_store.S3ImageStore`); remote only."""

    link_expiry_seconds: int

    def presigned_upload(
        self, user: str, key: str, content_type: str, max_bytes: int, expires: int
    ) -> Mapping[str, Any]: ...


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def no_safety_identifier(user: str) -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class ToolContext:
    """The collaborators of the tools of one server."""

    service: ImageService
    jobs: JobService
    current_user: Callable[[], str]
    calls: CallPolicy  # how an image call runs, and when it continues as a job (core.handoff)
    resources: ResourceSpace  # how its images are named as MCP resources and read back
    safety_identifier: Callable[[str], str | None] = no_safety_identifier
    uploads: UploadStore | None = None  # remote only: create_upload_url
    clock: Callable[[], dt.datetime] = utc_now
