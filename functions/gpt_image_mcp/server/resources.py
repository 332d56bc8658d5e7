"""Images as MCP resources: every `resource_link` a result gives can be read back, by its owner only.

Two spaces, one shape:

* `FileResources` (local): the `file://` URI of a saved image; `resources/read` serves a file inside the output or
  the input folder, under the store's sandbox rules (no `..`, no symlink out, nothing outside).
* `KeyResources` (remote): `gpt-image://images/<key>`, the key relative to the caller's own space (the S3 prefix of
  the verified user). The same URI read by another user names a key in *their* space, so someone else's image is
  refused exactly like one that does not exist. An image over the response cap (Lambda answers at most 6 MB) is
  answered with a text that carries a fresh presigned download link instead of the bytes.

`JobPreviews` (both modes): `gpt-image://jobs/<job_id>/preview`, the latest partial image of the caller's job
while it is being made (`partial_images`); `check_job_status` links it.

`resources/list` pages through the caller's images, newest first; `resources/templates/list` gives the URI patterns.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Protocol
from urllib.parse import quote, unquote, urlsplit
from urllib.request import url2pathname

import anyio.to_thread
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, Resource, ResourceTemplate

from gpt_image_mcp.core.errors import InvalidArgumentError, NotFoundError, SandboxError
from gpt_image_mcp.core.imageinfo import MIME_TYPES, sniff
from gpt_image_mcp.core.jobs import JobService
from gpt_image_mcp.core.planning import MAX_INPUT_BYTES
from gpt_image_mcp.core.results import ImageFile
from gpt_image_mcp.core.storage import ImageStore

SCHEME = "gpt-image"
PAGE_SIZE = 50
MIME_BY_SUFFIX = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}


class ResourceSpace(Protocol):
    """How a deployment names its images as resources, and reads them back for the caller."""

    def uri(self, image: ImageFile) -> str: ...

    def template(self) -> ResourceTemplate: ...

    async def read(self, uri: str) -> ReadResourceContents: ...

    async def page(self, cursor: str | None) -> tuple[list[Resource], str | None]: ...


def unknown(uri: str) -> MCPError:
    """The answer for a URI that names nothing of the caller's: -32602, as the spec has it for a missing resource."""
    return MCPError(code=INVALID_PARAMS, message=f"Resource not found: {uri}", data={"uri": uri})


def contents(data: bytes) -> ReadResourceContents:
    return ReadResourceContents(content=data, mime_type=MIME_TYPES[sniff(data).format])


