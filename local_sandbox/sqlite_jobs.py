"""`JobStore` on SQLite, in the history database file (its schema is migration 1 in `sqlite_history`).

Every transition (`core.lifecycle`) is one conditional `UPDATE ... WHERE <the values it relied on>`, so it is
atomic across threads and across processes sharing the file: two servers never both claim a job, and a finished
job never changes again.
"""

from __future__ import annotations

import builtins
import sqlite3
from pathlib import Path
from typing import Any

from gpt_image_mcp.core.jobs import JobPage
from gpt_image_mcp.core.lifecycle import Change, JobRecord
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
    "background",
)
_ALL = ", ".join(_COLUMNS)
_INSERT = f"INSERT INTO jobs ({_ALL}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
_COLUMN_OF = {column.removesuffix("_json"): column for column in _COLUMNS}  # JobRecord field -> column


def _sql(field: str, value: Any) -> Any:
    """A field's value as its column holds it: JSON text for `*_json` columns, 0/1 for flags."""
    if _COLUMN_OF[field].endswith("_json"):
        return _dump(value)
    return int(value) if isinstance(value, bool) else value


def _to_row(record: JobRecord) -> tuple[Any, ...]:
    data = record.to_dict()
    return tuple(_sql(field, data[field]) for field in _COLUMN_OF)


def _from_row(row: sqlite3.Row) -> JobRecord:
    data = {
        column.removesuffix("_json"): _load(row[column]) if column.endswith("_json") else row[column]
        for column in _COLUMNS
    }
    data["cancel_requested"] = bool(data["cancel_requested"])
    data["background"] = bool(data["background"])
    return JobRecord.from_dict(data)


class SQLiteJobStore:
    """One connection behind a lock, like the history store."""

    def __init__(self, db_path: Path, *, wait_seconds: float = DEFAULT_WAIT_SECONDS) -> None:
        self._connection = connect(db_path, wait_seconds)
        self._connection.row_factory = sqlite3.Row
        self._lock = DatabaseGuard(db_path, wait_seconds)

    def close(self) -> None:
        with self._lock:
            self._connection.close()

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
        self,
        user: str,
        *,
        status: JobStatus | None = None,
        tool_name: str | None = None,
        background: bool | None = None,
        limit: int,
        offset: int,
    ) -> JobPage:
        where, params = ["user = ?"], list[str | int]([user])
        if status:
            where.append("status = ?")
            params.append(status)
        if tool_name:
            where.append("tool_name = ?")
            params.append(tool_name)
        if background is not None:
            where.append("background = ?")
            params.append(int(background))
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

    def write(self, job: JobRecord, change: Change) -> bool:
        """One `UPDATE`: the change's fields, where the row still holds what the change expects (`IS`, so that
        an expected NULL matches too)."""
        assignments = ", ".join(f"{_COLUMN_OF[field]} = ?" for field in change.sets)
        conditions = "".join(f" AND {_COLUMN_OF[field]} IS ?" for field in change.expect)
        params = (
            *(_sql(field, value) for field, value in change.sets.items()),
            job.job_id,
            job.user,
            *(_sql(field, value) for field, value in change.expect.items()),
        )
        with self._lock:
            cursor = self._connection.execute(
                f"UPDATE jobs SET {assignments} WHERE job_id = ? AND user = ?{conditions}", params
            )
        return cursor.rowcount == 1

    def cancel_requested(self, user: str, job_id: str) -> bool:
        with self._lock:
            row = self._connection.execute(
                "SELECT cancel_requested, status FROM jobs WHERE job_id = ? AND user = ?", (job_id, user)
            ).fetchone()
        return row is not None and (bool(row["cancel_requested"]) or row["status"] == "cancelled")

    def scan(self, status: JobStatus, limit: int) -> builtins.list[JobRecord]:
        with self._lock:
            rows = self._connection.execute(
                f"SELECT {_ALL} FROM jobs WHERE status = ? ORDER BY created_at, rowid LIMIT ?", (status, limit)
            ).fetchall()
        return [_from_row(row) for row in rows]
