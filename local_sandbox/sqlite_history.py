"""`HistoryStore` on SQLite, plus the database's connection and schema so other local stores can share the file.

The schema is versioned with `PRAGMA user_version`: `MIGRATIONS[n]` takes the database from version n to n + 1.
Another table is added by appending a migration (1: jobs, see `sqlite_jobs`; 2: which jobs are background ones);
every `connect` brings the file up to date. SQLite's own errors (a database locked past the wait, damaged,
read-only, on a full disk) never reach a user raw: `DatabaseGuard` turns each into a `StorageError` that names the
file and what to do.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from gpt_image_mcp.core.errors import ConfigurationError, StorageError
from gpt_image_mcp.core.storage import HistoryPage, HistoryRecord

DEFAULT_WAIT_SECONDS = 10.0  # how long a write waits for another program's lock (SQLite's busy timeout)
ELSEWHERE = "or set HISTORY_DB_PATH to another file"
# SQLite's primary result codes (the low byte of `sqlite_errorcode`).
_BUSY, _LOCKED, _READONLY, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 5, 6, 8, 11, 13, 14, 26

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE history (
            uuid TEXT PRIMARY KEY,
            user TEXT NOT NULL,
            tool_name TEXT NOT NULL,
            prompt TEXT NOT NULL,
            model TEXT NOT NULL,
            parameters_json TEXT NOT NULL,
            param_hash TEXT NOT NULL,
            created_at TEXT NOT NULL,
            images_json TEXT NOT NULL,
            usage_json TEXT,
            cost_json TEXT
        )""",
        "CREATE INDEX history_user_created ON history (user, created_at DESC)",
    ),
    (
        """CREATE TABLE jobs (
            job_id TEXT PRIMARY KEY,
            user TEXT NOT NULL,
            tool_name TEXT NOT NULL,
            arguments_json TEXT NOT NULL,
            status TEXT NOT NULL,
            progress REAL NOT NULL DEFAULT 0,
            message TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            result_json TEXT,
            history_id TEXT,
            lease_owner TEXT,
            lease_expires REAL,
            cancel_requested INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX jobs_user_created ON jobs (user, created_at DESC)",
        "CREATE INDEX jobs_status ON jobs (status, created_at)",
    ),
    ("ALTER TABLE jobs ADD COLUMN background INTEGER NOT NULL DEFAULT 1",),  # 0: a synchronous call's job
)
_COLUMNS = (
    "uuid",
    "user",
    "tool_name",
    "prompt",
    "model",
    "parameters_json",
    "param_hash",
    "created_at",
    "images_json",
    "usage_json",
    "cost_json",
)
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM history"
_INSERT = (
    f"INSERT INTO history ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)}) "
    "ON CONFLICT (uuid) DO NOTHING"
)


def database_problem(error: sqlite3.Error, db_path: Path, wait_seconds: float) -> StorageError:
    """What went wrong with the database file, in words a person can act on."""
    code = getattr(error, "sqlite_errorcode", 0) & 0xFF
    if code in (_BUSY, _LOCKED) or "locked" in str(error):
        text = (
            f"The history database {db_path} is locked by another program and stayed locked past the "
            f"{wait_seconds:g} s wait. Close what holds it (a sqlite3 shell, a backup or sync tool, another server "
            f"writing a long transaction) and try again, {ELSEWHERE}."
        )
    elif code == _FULL:
        text = f"The disk holding the history database {db_path} is full. Free some space there, {ELSEWHERE}."
    elif code == _READONLY:
        text = (
            f"The history database {db_path} is read-only (permissions, or a read-only disk). Make it writable, "
            f"{ELSEWHERE}."
        )
    elif code in (_CORRUPT, _NOTADB):
        text = (
            f"The history database {db_path} is damaged ({error}). Move it aside (a new one is made in its place), "
            f"{ELSEWHERE}."
        )
    elif code == _CANTOPEN:
        text = (
            f"The history database {db_path} cannot be opened ({error}): this user must be able to read and write "
            f"it and its folder, {ELSEWHERE}."
        )
    else:
        text = f"The history database {db_path} failed ({type(error).__name__}: {error}). {ELSEWHERE.capitalize()}."
    return StorageError(text)


class DatabaseGuard:
    """The lock that serialises a store's shared connection; it also turns SQLite's errors into `StorageError`s."""

    def __init__(self, db_path: Path, wait_seconds: float) -> None:
        self.db_path = db_path
        self.wait_seconds = wait_seconds
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._lock.release()
        if isinstance(exc, sqlite3.Error):
            raise database_problem(exc, self.db_path, self.wait_seconds) from exc


def connect(db_path: Path, wait_seconds: float = DEFAULT_WAIT_SECONDS) -> sqlite3.Connection:
    """Open `db_path` (creating it) in WAL mode and migrate it; usable from any thread, so guard it with a lock.
    A file that cannot be opened, is damaged or stays locked raises `StorageError` naming it."""
    try:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StorageError(
            f"The folder of the history database {db_path} cannot be made ({error}); {ELSEWHERE}."
        ) from error
    try:
        # timeout= is SQLite's busy_timeout; isolation_level=None: no implicit transactions, each opened explicitly.
        connection = sqlite3.connect(db_path, timeout=wait_seconds, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        _migrate(connection, db_path)
    except sqlite3.Error as error:
        raise database_problem(error, db_path, wait_seconds) from error
    return connection


def _migrate(connection: sqlite3.Connection, db_path: Path) -> None:
    """Apply the missing migrations in one write transaction, so two processes opening the file do not race."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        version: int = connection.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise ConfigurationError(
                f"The database {db_path} has schema version {version}, newer than this server knows "
                f"({len(MIGRATIONS)}); upgrade the server or set HISTORY_DB_PATH to another file."
            )
        for statements in MIGRATIONS[version:]:
            for statement in statements:
                connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def _to_row(record: HistoryRecord) -> tuple[Any, ...]:
    """Column `x_json` holds field `x` as JSON (SQL NULL for None); the other columns hold their field as is."""
    data = record.to_dict()
    return tuple(
        _dump(data[column.removesuffix("_json")]) if column.endswith("_json") else data[column] for column in _COLUMNS
    )


