"""What only the SQLite history has: a versioned WAL file that outlives the process, ties in time ordered by insertion,
one connection shared by worker threads, clear messages for a locked or damaged file. The contract it shares with the
DynamoDB history is tests/aws/test_history_contract.py."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from history_records import record

from gpt_image_mcp.core.errors import ConfigurationError, StorageError
from local_sandbox.sqlite_history import MIGRATIONS, SQLiteHistoryStore, connect


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteHistoryStore]:
    history = SQLiteHistoryStore(tmp_path / "nested" / "history.db")
    yield history
    history.close()


def test_creates_the_folder_and_a_versioned_wal_database(store: SQLiteHistoryStore, tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "nested" / "history.db")
    try:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) == 3
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        connection.close()


def test_reopening_keeps_the_data(tmp_path: Path) -> None:
    first = SQLiteHistoryStore(tmp_path / "history.db")
    first.add(record("u1"))
    first.close()
    second = SQLiteHistoryStore(tmp_path / "history.db")
    assert second.get("alice", "u1") == record("u1")
    second.close()


def test_refuses_a_database_from_a_newer_server(tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "history.db")
    connection.execute("PRAGMA user_version = 99")
    connection.close()
    with pytest.raises(ConfigurationError) as caught:
        connect(tmp_path / "history.db")
    assert caught.value.message == (
        f"The database {tmp_path / 'history.db'} has schema version 99, newer than this server knows (3); "
        "upgrade the server or set HISTORY_DB_PATH to another file."
    )


def test_search_newest_first_then_latest_added(store: SQLiteHistoryStore) -> None:
    store.add(record("old", created_at="2025-01-01T00:00:00+00:00"))
    store.add(record("new", created_at="2025-03-01T00:00:00+00:00"))
    store.add(record("tie-1", created_at="2025-02-01T00:00:00+00:00"))
    store.add(record("tie-2", created_at="2025-02-01T00:00:00+00:00"))
    page = store.search("alice", limit=10, offset=0)
    assert [r.uuid for r in page.records] == ["new", "tie-2", "tie-1", "old"]


def test_concurrent_adds_from_threads(store: SQLiteHistoryStore) -> None:
    def add_batch(thread: int) -> None:
        for index in range(25):
            store.add(record(f"t{thread}-{index}"))
            store.search("alice", limit=5, offset=0, query="fox")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(add_batch, range(8)))
    assert store.search("alice", limit=1, offset=0).total == 200


def test_two_stores_on_one_file(tmp_path: Path) -> None:
    """A second connection (the job store, say) can open the same file while the first is in use."""
    first = SQLiteHistoryStore(tmp_path / "history.db")
    second = SQLiteHistoryStore(tmp_path / "history.db")
    first.add(record("u1"))
    assert second.get("alice", "u1") == record("u1")
    first.close()
    second.close()


def test_a_database_locked_past_the_wait_names_the_file_and_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    store = SQLiteHistoryStore(path, wait_seconds=0.1)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StorageError) as caught:
            store.add(record("u1"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert caught.value.message == (
        f"The history database {path} is locked by another program and stayed locked past the 0.1 s wait. Close "
        "what holds it (a sqlite3 shell, a backup or sync tool, another server writing a long transaction) and try "
        "again, or set HISTORY_DB_PATH to another file."
    )
    store.add(record("u1"))  # the store works again once the lock is gone
    assert store.get("alice", "u1") == record("u1")
    store.close()


def test_a_damaged_database_is_named_when_it_is_opened(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    path.write_bytes(b"not an SQLite file" * 100)
    with pytest.raises(StorageError) as caught:
        SQLiteHistoryStore(path)
    assert caught.value.message == (
        f"The history database {path} is damaged (file is not a database). Move it aside (a new one is made in its "
        "place), or set HISTORY_DB_PATH to another file."
    )
