"""`JobStore` on DynamoDB (low-level client): one item per job, partition `user`, sort key `job_id`.

Table (see template.yaml, JobsTable): key `user` (S) + `job_id` (S); local secondary index `by_created` on `user` +
`created_at` (projection ALL); TTL on `expires_at` (epoch seconds). Every transition (`core.lifecycle`) is one
`UpdateItem` with a `ConditionExpression` on the values it relied on, the DynamoDB form of
`local_sandbox.sqlite_jobs`' conditional `UPDATE`, with the same outcomes: two workers (or one message delivered
twice) never both claim a job, only the owner moves a running job, and a finished job never changes again.

TTL: `expires_at` is set when the job is created and pushed forward when it finishes, so a finished job stays
readable for `ttl_days`. DynamoDB deletes expired items late (moto never does), so every read and every transition
treats an expired item as missing.

Big arguments: an item holds at most 400 KB and a reference image as base64 is often more. Arguments over
`inline_limit` bytes of JSON go to S3 (`users/{user}/.jobs/{job_id}.json`, see `job_blobs`); the item keeps the
key and a preview (the small values). `get` returns the full arguments; `list` and `scan` return the preview,
which is all a listing shows.

`scan` reads the whole table (it needs `dynamodb:Scan`, which the functions are not granted): it exists for the
protocol and operator tools. The deployed worker recovers one job at a time, from its queue message.
"""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from gpt_image_mcp.aws.dynamo_history import INDEX_BY_CREATED, query_page
from gpt_image_mcp.aws.job_blobs import S3JobBlobs, checked_job_id
from gpt_image_mcp.core.errors import InvalidArgumentError
from gpt_image_mcp.core.jobs import JobPage
from gpt_image_mcp.core.lifecycle import Change, JobRecord
from gpt_image_mcp.core.requests import JobStatus

DEFAULT_TTL_DAYS = 7
INLINE_ARGUMENTS_LIMIT = 300_000  # bytes of JSON kept in the item; DynamoDB's item limit is 400 KB in all
PREVIEW_VALUE_LIMIT = 1_000  # a value longer than this (as JSON) is left out of the preview of offloaded arguments
_CONDITION_FAILED = "ConditionalCheckFailedException"

AttributeValue = dict[str, Any]


def _number(value: float) -> AttributeValue:
    """A DynamoDB number; floats go through their shortest repr, so they read back exactly."""
    if isinstance(value, int):
        return {"N": str(value)}
    return {"N": format(Decimal(repr(float(value))), "f")}


def _text(value: str) -> AttributeValue:
    return {"S": value}


def _json(value: Any) -> AttributeValue:
    return {"S": json.dumps(value, separators=(",", ":"), ensure_ascii=False)}


def _attribute(value: str | bool | float | dict[str, Any]) -> AttributeValue:
    """A job field's value as an attribute: flags as BOOL, numbers as N, the result as JSON text."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, str):
        return _text(value)
    return _json(value)


def _preview(arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        name: value
        for name, value in arguments.items()
        if len(json.dumps(value, ensure_ascii=False)) <= PREVIEW_VALUE_LIMIT
    }


class _Expression:
    """Placeholders for one request: only the names and values an expression uses are sent (DynamoDB refuses
    unused ones), and every attribute name is aliased, so reserved words (status, user, ...) need no care."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, AttributeValue] = {}

    def name(self, attribute: str) -> str:
        placeholder = f"#{attribute}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value: AttributeValue) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = value
        return placeholder

    def request(self) -> dict[str, Any]:
        request: dict[str, Any] = {"ExpressionAttributeNames": self.names}
        if self.values:
            request["ExpressionAttributeValues"] = self.values
        return request


class _Update:
    """An UpdateExpression built from SET and REMOVE parts."""

    def __init__(self, expression: _Expression) -> None:
        self.e = expression
        self.sets: list[str] = []
        self.removes: list[str] = []

    def set(self, attribute: str, value: AttributeValue) -> _Update:
        self.sets.append(f"{self.e.name(attribute)} = {self.e.value(value)}")
        return self

    def remove(self, *attributes: str) -> _Update:
        self.removes += [self.e.name(attribute) for attribute in attributes]
        return self

    def text(self) -> str:
        parts = []
        if self.sets:
            parts.append("SET " + ", ".join(self.sets))
        if self.removes:
            parts.append("REMOVE " + ", ".join(self.removes))
        return " ".join(parts)


