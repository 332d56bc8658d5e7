"""User ids: what an authenticated subject becomes as an S3 prefix and a DynamoDB partition.

`user_from_subject` keeps a Cognito `sub` (a UUID) as it is and hashes anything else, so every id is short, safe in an
S3 key and unambiguous; `validate_user_id` is the check each store applies before touching data.
"""

from __future__ import annotations

import hashlib
import re

from gpt_image_mcp.core.errors import SandboxError

MAX_USER_ID_CHARS = 128
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def validate_user_id(user: str) -> str:
    """Return `user` when it is a safe prefix component; raise `SandboxError` otherwise.

    Safe: non-empty, at most 128 printable characters, no '/', '\\' or '..', not '.', no surrounding whitespace.
    """
    if (
        not isinstance(user, str)
        or not user
        or len(user) > MAX_USER_ID_CHARS
        or not user.isprintable()
        or user != user.strip()
        or "/" in user
        or "\\" in user
        or ".." in user
        or user == "."
    ):
        raise SandboxError(f"The user id {user!r} cannot name a storage folder; this is a server error, not yours.")
    return user


def user_from_subject(subject: str) -> str:
    """The storage id of an authenticated subject.

    A Cognito `sub` is a lower-case UUID and is used as is, so an operator can find a user's folder from the user pool.
    Anything else (an API key's user id, a client-credentials `sub`, an e-mail address) becomes
    `h-<sha256 hex of the subject>`: fixed length, no characters S3 or DynamoDB could mistake. An API key created with
    a Cognito user's `sub` as its user id shares that user's folder and history.
    """
    if _UUID.match(subject):
        return subject
    return "h-" + hashlib.sha256(subject.encode("utf-8")).hexdigest()


def safety_identifier(user: str) -> str:
    """What OpenAI's `safety_identifier` wants: a stable id per end user that reveals nothing about them."""
    return hashlib.sha256(user.encode("utf-8")).hexdigest()
