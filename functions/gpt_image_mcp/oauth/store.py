"""The façade's state in one DynamoDB table: registered clients, pending authorizations, codes, refresh tokens, grants
and registration counters, each an item `pk = "<kind>#<id>"` with its JSON in `data` and a TTL in `expires_at`.

Codes and refresh tokens are stored under the SHA-256 of their value (a table dump holds nothing usable). Each state
change that must happen once (approving a consent, finishing a callback, redeeming a code or a refresh token) is a
conditional write, so two containers racing on the same item see exactly one winner. DynamoDB deletes expired items
late, so every read checks `expires_at` itself against the injected clock.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

CLIENT = "client"
PENDING = "authz"
CODE = "code"
REFRESH = "refresh"
GRANT = "grant"
RATE = "rate"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _lost_race(error: Exception) -> bool:
    """A conditional write refused: another container got there first (or the item expired)."""
    response = getattr(error, "response", {})
    return bool(response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


class OAuthStore:
    """Items of one kind each: `put`, `get`, `claim` (a conditional state change), `take` (read-and-delete once),
    `mark` (set a status whether or not the item exists)."""

    def __init__(self, dynamodb_client: Any, table: str, clock: Callable[[], float]) -> None:
        self._db = dynamodb_client
        self.table = table
        self._clock = clock

    def put(self, kind: str, key: str, data: dict[str, Any], ttl_seconds: float, *, status: str = "") -> bool:
        """Write a new item; False (nothing written) when an item with this key exists already."""
        from botocore.exceptions import ClientError

        item = {
            "pk": {"S": f"{kind}#{key}"},
            "data": {"S": json.dumps(data, separators=(",", ":"))},
            "expires_at": {"N": str(int(self._clock() + ttl_seconds))},
        }
        if status:
            item["status"] = {"S": status}
        try:
            self._db.put_item(TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as error:
            if _lost_race(error):
                return False
            raise
        return True

    def read(self, kind: str, key: str) -> tuple[str, dict[str, Any]] | None:
        """The item's status ("" when it has none) and data, or None when it is absent or expired."""
        item = self._db.get_item(TableName=self.table, Key={"pk": {"S": f"{kind}#{key}"}}, ConsistentRead=True).get(
            "Item"
        )
        if item is None or int(item["expires_at"]["N"]) <= self._clock():
            return None
        data: dict[str, Any] = json.loads(item["data"]["S"])
        return item.get("status", {}).get("S", ""), data

    def get(self, kind: str, key: str, *, status: str = "") -> dict[str, Any] | None:
        """The item's data, or None when it is absent, expired, or not in `status` (when given)."""
        found = self.read(kind, key)
        if found is None or (status and found[0] != status):
            return None
        return found[1]

    def claim(
        self, kind: str, key: str, before: str, after: str, *, keep_seconds: float | None = None, **updates: Any
    ) -> dict[str, Any] | None:
        """Move the item from status `before` to `after` (merging `updates` into its data; keeping it
        `keep_seconds` from now, when given) if nothing else did first and it has not expired; its new data, or
        None."""
        from botocore.exceptions import ClientError

        current = self.get(kind, key, status=before)
        if current is None:
            return None
        data = {**current, **updates}
        now = int(self._clock())
        values = {
            ":before": {"S": before},
            ":after": {"S": after},
            ":data": {"S": json.dumps(data, separators=(",", ":"))},
            ":now": {"N": str(now)},
        }
        update = "SET #status = :after, #data = :data"
        if keep_seconds is not None:
            update += ", expires_at = :keep"
            values[":keep"] = {"N": str(int(now + keep_seconds))}
        try:
            self._db.update_item(
                TableName=self.table,
                Key={"pk": {"S": f"{kind}#{key}"}},
                UpdateExpression=update,
                ConditionExpression="#status = :before AND expires_at > :now",
                ExpressionAttributeNames={"#status": "status", "#data": "data"},
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if _lost_race(error):
                return None
            raise
        return data

    def mark(self, kind: str, key: str, status: str, ttl_seconds: float) -> None:
        """Set the item's status, making the item (kept `ttl_seconds`) if it does not exist yet: a revocation
        that must hold even when it lands before the item is written."""
        self._db.update_item(
            TableName=self.table,
            Key={"pk": {"S": f"{kind}#{key}"}},
            UpdateExpression="SET #status = :status, expires_at = if_not_exists(expires_at, :expires), "
            "#data = if_not_exists(#data, :empty)",
            ExpressionAttributeNames={"#status": "status", "#data": "data"},
            ExpressionAttributeValues={
                ":status": {"S": status},
                ":expires": {"N": str(int(self._clock() + ttl_seconds))},
                ":empty": {"S": "{}"},
            },
        )

    def take(self, kind: str, key: str) -> dict[str, Any] | None:
        """Delete the item and return its data, once: a second take (or an expired item) gets None."""
        from botocore.exceptions import ClientError

        try:
            old = self._db.delete_item(
                TableName=self.table,
                Key={"pk": {"S": f"{kind}#{key}"}},
                ConditionExpression="attribute_exists(pk) AND expires_at > :now",
                ExpressionAttributeValues={":now": {"N": str(int(self._clock()))}},
                ReturnValues="ALL_OLD",
            ).get("Attributes")
        except ClientError as error:
            if _lost_race(error):
                return None
            raise
        data: dict[str, Any] = json.loads(old["data"]["S"])
        return data

    def count(self, kind: str, key: str, window_seconds: float) -> int:
        """Add one to the counter of `key` for the current window and return it."""
        window = int(self._clock() // window_seconds)
        response = self._db.update_item(
            TableName=self.table,
            Key={"pk": {"S": f"{kind}#{key}#{window}"}},
            UpdateExpression="ADD hits :one SET expires_at = if_not_exists(expires_at, :expires), #data = :empty",
            ExpressionAttributeNames={"#data": "data"},
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":expires": {"N": str(int((window + 2) * window_seconds))},
                ":empty": {"S": "{}"},
            },
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["hits"]["N"])
