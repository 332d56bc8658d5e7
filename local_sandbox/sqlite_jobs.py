"""`JobStore` on SQLite, in the history database file (its schema is migration 1 in `sqlite_history`).

Every transition is one conditional `UPDATE ... RETURNING`, so it is atomic across threads and across
processes sharing the file: two servers never both claim a job, and a finished job never changes again.
"""

from __future__ import annotations

import builtins
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gpt_image_mcp.core.jobs import WAITING, JobPage, JobRecord, interrupted_reason, utc_iso
from gpt_image_mcp.core.requests import JobStatus
from local_sandbox.sqlite_history import DEFAULT_WAIT_SECONDS, DatabaseGuard, _dump, _load, connect

_COLUMNS = (
    "job_id",
    "user",
    "tool_name",
    "arguments_json",
    "status",
    "progress",
    "message",
    "created_at",
    "updated_at",
    "attempts",
    "error",
    "result_json",
    "history_id",
    "lease_owner",
    "lease_expires",
    "cancel_requested",
)
_ALL = ", ".join(_COLUMNS)
_INSERT = f"INSERT INTO jobs ({_ALL}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
_HELD = "job_id = ? AND status = 'running' AND lease_owner = ?"  # the owner's transitions
_RELEASED = "lease_owner = NULL, lease_expires = NULL"


def _to_row(record: JobRecord) -> tuple[Any, ...]:
    data = record.to_dict()
    data["cancel_requested"] = int(record.cancel_requested)
    return tuple(
        _dump(data[column.removesuffix("_json")]) if column.endswith("_json") else data[column] for column in _COLUMNS
    )


def _from_row(row: sqlite3.Row) -> JobRecord:
    data = {
        column.removesuffix("_json"): _load(row[column]) if column.endswith("_json") else row[column]
        for column in _COLUMNS
    }
    data["cancel_requested"] = bool(data["cancel_requested"])
    return JobRecord.from_dict(data)


