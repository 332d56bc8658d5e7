"""Errors a user can read and act on.

Every failure that reaches a tool result is one of these; anything else is a bug and is reported
generically by the MCP SDK. Messages name the offending value and what is allowed instead.
"""

from __future__ import annotations


class UserFacingError(Exception):
    """Base class: the message is shown to the user verbatim."""

    kind: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgumentError(UserFacingError):
    """A tool argument is wrong; nothing was sent upstream and nothing was charged."""

    kind = "invalid_argument"


class SandboxError(InvalidArgumentError):
    """A path or key would escape the caller's sandbox, or names something that is not allowed."""

    kind = "sandbox"


class NotFoundError(UserFacingError):
    """The named record, file or key does not exist (or belongs to someone else)."""

    kind = "not_found"


class ConfigurationError(UserFacingError):
    """The server is missing configuration (for example an API key) needed for this call."""

    kind = "configuration"


class StorageError(UserFacingError):
    """Local state cannot be written or read for a reason outside the call: a full disk, a read-only folder,
    no permission, a folder removed, a locked or damaged database. The message names the place and the remedy."""

    kind = "storage"


class UpstreamError(UserFacingError):
    """The OpenAI API refused or failed the request."""

    kind = "upstream"

    def __init__(
        self,
        message: str,
        *,
        category: str,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.category = category
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.request_id = request_id


class CancelledJobError(UserFacingError):
    """The job was cancelled; its work is discarded."""

    kind = "cancelled"
