"""Storage interfaces the core depends on, and the records that cross them.

Adapters implement these for the local filesystem + SQLite (`local_sandbox`) and for S3 + DynamoDB
(`gpt_image_mcp.aws`). Every call takes the caller's user id; keys are POSIX paths relative to that
user's root (locally one fixed user whose root is the configured folder; remotely `users/{sub}/`).
The interfaces are synchronous: both SQLite and boto3 are; the service runs them in worker threads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class StoredImage:
    """Where one saved image went."""

    key: str  # relative to the user's root, POSIX separators
    location: str  # what a human reads: an absolute path locally, s3://bucket/key remotely
    link: str  # file:// URI locally, presigned https URL remotely
    size_bytes: int


@dataclass(frozen=True, slots=True)
class ListedImage:
    key: str
    location: str
    link: str
    size_bytes: int
    modified: str  # ISO 8601, UTC


class ImageStore(Protocol):
    """Image bytes, confined to each user's root."""

    def save(self, user: str, key: str, data: bytes, content_type: str) -> StoredImage:
        """Store `data` at `key`, or at a free name next to it: never overwrite. Atomic per name."""
        ...

    def check_key(self, user: str, key: str, expected_bytes: int = 0) -> str:
        """Validate a caller's output path before any paid work and return its key: SandboxError for a path the
        rules refuse; StorageError when the place cannot take `expected_bytes` now (where the store can tell)."""
        ...

    def delete(self, user: str, key: str) -> None:
        """Remove a file this call saved (a call whose other images could not be saved leaves none behind)."""
        ...

    def read_input(self, user: str, path: str, max_bytes: int) -> bytes:
        """Read an input image the caller named. Path rules apply; larger than `max_bytes` is refused."""
        ...

    def read_output(self, user: str, path: str, max_bytes: int) -> bytes:
        """Read an image from the output root (a file this server saved), with the same rules."""
        ...

    def list_images(self, user: str, directory: str | None, limit: int) -> list[ListedImage]:
        """Images under `directory` (relative to the user's root), newest first."""
        ...

    def link_for(self, user: str, key: str) -> str:
        """A fresh link to an existing key (file:// or presigned https)."""
        ...


@dataclass(slots=True)
class HistoryImage:
    key: str
    location: str
    format: str
    width: int
    height: int
    size_bytes: int


@dataclass(slots=True)
class HistoryRecord:
    """One successful image call: what was asked, what came back, what it cost."""

    uuid: str
    user: str
    tool_name: str
    prompt: str
    model: str
    parameters: dict[str, Any]
    param_hash: str
    created_at: str  # ISO 8601, UTC
    images: list[HistoryImage] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    cost: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HistoryRecord:
        images = [HistoryImage(**image) for image in data.get("images", [])]
        return cls(**{**data, "images": images})


@dataclass(frozen=True, slots=True)
class HistoryPage:
    records: list[HistoryRecord]
    total: int


class HistoryStore(Protocol):
    """Per-user history of image calls."""

    def add(self, record: HistoryRecord) -> None:
        """Insert a record. Adding the same uuid twice keeps one row (idempotent)."""
        ...

    def get(self, user: str, uuid: str) -> HistoryRecord | None:
        """The record, or None when it does not exist or belongs to another user."""
        ...

    def search(
        self, user: str, *, limit: int, offset: int, tool_name: str | None = None, query: str | None = None
    ) -> HistoryPage:
        """Newest first; `query` matches prompts case-insensitively as a substring."""
        ...