class SQLiteJobStore:
    """One connection behind a lock, like the history store; `clock` (epoch seconds) is for tests."""

    def __init__(
        self, db_path: Path, *, clock: Callable[[], float] = time.time, wait_seconds: float = DEFAULT_WAIT_SECONDS
    ) -> None:
        self._connection = connect(db_path, wait_seconds)
        self._connection.row_factory = sqlite3.Row
        self._lock = DatabaseGuard(db_path, wait_seconds)
        self._clock = clock

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front, so a read-then-write sequence sees no other writer."""
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def _update(self, assignments: str, condition: str, params: tuple[Any, ...]) -> JobRecord | None:
        """One conditional UPDATE; the changed row, or None when the condition did not hold."""
        with self._lock:
            rows = self._connection.execute(
                f"UPDATE jobs SET {assignments} WHERE {condition} RETURNING {_ALL}", params
            ).fetchall()  # fetch all: the statement (and its implicit transaction) ends only then
        return _from_row(rows[0]) if rows else None

    def create(self, record: JobRecord) -> None:
        with self._lock:
            self._connection.execute(_INSERT, _to_row(record))

    def get(self, user: str, job_id: str) -> JobRecord | None:
        with self._lock:
            row = self._connection.execute(
                f"SELECT {_ALL} FROM jobs WHERE job_id = ? AND user = ?", (job_id, user)
            ).fetchone()
        return None if row is None else _from_row(row)

    def list(
        self, user: str, *, status: JobStatus | None = None, tool_name: str | None = None, limit: int, offset: int
    ) -> JobPage:
        where, params = ["user = ?"], [user]
        if status:
            where.append("status = ?")
            params.append(status)
        if tool_name:
            where.append("tool_name = ?")
            params.append(tool_name)
        condition = " AND ".join(where)
        with self._lock:
            self._connection.execute("BEGIN")  # one snapshot for the page and its total
            try:
                rows = self._connection.execute(
                    f"SELECT {_ALL} FROM jobs WHERE {condition} ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
                    (*params, limit, offset),
                ).fetchall()
                total: int = self._connection.execute(
                    f"SELECT COUNT(*) FROM jobs WHERE {condition}", params
                ).fetchone()[0]
            finally:
                self._connection.execute("COMMIT")
        return JobPage([_from_row(row) for row in rows], total)

    def claim(self, job_id: str, owner: str, lease_seconds: float, max_attempts: int) -> JobRecord | None:
        now = self._clock()
        return self._update(
            "status = 'running', lease_owner = ?, lease_expires = ?, attempts = attempts + 1, progress = 0, "
            "message = 'Started', error = NULL, updated_at = ?",
            "job_id = ? AND cancel_requested = 0 AND (status = 'pending' OR "
            "(status = 'running' AND lease_expires < ? AND attempts < ?))",
            (owner, now + lease_seconds, utc_iso(now), job_id, now, max_attempts),
        )

    def heartbeat(
        self,
        job_id: str,
        owner: str,
        lease_seconds: float,
        *,
        progress: float | None = None,
        message: str | None = None,
    ) -> bool:
        now = self._clock()
        params: tuple[Any, ...]
        if progress is None and message is None:
            assignments, params = "lease_expires = ?", (now + lease_seconds,)
        else:
            assignments = "lease_expires = ?, progress = COALESCE(?, progress), message = COALESCE(?, message), "
            assignments += "updated_at = ?"
            params = (now + lease_seconds, progress, message, utc_iso(now))
        return self._update(assignments, _HELD, (*params, job_id, owner)) is not None

    def complete(self, job_id: str, owner: str, result: dict[str, Any], history_id: str) -> bool:
        return self._finish(
            "status = 'completed', progress = 1, message = 'Done', result_json = ?, history_id = ?",
            (_dump(result), history_id),
            job_id,
            owner,
        )

    def fail(self, job_id: str, owner: str, error: str) -> bool:
        return self._finish("status = 'failed', message = 'Failed', error = ?", (error,), job_id, owner)

    def mark_cancelled(self, job_id: str, owner: str) -> bool:
        message = "Cancelled while running; the request was stopped and nothing was saved"
        return self._finish("status = 'cancelled', message = ?", (message,), job_id, owner)

    def release(self, job_id: str, owner: str, reason: str | None = None) -> bool:
        if reason is None:
            message = f"{WAITING} (the server stopped while it ran; it resumes when the server starts)"
        else:
            message = f"{WAITING} to retry after a temporary error: {reason}"
        return self._finish(
            "status = 'pending', attempts = MAX(attempts - 1, 0), progress = 0, message = ?, error = ?",
            (message, reason),
            job_id,
            owner,
        )

    def _finish(self, assignments: str, params: tuple[Any, ...], job_id: str, owner: str) -> bool:
        """An owner's last transition: also gives up the lease."""
        now = utc_iso(self._clock())
        changed = self._update(f"{assignments}, {_RELEASED}, updated_at = ?", _HELD, (*params, now, job_id, owner))
        return changed is not None

    def request_cancel(self, user: str, job_id: str) -> JobRecord | None:
        now = utc_iso(self._clock())
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET status = 'cancelled', message = 'Cancelled before it started', updated_at = ? "
                "WHERE job_id = ? AND user = ? AND status = 'pending'",
                (now, job_id, user),
            )
            db.execute(
                "UPDATE jobs SET cancel_requested = 1, message = 'Cancelling', updated_at = ? "
                "WHERE job_id = ? AND user = ? AND status = 'running'",
                (now, job_id, user),
            )
            row = db.execute(f"SELECT {_ALL} FROM jobs WHERE job_id = ? AND user = ?", (job_id, user)).fetchone()
        return None if row is None else _from_row(row)

    def is_cancel_requested(self, job_id: str) -> bool:
        with self._lock:
            row = self._connection.execute(
                "SELECT cancel_requested, status FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
        return row is not None and (bool(row["cancel_requested"]) or row["status"] == "cancelled")

    def recover(self, abandoned: Callable[[JobRecord], bool], max_attempts: int) -> builtins.list[JobRecord]:
        now = utc_iso(self._clock())
        changed: list[JobRecord] = []
        with self._transaction() as db:
            running = [_from_row(row) for row in db.execute(f"SELECT {_ALL} FROM jobs WHERE status = 'running'")]
            for record in filter(abandoned, running):
                if record.cancel_requested:
                    assignments = "status = 'cancelled', message = 'Cancelled (the server had stopped)'"
                    params: tuple[Any, ...] = ()
                elif record.attempts < max_attempts:
                    assignments = "status = 'pending', progress = 0, message = ?"
                    params = (f"{WAITING}: resuming, {interrupted_reason(record.attempts)}",)
                else:
                    assignments = "status = 'failed', message = 'Failed', error = ?"
                    params = (f"{interrupted_reason(record.attempts).capitalize()}; start a new job to try again.",)
                rows = db.execute(
                    f"UPDATE jobs SET {assignments}, {_RELEASED}, updated_at = ? "
                    f"WHERE job_id = ? AND status = 'running' AND lease_owner IS ? RETURNING {_ALL}",
                    (*params, now, record.job_id, record.lease_owner),
                ).fetchall()
                changed += [_from_row(row) for row in rows]
        return changed

    def pending(self, limit: int) -> builtins.list[str]:
        with self._lock:
            rows = self._connection.execute(
                "SELECT job_id FROM jobs WHERE status = 'pending' ORDER BY created_at, rowid LIMIT ?", (limit,)
            ).fetchall()
        return [row["job_id"] for row in rows]
