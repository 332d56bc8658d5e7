"""`JobStore` on DynamoDB (low-level client): one item per job, partition `user`, sort key `job_id`.

Table (see template.yaml, JobsTable): key `user` (S) + `job_id` (S); local secondary index `by_created` on `user` +
`created_at` (projection ALL); TTL on `expires_at` (epoch seconds). Every transition is one `UpdateItem` with a
`ConditionExpression` on status, owner and lease, the DynamoDB form of `local_sandbox.sqlite_jobs`' conditional
`UPDATE`s, with the same outcomes: two workers (or one message delivered twice) never both claim a job, only the
owner moves a running job, and a finished job never changes again.

TTL: `expires_at` is set when the job is created and pushed forward when it finishes, so a finished job stays
readable for `ttl_days`. DynamoDB deletes expired items late (moto never does), so every read and every transition
treats an expired item as missing.

Big arguments: an item holds at most 400 KB and a reference image as base64 is often more. Arguments over
`inline_limit` bytes of JSON go to S3 (`users/{user}/.jobs/{job_id}.json`, see `job_blobs`); the item keeps the
key and a preview (the small values). `get`, `claim` and `request_cancel` return the full arguments; `list`,
`recover` and the other scans return the preview, which is all a listing shows.

Worker calls name a job by id alone (the `JobStore` protocol), but the table is keyed by user and id. The worker
learns the user from the queue message and reads the job with `get(user, job_id)` first; the store remembers
which user each job it has seen belongs to (a job's user never changes) and uses that key for `claim` and what
follows. A job id it has never seen raises `LookupError`.

`recover` and `pending` scan the whole table (they need `dynamodb:Scan`, which the functions are not granted):
they exist for the protocol and operator tools. The deployed worker recovers one job at a time from its message,
with `resolve`.
"""

from __future__ import annotations

import builtins
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from gpt_image_mcp.aws.dynamo_history import INDEX_BY_CREATED, query_page
from gpt_image_mcp.aws.job_blobs import S3JobBlobs, checked_job_id
from gpt_image_mcp.core.errors import InvalidArgumentError
from gpt_image_mcp.core.jobs import WAITING, JobPage, JobRecord, interrupted_reason, utc_iso
from gpt_image_mcp.core.requests import JobStatus