def _from_row(row: sqlite3.Row) -> HistoryRecord:
    return HistoryRecord.from_dict(
        {
            column.removesuffix("_json"): _load(row[column]) if column.endswith("_json") else row[column]
            for column in _COLUMNS
        }
    )


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class SQLiteHistoryStore:
    """One connection shared by the worker threads behind a lock: history calls are short and rare."""

    def __init__(self, db_path: Path, *, wait_seconds: float = DEFAULT_WAIT_SECONDS) -> None:
        self._connection = connect(db_path, wait_seconds)
        self._connection.row_factory = sqlite3.Row
        # Python's casefold, not SQLite's ASCII-only lower(), so searching 'élan' finds 'Élan'.
        self._connection.create_function("casefold", 1, str.casefold, deterministic=True)
        self._lock = DatabaseGuard(db_path, wait_seconds)

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def add(self, record: HistoryRecord) -> None:
        with self._lock:
            self._connection.execute(_INSERT, _to_row(record))

    def get(self, user: str, uuid: str) -> HistoryRecord | None:
        with self._lock:
            row = self._connection.execute(f"{_SELECT} WHERE uuid = ? AND user = ?", (uuid, user)).fetchone()
        return None if row is None else _from_row(row)

    def search(
        self, user: str, *, limit: int, offset: int, tool_name: str | None = None, query: str | None = None
    ) -> HistoryPage:
        where, params = ["user = ?"], [user]
        if tool_name:
            where.append("tool_name = ?")
            params.append(tool_name)
        if query:
            # instr, not LIKE: '%' and '_' in the query are plain characters, with no escaping to get wrong.
            where.append("instr(casefold(prompt), ?) > 0")
            params.append(query.casefold())
        condition = " AND ".join(where)
        with self._lock:
            self._connection.execute("BEGIN")  # one snapshot for the page and its total
            try:
                rows = self._connection.execute(
                    f"{_SELECT} WHERE {condition} ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
                    (*params, limit, offset),
                ).fetchall()
                total: int = self._connection.execute(
                    f"SELECT COUNT(*) FROM history WHERE {condition}", params
                ).fetchone()[0]
            finally:
                self._connection.execute("COMMIT")
        return HistoryPage(records=[_from_row(row) for row in rows], total=total)
