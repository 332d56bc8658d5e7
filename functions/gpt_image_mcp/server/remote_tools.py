"""The tool only the remote server offers: a presigned upload link, so a user can bring an input image.

A remote client cannot read the user's disk. Besides base64 in the call, it can ask `create_upload_url` for a
presigned POST into the user's own folder, upload the file with any HTTP client, and then name the returned key as
`reference_image_path` (or `mask_image_path`, or `image_path` of get_metadata_from_image).
"""

from __future__ import annotations

import datetime as dt
import shlex
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import anyio.to_thread
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, Field

from gpt_image_mcp.core.sizes import human_size
from gpt_image_mcp.server.context import ToolContext
from gpt_image_mcp.server.replies import structured
from gpt_image_mcp.server.tooling import ToolSpec

MAX_UPLOAD_BYTES = 50 * 1024 * 1024  # OpenAI's limit for an input image
UploadContentType = Literal["image/png", "image/jpeg", "image/webp"]
# Makes a new link (and, once used, a new file in the caller's folder); touches nothing outside this deployment.
MAKES_LINK = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)


# Paths remotely are keys in the caller's own space (their S3 prefix): the local wording speaks of folders on disk.
REMOTE_WORDING = {
    "output_path": (
        "Where to save, as a key in your own image space, e.g. 'posters/launch.png'. An existing image is never "
        "overwritten (a free name is chosen); the extension is set to match output_format. Default: a name made from "
        "the prompt."
    ),
    "reference_image_path": (
        "Input image key(s) in your space: the key create_upload_url gave you, or the path of an earlier result; a "
        "list for several references (up to 16, the first is edited). png, jpeg or webp, under 50 MB each. This "
        "server cannot read your disk: upload first, or send reference_image_base64."
    ),
    "mask_image_path": (
        "Mask PNG key in your space (from create_upload_url, or a result), with an alpha channel, the same size as "
        "the first reference image; fully transparent pixels mark the area to change."
    ),
    "image_path": "Image key in your space: the path of a result, or a key create_upload_url gave you.",
    "directory": "A folder of your space to list, e.g. 'posters'; default: all of it.",
}


class CreateUploadUrlArgs(BaseModel):
    """Arguments of create_upload_url."""

    file_name: Annotated[
        str,
        Field(
            min_length=1,
            max_length=512,
            description=(
                "Name for the upload inside your folder, optionally with subfolders, e.g. 'uploads/photo.png'. "
                "The extension is set to match content_type; a taken name gets a free variant (never overwritten)."
            ),
        ),
    ]
    content_type: Annotated[
        UploadContentType, Field(description="The file's type: image/png, image/jpeg or image/webp.")
    ] = "image/png"
    max_bytes: Annotated[
        int, Field(ge=1, le=MAX_UPLOAD_BYTES, description="Largest file the link accepts, in bytes (up to 50 MB).")
    ] = MAX_UPLOAD_BYTES


class UploadUrlResult(BaseModel):
    """A presigned POST upload and the key to use afterwards."""

    url: str = Field(description="POST a multipart form here.")
    fields: dict[str, str] = Field(description="Form fields to send, in this order, before the file field 'file'.")
    key: str = Field(description="Pass this as reference_image_path (or mask_image_path) once uploaded.")
    location: str
    content_type: str
    max_bytes: int
    expires_in: int = Field(description="Seconds the link stays valid.")
    expires_at: str = Field(description="When the link stops working (ISO 8601, UTC).")
    curl: str = Field(description="A ready curl command; replace the file path at the end.")


def curl_command(url: str, fields: Mapping[str, str], file_name: str) -> str:
    """A shell-safe curl upload; `--form-string` keeps field values literal (no '@' or '<' file tricks)."""
    parts = ["curl", "-sS", "-f", "-X", "POST", shlex.quote(url)]
    for name, value in fields.items():
        parts += ["--form-string", shlex.quote(f"{name}={value}")]
    parts += ["-F", shlex.quote(f"file=@{file_name}")]
    return " ".join(parts)


async def create_upload_url(tools: ToolContext, args: CreateUploadUrlArgs, ctx: Context) -> CallToolResult:
    """A presigned POST into the caller's folder; the link lives as long as the store's download links."""
    store = tools.uploads
    assert store is not None, "create_upload_url is served only with an upload store"
    user = tools.current_user()
    expires = store.link_expiry_seconds
    upload = await anyio.to_thread.run_sync(
        store.presigned_upload, user, args.file_name, args.content_type, args.max_bytes, expires
    )
    local_name = str(upload["key"]).rsplit("/", 1)[-1]
    fields = {str(k): str(v) for k, v in dict(upload["fields"]).items()}
    result = UploadUrlResult(
        url=str(upload["url"]),
        fields=fields,
        key=str(upload["key"]),
        location=str(upload["location"]),
        content_type=str(upload["content_type"]),
        max_bytes=int(upload["max_bytes"]),
        expires_in=int(upload["expires_in"]),
        expires_at=(tools.clock() + dt.timedelta(seconds=int(upload["expires_in"]))).isoformat(timespec="seconds"),
        curl=curl_command(str(upload["url"]), fields, local_name),
    )
    text = "\n".join(
        [
            f"Upload link for {result.location} ({result.content_type}, up to {human_size(result.max_bytes)}), "
            f"valid for {result.expires_in // 60} min (until {result.expires_at}).",
            "POST a multipart form to the URL with the fields below, then the file as the field 'file' (last):",
            result.curl,
            f"Afterwards pass reference_image_path={result.key!r} to edit_image or transform_image.",
        ]
    )
    return structured(text, result)


UPLOAD_TOOLS: tuple[ToolSpec[Any], ...] = (
    ToolSpec(
        name="create_upload_url",
        title="Create upload link",
        description=(
            "Get a presigned link to upload an input image (png, jpeg, webp) into your folder, for use as "
            "reference_image_path of edit_image or transform_image. Returns the URL, form fields, key and a curl "
            "example."
        ),
        arguments=CreateUploadUrlArgs,
        output=UploadUrlResult,
        annotations=MAKES_LINK,
        handler=create_upload_url,
    ),
)
