"""API keys for scripts and CI: opaque bearer tokens `gim_<key id>_<secret>`, stored only as SHA-256 hashes.

Table (see template.yaml): key `key_hash` (S); global secondary index `by_user` on `user_id` + `created_at` (S,
projection ALL); TTL attribute `expires_at` (epoch seconds). TTL deletion runs late (up to days), so `lookup` checks
expiry itself. Revoking marks the item (`revoked = true`) rather than deleting it, which keeps a record of the key.

The MCP function only looks keys up (and stamps `last_used_at`, at most once a minute per container); keys are made
and revoked by the operator with `gpt-image-mcp-keys` (see `keys_cli`).

Revocation bound: a container keeps a key it has read for at most `REVOCATION_BOUND_SECONDS` (5 s) before it reads
the item again (strongly consistent), so a revoked key stops working on every container within 5 s. Unknown, revoked
and expired keys are never cached.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from gpt_image_mcp.aws.fresh_cache import FreshCache
from gpt_image_mcp.core.errors import InvalidArgumentError, NotFoundError

API_KEY_PREFIX = "gim_"
INDEX_BY_USER = "by_user"
DEFAULT_SCOPES = ("images",)
REVOCATION_BOUND_SECONDS = 5.0  # the longest a revoked key keeps working on a warm container
TOUCH_INTERVAL_SECONDS = 60.0  # last_used_at is stamped at most this often per key per container
_MAX_TOUCHED_ENTRIES = 1024
_KEY_ID_BYTES = 6  # 12 hex characters: unique enough to name a key, not a secret
_KEY_PATTERN = re.compile(r"^gim_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_KEY_ID_PATTERN = re.compile(r"^(?:gim_)?([0-9a-f]{12})(?:_.*)?$")


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """What is stored about a key (never the key itself)."""

    key_id: str
    user_id: str
    scopes: list[str]
    created_at: str  # ISO 8601, UTC
    expires_at: int | None  # epoch seconds; None = never
    revoked: bool = False
    key_hash: str = field(default="", repr=False)

    def is_active(self, now: float | None = None) -> bool:
        current = time.time() if now is None else now
        return not self.revoked and (self.expires_at is None or self.expires_at > current)


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def _to_item(record: ApiKeyRecord) -> dict[str, Any]:
    item: dict[str, Any] = {
        "key_hash": {"S": record.key_hash},
        "key_id": {"S": record.key_id},
        "user_id": {"S": record.user_id},
        "scopes": {"L": [{"S": scope} for scope in record.scopes]},
        "created_at": {"S": record.created_at},
        "revoked": {"BOOL": record.revoked},
    }
    if record.expires_at is not None:
        item["expires_at"] = {"N": str(record.expires_at)}
    return item


def _from_item(item: dict[str, Any]) -> ApiKeyRecord:
    expires = item.get("expires_at", {}).get("N")
    return ApiKeyRecord(
        key_id=item["key_id"]["S"],
        user_id=item["user_id"]["S"],
        scopes=[value["S"] for value in item.get("scopes", {}).get("L", [])],
        created_at=item["created_at"]["S"],
        expires_at=None if expires is None else int(expires),
        revoked=bool(item.get("revoked", {}).get("BOOL", False)),
        key_hash=item["key_hash"]["S"],
    )


class ApiKeyStore:
    """Create, look up, list and revoke API keys in one DynamoDB table."""

    def __init__(
        self,
        dynamodb_client: Any,
        table: str,
        *,
        cache_seconds: float = REVOCATION_BOUND_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`clock` (epoch seconds) times the cache and key expiry; tests pass a fake one."""
        self._db = dynamodb_client
        self.table = table
        self._clock = clock
        self._cache: FreshCache[ApiKeyRecord] = FreshCache(cache_seconds, clock)  # key_hash -> active record
        self._touched: dict[str, float] = {}  # key_hash -> when last_used_at was last stamped
        self._lock = threading.Lock()

    def create(
        self,
        user_id: str,
        scopes: Iterable[str] = DEFAULT_SCOPES,
        expires_days: int | None = None,
        *,
        plaintext: str | None = None,
    ) -> tuple[str, ApiKeyRecord]:
        """A new key for `user_id`: the plaintext (show it once, it is not stored) and its record.

        `plaintext` brings a key made earlier (the local remote shape keeps its demo key across restarts); it must
        have the shape of a key this store makes, and is refused if another key with its id exists."""
        given = None if plaintext is None else _KEY_PATTERN.match(plaintext)
        if plaintext is not None and given is None:
            raise InvalidArgumentError(
                "an API key is gim_, 12 lowercase hex digits, _ and 43 characters of A-Z a-z 0-9 _ - "
                "(as gpt-image-mcp-keys create prints)."
            )
        if not user_id or not user_id.strip() or len(user_id) > 256:
            raise InvalidArgumentError("user_id must be 1-256 characters.")
        scope_list = [scope.strip() for scope in scopes if scope.strip()]
        if not scope_list:
            raise InvalidArgumentError("give at least one scope, for example 'images'.")
        if expires_days is not None and not 1 <= expires_days <= 3650:
            raise InvalidArgumentError(f"expires_days must be 1-3650, not {expires_days}.")
        from botocore.exceptions import ClientError

        now = datetime.now(UTC)
        expires_at = None if expires_days is None else int((now + timedelta(days=expires_days)).timestamp())
        while True:
            key_id = given.group(1) if given else secrets.token_hex(_KEY_ID_BYTES)
            key = given.group(0) if given else f"{API_KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
            record = ApiKeyRecord(
                key_id=key_id,
                user_id=user_id,
                scopes=scope_list,
                created_at=now.isoformat(timespec="microseconds"),
                expires_at=expires_at,
                key_hash=hash_key(key),
            )
            try:
                self._db.put_item(
                    TableName=self.table,
                    Item=_to_item(record),
                    ConditionExpression="attribute_not_exists(key_hash)",
                )
            except ClientError as error:  # a hash collision: astronomically unlikely, but never overwrite
                if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                if given:
                    raise InvalidArgumentError("that API key exists already; give another or none.") from None
            return key, record

    def lookup(self, plaintext: str) -> ApiKeyRecord | None:
        """The record of an active key; None for a malformed, unknown, revoked or expired key."""
        match = _KEY_PATTERN.match(plaintext)
        if match is None:
            return None
        key_hash = hash_key(plaintext)
        now = self._clock()
        record = self._cache.get(key_hash)
        if record is None:
            response = self._db.get_item(TableName=self.table, Key={"key_hash": {"S": key_hash}}, ConsistentRead=True)
            item = response.get("Item")
            record = None if item is None else _from_item(item)
            if record is not None and record.key_id != match.group(1):
                record = None
            if record is not None and record.is_active(now):
                self._cache.put(key_hash, record)
                self._touch(key_hash, now)
            else:
                self._cache.forget(key_hash)
        if record is None or not record.is_active(now):
            return None
        return record

    def list(self, user_id: str) -> builtins.list[ApiKeyRecord]:
        """Every key of `user_id` (active or not), newest first. The index is eventually consistent."""
        records: builtins.list[ApiKeyRecord] = []
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": INDEX_BY_USER,
            "KeyConditionExpression": "user_id = :user",
            "ExpressionAttributeValues": {":user": {"S": user_id}},
            "ScanIndexForward": False,
        }
        while True:
            page = self._db.query(**request)
            records.extend(_from_item(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return records
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def revoke(self, key_id: str, user_id: str) -> ApiKeyRecord:
        """Revoke a key of `user_id`, named by its id, its `gim_<id>` prefix or the whole key."""
        match = _KEY_ID_PATTERN.match(key_id.strip())
        wanted = match.group(1) if match else None
        record = next((item for item in self.list(user_id) if item.key_id == wanted), None)
        if record is None:
            raise NotFoundError(f"No API key {key_id!r} belongs to user {user_id!r}.")
        from botocore.exceptions import ClientError

        try:
            self._db.update_item(
                TableName=self.table,
                Key={"key_hash": {"S": record.key_hash}},
                UpdateExpression="SET revoked = :true, revoked_at = :now",
                ConditionExpression="user_id = :user",
                ExpressionAttributeValues={
                    ":true": {"BOOL": True},
                    ":now": {"S": datetime.now(UTC).isoformat(timespec="seconds")},
                    ":user": {"S": user_id},
                },
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise NotFoundError(f"No API key {key_id!r} belongs to user {user_id!r}.") from None
            raise
        self._cache.forget(record.key_hash)
        return ApiKeyRecord(
            key_id=record.key_id,
            user_id=record.user_id,
            scopes=record.scopes,
            created_at=record.created_at,
            expires_at=record.expires_at,
            revoked=True,
            key_hash=record.key_hash,
        )

    def clear_cache(self) -> None:
        self._cache.clear()

    def _touch(self, key_hash: str, now: float) -> None:
        """Best effort `last_used_at`, at most once a minute per key: a failure here must never fail the request."""
        with self._lock:
            last = self._touched.get(key_hash)
            if last is not None and 0 <= now - last < TOUCH_INTERVAL_SECONDS:
                return
            if len(self._touched) >= _MAX_TOUCHED_ENTRIES:
                self._touched.clear()
            self._touched[key_hash] = now
        with contextlib.suppress(Exception):
            self._db.update_item(
                TableName=self.table,
                Key={"key_hash": {"S": key_hash}},
                UpdateExpression="SET last_used_at = :now",
                ConditionExpression="attribute_exists(key_hash)",
                ExpressionAttributeValues={
                    ":now": {"S": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds")}
                },
            )
