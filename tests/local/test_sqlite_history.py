"""The local history: per-user, idempotent, newest first, searchable, and safe to call from worker threads."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gpt_image_mcp.core.errors import ConfigurationError, StorageError
from gpt_image_mcp.core.storage import HistoryImage, HistoryRecord
from local_sandbox.sqlite_history import MIGRATIONS, SQLiteHistoryStore, connect


def record(
    uuid: str,
    *,
    user: str = "alice",
    prompt: str = "a red fox",
    tool_name: str = "generate_image",
    created_at: str = "2025-01-01T00:00:00+00:00",
) -> HistoryRecord:
    return HistoryRecord(
        uuid=uuid,
        user=user,
        tool_name=tool_name,
        prompt=prompt,
        model="gpt-image-1",
        parameters={"size": "1024x1024", "quality": "high", "n": 1},
        param_hash="abc123",
        created_at=created_at,
        images=[
            HistoryImage(key="fox.png", location="/out/fox.png", format="png", width=1024, height=1024, size_bytes=2048)
        ],
        usage={"input_tokens": 10, "output_tokens": 4160},
        cost={"total_usd": 0.167, "breakdown": {"output": 0.1664}},
    )


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


def test_add_and_get_round_trip(store: SQLiteHistoryStore) -> None:
    added = record("u1")
    store.add(added)
    assert store.get("alice", "u1") == added


def test_none_usage_and_cost_round_trip(store: SQLiteHistoryStore) -> None:
    bare = HistoryRecord(
        uuid="u1",
        user="alice",
        tool_name="edit_image",
        prompt="p",
        model="m",
        parameters={},
        param_hash="h",
        created_at="2025-01-01T00:00:00+00:00",
    )
    store.add(bare)
    assert store.get("alice", "u1") == bare


def test_add_is_idempotent(store: SQLiteHistoryStore) -> None:
    store.add(record("u1", prompt="first"))
    store.add(record("u1", prompt="second"))
    page = store.search("alice", limit=10, offset=0)
    assert page.total == 1
    assert [r.prompt for r in page.records] == ["first"]


def test_another_users_record_is_invisible(store: SQLiteHistoryStore) -> None:
    store.add(record("u1", user="bob"))
    assert store.get("alice", "u1") is None
    assert store.get("bob", "u1") is not None
    assert store.get("alice", "missing") is None
    assert store.search("alice", limit=10, offset=0).total == 0


def test_search_newest_first_then_latest_added(store: SQLiteHistoryStore) -> None:
    store.add(record("old", created_at="2025-01-01T00:00:00+00:00"))
    store.add(record("new", created_at="2025-03-01T00:00:00+00:00"))
    store.add(record("tie-1", created_at="2025-02-01T00:00:00+00:00"))
    store.add(record("tie-2", created_at="2025-02-01T00:00:00+00:00"))
    page = store.search("alice", limit=10, offset=0)
    assert [r.uuid for r in page.records] == ["new", "tie-2", "tie-1", "old"]


def test_search_by_tool_name_and_query(store: SQLiteHistoryStore) -> None:
    store.add(record("fox", prompt="A Red FOX in snow"))
    store.add(record("edit", prompt="make the fox blue", tool_name="edit_image"))
    store.add(record("owl", prompt="an owl"))
    store.add(record("accent", prompt="Élan vital"))
    assert {r.uuid for r in store.search("alice", limit=10, offset=0, query="fox").records} == {"fox", "edit"}
    assert [r.uuid for r in store.search("alice", limit=10, offset=0, query="red fox").records] == ["fox"]
    only_edits = store.search("alice", limit=10, offset=0, tool_name="edit_image", query="FOX")
    assert ([r.uuid for r in only_edits.records], only_edits.total) == (["edit"], 1)
    assert [r.uuid for r in store.search("alice", limit=10, offset=0, query="élan").records] == ["accent"]
    assert store.search("alice", limit=10, offset=0, query="cat").total == 0


def test_search_treats_like_wildcards_as_plain_characters(store: SQLiteHistoryStore) -> None:
    store.add(record("percent", prompt="100% cotton"))
    store.add(record("underscore", prompt="snake_case logo"))
    store.add(record("plain", prompt="1000 cotton snakeXcase"))
    assert [r.uuid for r in store.search("alice", limit=10, offset=0, query="0%").records] == ["percent"]
    assert [r.uuid for r in store.search("alice", limit=10, offset=0, query="%").records] == ["percent"]
    assert [r.uuid for r in store.search("alice", limit=10, offset=0, query="e_c").records] == ["underscore"]
    assert [r.uuid for r in store.search("alice", limit=10, offset=0, query="_").records] == ["underscore"]
    assert store.search("alice", limit=10, offset=0, query="\\").total == 0


def test_search_pagination_reports_the_total(store: SQLiteHistoryStore) -> None:
    for index in range(7):
        store.add(record(f"u{index}", created_at=f"2025-01-0{index + 1}T00:00:00+00:00"))
    store.add(record("other", user="bob"))
    pages = [store.search("alice", limit=3, offset=offset) for offset in (0, 3, 6, 9)]
    assert [[r.uuid for r in page.records] for page in pages] == [["u6", "u5", "u4"], ["u3", "u2", "u1"], ["u0"], []]
    assert {page.total for page in pages} == {7}


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