def offset_of(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.isdigit():
        raise MCPError(code=INVALID_PARAMS, message=f"Invalid cursor {cursor[:40]!r}: use the nextCursor of a page.")
    return int(cursor)


class _Space(ABC):
    """What both spaces share: the caller, the store, and paging through the caller's images."""

    def __init__(self, images: ImageStore, current_user: Callable[[], str]) -> None:
        self.images = images
        self.current_user = current_user

    @abstractmethod
    def uri_of_key(self, key: str) -> str: ...

    async def page(self, cursor: str | None) -> tuple[list[Resource], str | None]:
        """PAGE_SIZE of the caller's images, newest first, and the cursor of the next page (None at the end)."""
        offset = offset_of(cursor)
        user = self.current_user()
        listed = await anyio.to_thread.run_sync(self.images.list_images, user, None, offset + PAGE_SIZE + 1)
        window = listed[offset : offset + PAGE_SIZE]
        resources = [
            Resource(
                uri=self.uri_of_key(item.key),
                name=PurePosixPath(item.key).name,
                title=item.key,
                description=f"{item.location}, saved {item.modified}",
                mime_type=MIME_BY_SUFFIX.get(PurePosixPath(item.key).suffix.lower()),
                size=item.size_bytes,
            )
            for item in window
        ]
        more = len(listed) > offset + PAGE_SIZE
        return resources, str(offset + PAGE_SIZE) if more else None


class FileResources(_Space):
    """Local: `file://` URIs of images inside the output (or input) folder."""

    def __init__(self, images: ImageStore, current_user: Callable[[], str], output_dir: str) -> None:
        super().__init__(images, current_user)
        self.output_dir = output_dir

    def uri(self, image: ImageFile) -> str:
        return image.link  # the file:// URI of the saved file

    def uri_of_key(self, key: str) -> str:
        return self.images.link_for(self.current_user(), key)

    def template(self) -> ResourceTemplate:
        return ResourceTemplate(
            uri_template="file:///{+path}",
            name="image",
            title="A saved image",
            description=f"An image file inside the output folder ({self.output_dir}) or the input folder, as the "
            "resource_link of a result gives it; resources/read returns its bytes.",
        )

    async def read(self, uri: str) -> ReadResourceContents:
        parts = urlsplit(uri)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
            raise unknown(uri)
        path = url2pathname(parts.path)
        user = self.current_user()
        try:
            try:
                data = await anyio.to_thread.run_sync(self.images.read_output, user, path, MAX_INPUT_BYTES)
            except SandboxError:  # not in the output folder: perhaps in the input folder
                data = await anyio.to_thread.run_sync(self.images.read_input, user, path, MAX_INPUT_BYTES)
        except NotFoundError:
            raise unknown(uri) from None
        except InvalidArgumentError as error:
            raise MCPError(code=INVALID_PARAMS, message=error.message, data={"uri": uri}) from None
        return contents(data)


class KeyResources(_Space):
    """Remote: `gpt-image://images/<key>` in the caller's own space; big images answered with a download link."""

    def __init__(self, images: ImageStore, current_user: Callable[[], str], max_bytes: int) -> None:
        super().__init__(images, current_user)
        self.max_bytes = max_bytes

    def uri(self, image: ImageFile) -> str:
        return self.uri_of_key(image.path)

    def uri_of_key(self, key: str) -> str:
        return f"{SCHEME}://images/{quote(key, safe='/')}"

    def template(self) -> ResourceTemplate:
        return ResourceTemplate(
            uri_template=f"{SCHEME}://images/{{+key}}",
            name="image",
            title="An image in your space",
            description="An image in your own space, by its key (the path of a result, e.g. posters/launch.png); "
            "resources/read returns its bytes, or a download link when it is too big to send.",
        )

    async def read(self, uri: str) -> ReadResourceContents:
        parts = urlsplit(uri)
        key = unquote(parts.path.removeprefix("/"))
        if parts.scheme != SCHEME or parts.netloc != "images" or not key or parts.query or parts.fragment:
            raise unknown(uri)
        user = self.current_user()
        try:
            data = await anyio.to_thread.run_sync(self.images.read_output, user, key, self.max_bytes)
        except (NotFoundError, SandboxError):  # not in the caller's space (whoever else it may belong to)
            raise unknown(uri) from None
        except InvalidArgumentError:  # over the cap: the bytes would not fit in a response
            link = await anyio.to_thread.run_sync(self.images.link_for, user, key)
            return ReadResourceContents(content=self._too_big(key, link), mime_type="text/plain")
        return contents(data)

    def _too_big(self, key: str, link: str) -> str:
        return (
            f"{key} is larger than the {self.max_bytes:,} bytes a response may carry here. Download it with this "
            f"link (valid for a limited time): {link}"
        )


class JobPreviews:
    """`gpt-image://jobs/<job_id>/preview`: the latest partial image of one of the caller's running jobs. A job
    that is not the caller's, or has no preview now (none yet, or settled), is refused like an unknown URI."""

    def __init__(self, jobs: JobService, current_user: Callable[[], str]) -> None:
        self.jobs = jobs
        self.current_user = current_user

    @staticmethod
    def uri(job_id: str) -> str:
        return f"{SCHEME}://jobs/{quote(job_id, safe='')}/preview"

    @staticmethod
    def template() -> ResourceTemplate:
        return ResourceTemplate(
            uri_template=f"{SCHEME}://jobs/{{job_id}}/preview",
            name="job_preview",
            title="A job's latest partial image",
            description="The latest partial image of one of your running jobs started with partial_images; "
            "check_job_status links it while the job runs.",
        )

    @staticmethod
    def job_of(uri: str) -> str | None:
        """The job id a preview URI names, or None when `uri` is not a preview URI."""
        parts = urlsplit(uri)
        job_id, _, rest = unquote(parts.path.removeprefix("/")).partition("/")
        if parts.scheme != SCHEME or parts.netloc != "jobs" or rest != "preview" or parts.query or parts.fragment:
            return None
        return job_id or None

    async def read(self, uri: str) -> ReadResourceContents:
        job_id = self.job_of(uri)
        if job_id is None:
            raise unknown(uri)
        try:
            data = await self.jobs.preview(self.current_user(), job_id)
        except NotFoundError:
            raise unknown(uri) from None
        if data is None:
            raise unknown(uri)
        return contents(data)