class DynamoJobStore:
    """Jobs of every user in one table; user calls touch only the caller's partition."""

    query_page_size: int | None = None  # items read per Query request (None: DynamoDB's 1 MB pages); tests lower it

    def __init__(
        self,
        dynamodb_client: Any,
        table: str,
        blobs: S3JobBlobs | None = None,
        ttl_days: int = DEFAULT_TTL_DAYS,
        *,
        clock: Callable[[], float] = time.time,
        inline_limit: int = INLINE_ARGUMENTS_LIMIT,
    ) -> None:
        self._db = dynamodb_client
        self.table = table
        self.blobs = blobs
        self.ttl_seconds = int(ttl_days) * 86_400
        self.inline_limit = inline_limit
        self._clock = clock

    # -- items ---------------------------------------------------------------------------------

    @staticmethod
    def _key(user: str, job_id: str) -> dict[str, AttributeValue]:
        return {"user": _text(user), "job_id": _text(job_id)}

    def _expires(self, now: float) -> AttributeValue:
        return _number(int(now) + self.ttl_seconds)

    def _to_item(self, record: JobRecord, now: float) -> dict[str, AttributeValue]:
        item: dict[str, AttributeValue] = {
            "job_id": _text(record.job_id),
            "user": _text(record.user),
            "tool_name": _text(record.tool_name),
            "status": _text(record.status),
            "created_at": _text(record.created_at),
            "updated_at": _text(record.updated_at),
            "message": _text(record.message),
            "progress": _number(record.progress),
            "attempts": _number(record.attempts),
            "cancel_requested": {"BOOL": record.cancel_requested},
            "background": {"BOOL": record.background},
            "expires_at": self._expires(now),
        }
        for name in ("error", "history_id", "lease_owner"):
            value = getattr(record, name)
            if value is not None:
                item[name] = _text(value)
        if record.lease_expires is not None:
            item["lease_expires"] = _number(record.lease_expires)
        if record.result is not None:
            item["result"] = _json(record.result)
        arguments = _json(record.arguments)
        size = len(arguments["S"].encode("utf-8"))
        if size <= self.inline_limit:
            item["arguments"] = arguments
        elif self.blobs is None:
            raise InvalidArgumentError(
                f"The job's parameters are {size / 1_000_000:.1f} MB, over the {self.inline_limit // 1000} KB a job "
                "can hold here. Upload the image first (upload link) and pass reference_image_path instead of base64."
            )
        else:
            name = f"{checked_job_id(record.job_id)}.json"
            key = self.blobs.put(record.user, name, arguments["S"].encode("utf-8"), "application/json")
            item["arguments_key"] = _text(key)
            item["arguments_preview"] = _json(_preview(record.arguments))
        return item

    def _from_item(self, item: dict[str, AttributeValue], *, full: bool) -> JobRecord:
        def text(name: str) -> str | None:
            value = item.get(name)
            return None if value is None else str(value["S"])

        if "arguments" in item:
            arguments = json.loads(item["arguments"]["S"])
        elif full:
            arguments = self._load_arguments(item)
        else:
            arguments = json.loads(item["arguments_preview"]["S"])
        return JobRecord(
            job_id=item["job_id"]["S"],
            user=item["user"]["S"],
            tool_name=item["tool_name"]["S"],
            arguments=arguments,
            status=item["status"]["S"],
            created_at=item["created_at"]["S"],
            updated_at=item["updated_at"]["S"],
            progress=float(item["progress"]["N"]),
            message=item["message"]["S"],
            attempts=int(item["attempts"]["N"]),
            error=text("error"),
            result=json.loads(item["result"]["S"]) if "result" in item else None,
            history_id=text("history_id"),
            lease_owner=text("lease_owner"),
            lease_expires=float(item["lease_expires"]["N"]) if "lease_expires" in item else None,
            cancel_requested=bool(item.get("cancel_requested", {}).get("BOOL", False)),
            background=bool(item.get("background", {}).get("BOOL", True)),  # items from before the flag: background
        )

    def _load_arguments(self, item: dict[str, AttributeValue]) -> dict[str, Any]:
        """The offloaded arguments; the preview when the object is gone (the bucket's lifecycle removed it)."""
        user, job_id = item["user"]["S"], item["job_id"]["S"]
        data = self.blobs.get(user, f"{checked_job_id(job_id)}.json") if self.blobs is not None else None
        if data is None:
            preview: dict[str, Any] = json.loads(item["arguments_preview"]["S"])
            return preview
        loaded: dict[str, Any] = json.loads(data)
        return loaded

    def _live(self, e: _Expression, now: float) -> str:
        """An item whose TTL has passed counts as deleted."""
        expires = e.name("expires_at")
        return f"(attribute_not_exists({expires}) OR {expires} > {e.value(_number(now))})"

    def _expired(self, item: dict[str, AttributeValue], now: float) -> bool:
        return "expires_at" in item and float(item["expires_at"]["N"]) <= now

    # -- what a user calls ---------------------------------------------------------------------

    def create(self, record: JobRecord) -> None:
        now = self._clock()
        e = _Expression()
        self._db.put_item(
            TableName=self.table,
            Item=self._to_item(record, now),
            ConditionExpression=f"attribute_not_exists({e.name('job_id')})",
            **e.request(),
        )

    def get(self, user: str, job_id: str) -> JobRecord | None:
        if not user or not job_id:
            return None
        response = self._db.get_item(TableName=self.table, Key=self._key(user, job_id), ConsistentRead=True)
        item = response.get("Item")
        if item is None or self._expired(item, self._clock()):
            return None
        return self._from_item(item, full=True)

    def list(
        self,
        user: str,
        *,
        status: JobStatus | None = None,
        tool_name: str | None = None,
        background: bool | None = None,
        limit: int,
        offset: int,
    ) -> JobPage:
        """Newest first (the `by_created` index); the total is counted by reading the rest of the partition,
        as the history store does."""
        if not user:
            return JobPage([], 0)
        e = _Expression()
        filters = [self._live(e, self._clock())]
        if status:
            filters.append(f"{e.name('status')} = {e.value(_text(status))}")
        if tool_name:
            filters.append(f"{e.name('tool_name')} = {e.value(_text(tool_name))}")
        if background is not None:
            flag, value = e.name("background"), e.value({"BOOL": background})
            filters.append(f"({flag} = {value} OR attribute_not_exists({flag}))" if background else f"{flag} = {value}")
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": INDEX_BY_CREATED,
            "KeyConditionExpression": f"{e.name('user')} = {e.value(_text(user))}",
            "FilterExpression": " AND ".join(filters),
            "ScanIndexForward": False,
            "ConsistentRead": True,
            **e.request(),
        }
        if self.query_page_size:
            request["Limit"] = self.query_page_size
        items, total = query_page(self._db, request, offset=offset, limit=limit)
        return JobPage([self._from_item(item, full=False) for item in items], total)

    # -- transitions and what a worker reads ----------------------------------------------------

    def write(self, job: JobRecord, change: Change) -> bool:
        """One conditional UpdateItem; a change that finishes the job also keeps it `ttl_days` from now."""
        from botocore.exceptions import ClientError

        now = self._clock()
        e = _Expression()
        update = _Update(e)
        for field, value in change.sets.items():
            if value is None:
                update.remove(field)
            else:
                update.set(field, _attribute(value))
        if change.finishes:
            update.set("expires_at", self._expires(now))
        conditions = [f"attribute_exists({e.name('job_id')})", self._live(e, now)]
        for field, value in change.expect.items():
            name = e.name(field)
            conditions.append(
                f"attribute_not_exists({name})" if value is None else f"{name} = {e.value(_attribute(value))}"
            )
        try:
            self._db.update_item(
                TableName=self.table,
                Key=self._key(job.user, job.job_id),
                UpdateExpression=update.text(),
                ConditionExpression=" AND ".join(conditions),
                **e.request(),
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == _CONDITION_FAILED:
                return False
            raise
        return True

    def cancel_requested(self, user: str, job_id: str) -> bool:
        e = _Expression()
        response = self._db.get_item(
            TableName=self.table,
            Key=self._key(user, job_id),
            ConsistentRead=True,
            ProjectionExpression=", ".join(e.name(n) for n in ("cancel_requested", "status", "expires_at")),
            **e.request(),
        )
        item = response.get("Item")
        if item is None or self._expired(item, self._clock()):
            return False
        return bool(item.get("cancel_requested", {}).get("BOOL", False)) or item["status"]["S"] == "cancelled"

    def scan(self, status: JobStatus, limit: int) -> builtins.list[JobRecord]:
        """Every user's jobs in `status`, oldest first (operator use: needs dynamodb:Scan)."""
        e = _Expression()
        request: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": f"{e.name('status')} = {e.value(_text(status))} AND {self._live(e, self._clock())}",
            "ConsistentRead": True,
            **e.request(),
        }
        found: list[JobRecord] = []
        start_key: dict[str, Any] | None = None
        while True:
            page = self._db.scan(**request, **({"ExclusiveStartKey": start_key} if start_key else {}))
            found += [self._from_item(item, full=False) for item in page.get("Items", [])]
            start_key = page.get("LastEvaluatedKey")
            if start_key is None:
                return sorted(found, key=lambda record: record.created_at)[: max(limit, 0)]