DEFAULT_TTL_DAYS = 7
INLINE_ARGUMENTS_LIMIT = 300_000  # bytes of JSON kept in the item; DynamoDB's item limit is 400 KB in all
PREVIEW_VALUE_LIMIT = 1_000  # a value longer than this (as JSON) is left out of the preview of offloaded arguments
_REMEMBERED_JOBS = 10_000  # job id -> user entries kept per container
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

    def set_raw(self, attribute: str, expression: str) -> _Update:
        self.sets.append(f"{self.e.name(attribute)} = {expression}")
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
        self._users: OrderedDict[str, str] = OrderedDict()
        self._users_lock = threading.Lock()

    # -- items ---------------------------------------------------------------------------------

    def _remember(self, job_id: str, user: str) -> None:
        with self._users_lock:
            self._users[job_id] = user
            self._users.move_to_end(job_id)
            while len(self._users) > _REMEMBERED_JOBS:
                self._users.popitem(last=False)

    def _user_of(self, job_id: str) -> str:
        with self._users_lock:
            user = self._users.get(job_id)
        if user is None:
            raise LookupError(f"job {job_id}: its user is not known here; read it with get(user, job_id) first")
        return user

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
        record = JobRecord(
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
        )
        self._remember(record.job_id, record.user)
        return record

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

    def _update(
        self, user: str, job_id: str, e: _Expression, update: _Update, condition: str, *, full: bool = True
    ) -> JobRecord | None:
        """One conditional UpdateItem; the item as it now is, or None when the condition did not hold."""
        from botocore.exceptions import ClientError

        try:
            response = self._db.update_item(
                TableName=self.table,
                Key=self._key(user, job_id),
                UpdateExpression=update.text(),
                ConditionExpression=condition,
                ReturnValues="ALL_NEW",
                **e.request(),
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == _CONDITION_FAILED:
                return None
            raise
        return self._from_item(response["Attributes"], full=full)

    def _held(self, e: _Expression, owner: str) -> str:
        """The owner's transitions: the job is running and `owner` holds its lease."""
        return f"{e.name('status')} = {e.value(_text('running'))} AND {e.name('lease_owner')} = {e.value(_text(owner))}"

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
        self._remember(record.job_id, record.user)

    def get(self, user: str, job_id: str) -> JobRecord | None:
        if not user or not job_id:
            return None
        response = self._db.get_item(TableName=self.table, Key=self._key(user, job_id), ConsistentRead=True)
        item = response.get("Item")
        if item is None or self._expired(item, self._clock()):
            return None
        return self._from_item(item, full=True)

    def list(
        self, user: str, *, status: JobStatus | None = None, tool_name: str | None = None, limit: int, offset: int
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

    def request_cancel(self, user: str, job_id: str) -> JobRecord | None:
        """pending -> cancelled, else running -> cancel_requested, else the job as it is (two conditional
        updates in turn: each is atomic, and a job moves only forward between them)."""
        if not user or not job_id:
            return None
        now = self._clock()
        e = _Expression()
        update = (
            _Update(e)
            .set("status", _text("cancelled"))
            .set("message", _text("Cancelled before it started"))
            .set("updated_at", _text(utc_iso(now)))
            .set("expires_at", self._expires(now))
        )
        condition = f"{e.name('status')} = {e.value(_text('pending'))} AND {self._live(e, now)}"
        cancelled = self._update(user, job_id, e, update, condition)
        if cancelled is not None:
            return cancelled
        e = _Expression()
        update = (
            _Update(e)
            .set("cancel_requested", {"BOOL": True})
            .set("message", _text("Cancelling"))
            .set("updated_at", _text(utc_iso(now)))
        )
        condition = f"{e.name('status')} = {e.value(_text('running'))} AND {self._live(e, now)}"
        asked = self._update(user, job_id, e, update, condition)
        return asked if asked is not None else self.get(user, job_id)

    # -- what a worker calls -------------------------------------------------------------------

    def claim(self, job_id: str, owner: str, lease_seconds: float, max_attempts: int) -> JobRecord | None:
        user = self._user_of(job_id)
        now = self._clock()
        e = _Expression()
        update = (
            _Update(e)
            .set("status", _text("running"))
            .set("lease_owner", _text(owner))
            .set("lease_expires", _number(now + lease_seconds))
            .set_raw("attempts", f"{e.name('attempts')} + {e.value(_number(1))}")
            .set("progress", _number(0))
            .set("message", _text("Started"))
            .set("updated_at", _text(utc_iso(now)))
            .remove("error")
        )
        status, at = e.name("status"), e.value(_number(now))
        condition = (
            f"attribute_exists({e.name('job_id')}) AND {self._live(e, now)} "
            f"AND {e.name('cancel_requested')} = {e.value({'BOOL': False})} "
            f"AND ({status} = {e.value(_text('pending'))} OR ({status} = {e.value(_text('running'))} "
            f"AND {e.name('lease_expires')} < {at} AND {e.name('attempts')} < {e.value(_number(max_attempts))}))"
        )
        return self._update(user, job_id, e, update, condition)

    def heartbeat(
        self,
        job_id: str,
        owner: str,
        lease_seconds: float,
        *,
        progress: float | None = None,
        message: str | None = None,
    ) -> bool:
        user = self._user_of(job_id)
        now = self._clock()
        e = _Expression()
        update = _Update(e).set("lease_expires", _number(now + lease_seconds))
        if progress is not None:
            update.set("progress", _number(progress))
        if message is not None:
            update.set("message", _text(message))
        if progress is not None or message is not None:
            update.set("updated_at", _text(utc_iso(now)))
        return self._update(user, job_id, e, update, self._held(e, owner), full=False) is not None

    def complete(self, job_id: str, owner: str, result: dict[str, Any], history_id: str) -> bool:
        e = _Expression()
        update = (
            _Update(e)
            .set("status", _text("completed"))
            .set("progress", _number(1))
            .set("message", _text("Done"))
            .set("result", _json(result))
            .set("history_id", _text(history_id))
        )
        return self._finish(job_id, owner, e, update, terminal=True)

    def fail(self, job_id: str, owner: str, error: str) -> bool:
        e = _Expression()
        update = _Update(e).set("status", _text("failed")).set("message", _text("Failed")).set("error", _text(error))
        return self._finish(job_id, owner, e, update, terminal=True)

    def mark_cancelled(self, job_id: str, owner: str) -> bool:
        e = _Expression()
        message = "Cancelled while running; the request was stopped and nothing was saved"
        update = _Update(e).set("status", _text("cancelled")).set("message", _text(message))
        return self._finish(job_id, owner, e, update, terminal=True)

    def release(self, job_id: str, owner: str, reason: str | None = None) -> bool:
        e = _Expression()
        if reason is None:
            message = f"{WAITING} (the server stopped while it ran; it resumes when the server starts)"
        else:
            message = f"{WAITING} to retry after a temporary error: {reason}"
        update = (
            _Update(e)
            .set("status", _text("pending"))
            .set_raw("attempts", f"{e.name('attempts')} - {e.value(_number(1))}")
            .set("progress", _number(0))
            .set("message", _text(message))
        )
        if reason is None:
            update.remove("error")
        else:
            update.set("error", _text(reason))
        return self._finish(job_id, owner, e, update, terminal=False)

    def _finish(self, job_id: str, owner: str, e: _Expression, update: _Update, *, terminal: bool) -> bool:
        """An owner's last transition: also gives up the lease; a finished job is kept `ttl_days` from now."""
        user = self._user_of(job_id)
        now = self._clock()
        update.set("updated_at", _text(utc_iso(now))).remove("lease_owner", "lease_expires")
        if terminal:
            update.set("expires_at", self._expires(now))
        return self._update(user, job_id, e, update, self._held(e, owner), full=False) is not None

    def is_cancel_requested(self, job_id: str) -> bool:
        user = self._user_of(job_id)
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

    def resolve(self, record: JobRecord, max_attempts: int, *, give_up: str | None = None) -> JobRecord | None:
        """What `recover` does to one abandoned running job, read as `record`: cancelled if a cancel was asked,
        else pending again while attempts < max_attempts, else failed with the reason. With `give_up` (a queue
        gave up delivering it), a pending or abandoned job is failed with that reason instead of resumed.

        Applies only if the job is still as read (same status, owner and lease: a renewed lease means its worker
        is alive after all). Returns the job as it now is, or None when it changed in between."""
        now = self._clock()
        e = _Expression()
        status = e.name("status")
        if record.status == "running":
            owner, expires = e.name("lease_owner"), e.name("lease_expires")
            seen_owner = (
                f"attribute_not_exists({owner})"
                if record.lease_owner is None
                else f"{owner} = {e.value(_text(record.lease_owner))}"
            )
            seen_lease = (
                f"attribute_not_exists({expires})"
                if record.lease_expires is None
                else f"{expires} = {e.value(_number(record.lease_expires))}"
            )
            condition = f"{status} = {e.value(_text('running'))} AND {seen_owner} AND {seen_lease}"
        elif record.status == "pending" and give_up is not None:
            condition = f"{status} = {e.value(_text('pending'))}"
        else:
            return None
        update = _Update(e)
        if record.cancel_requested:
            update.set("status", _text("cancelled")).set("message", _text("Cancelled (the server had stopped)"))
            update.set("expires_at", self._expires(now))
        elif give_up is None and record.attempts < max_attempts:
            message = f"{WAITING}: resuming, {interrupted_reason(record.attempts)}"
            update.set("status", _text("pending")).set("progress", _number(0)).set("message", _text(message))
        else:
            reason = give_up or f"{interrupted_reason(record.attempts).capitalize()}; start a new job to try again."
            update.set("status", _text("failed")).set("message", _text("Failed")).set("error", _text(reason))
            update.set("expires_at", self._expires(now))
        update.set("updated_at", _text(utc_iso(now))).remove("lease_owner", "lease_expires")
        condition += f" AND {self._live(e, now)}"
        return self._update(record.user, record.job_id, e, update, condition)

    def recover(self, abandoned: Callable[[JobRecord], bool], max_attempts: int) -> builtins.list[JobRecord]:
        """Scans every user's running jobs (operator use: needs dynamodb:Scan); see `resolve`."""
        changed: list[JobRecord] = []
        for record in self._scan("running"):
            if abandoned(record):
                after = self.resolve(record, max_attempts)
                if after is not None:
                    changed.append(after)
        return changed

    def pending(self, limit: int) -> builtins.list[str]:
        """Scans every user's pending jobs, oldest first (operator use: needs dynamodb:Scan)."""
        found = sorted(self._scan("pending"), key=lambda record: record.created_at)
        return [record.job_id for record in found[: max(limit, 0)]]

    def _scan(self, status: JobStatus) -> Iterator[JobRecord]:
        e = _Expression()
        request: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": f"{e.name('status')} = {e.value(_text(status))} AND {self._live(e, self._clock())}",
            "ConsistentRead": True,
            **e.request(),
        }
        start_key: dict[str, Any] | None = None
        while True:
            page = self._db.scan(**request, **({"ExclusiveStartKey": start_key} if start_key else {}))
            for item in page.get("Items", []):
                yield self._from_item(item, full=False)
            start_key = page.get("LastEvaluatedKey")
            if start_key is None:
                return
