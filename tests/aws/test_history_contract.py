"""One contract for every HistoryStore, run against SQLite (local) and DynamoDB (moto over HTTP): per-user,
idempotent, newest first, searchable, paged with totals, safe under concurrent (and repeated) adds. What only one
store has is in tests/local/test_sqlite_history.py and tests/aws/test_dynamo_history.py."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from aws_support import NAMES
from history_records import record

from gpt_image_mcp.aws.dynamo_history import DynamoHistoryStore
from gpt_image_mcp.core.storage import HistoryRecord, HistoryStore
from local_sandbox.sqlite_history import SQLiteHistoryStore


@pytest.fixture(
    params=["sqlite", "dynamo", "dynamo-pages-of-1", "dynamo-pages-of-2", "dynamo-pages-of-3", "dynamo-pages-of-4"]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HistoryStore]:
    """Small DynamoDB pages (`Limit` applies before the filter) exercise the paging and the counting."""
    if request.param == "sqlite":
        history = SQLiteHistoryStore(tmp_path / "history.db")
        yield history
        history.close()
    else:
        dynamo = DynamoHistoryStore(request.getfixturevalue("dynamodb"), NAMES.history_table)
        dynamo.query_page_size = int(request.param.rsplit("-", 1)[1]) if "pages" in request.param else None
        yield dynamo


def test_add_and_get_round_trip_keeps_floats_exact(store: HistoryStore) -> None:
    added = record("u1")
    store.add(added)
    assert store.get("alice", "u1") == added


def test_none_usage_and_cost_round_trip(store: HistoryStore) -> None:
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


def test_add_is_idempotent(store: HistoryStore) -> None:
    store.add(record("u1", prompt="first"))
    store.add(record("u1", prompt="second"))
    page = store.search("alice", limit=10, offset=0)
    assert page.total == 1
    assert [r.prompt for r in page.records] == ["first"]


def test_another_users_record_is_invisible(store: HistoryStore) -> None:
    store.add(record("u1", user="bob"))
    assert store.get("alice", "u1") is None
    assert store.get("bob", "u1") is not None
    assert store.get("alice", "missing") is None
    assert store.get("", "u1") is None
    assert store.search("alice", limit=10, offset=0).total == 0
    assert store.search("alice", limit=10, offset=0, query="fox").total == 0


def test_search_newest_first(store: HistoryStore) -> None:
    store.add(record("old", created_at="2025-01-01T00:00:00+00:00"))
    store.add(record("new", created_at="2025-03-01T00:00:00+00:00"))
    store.add(record("mid", created_at="2025-02-01T00:00:00+00:00"))
    page = store.search("alice", limit=10, offset=0)
    assert [r.uuid for r in page.records] == ["new", "mid", "old"]


def test_search_by_tool_name_and_query(store: HistoryStore) -> None:
    store.add(record("fox", prompt="A Red FOX in snow"))
    store.add(record("edit", prompt="make the fox blue", tool_name="edit_image"))
    store.add(record("owl", prompt="an owl"))
    store.add(record("accent", prompt="Élan vital"))
    store.add(record("street", prompt="Große Straße"))
    assert {r.uuid for r in store.search("alice", limit=10, offset=0, query="fox").records} == {"fox", "edit"}
    assert [r.uuid for r in store.search("alice", limit=10, offset=0, query="red fox").records] == ["fox"]
    only_edits = store.search("alice", limit=10, offset=0, tool_name="edit_image", query="FOX")
    assert ([r.uuid for r in only_edits.records], only_edits.total) == (["edit"], 1)
    assert [r.uuid for r in store.search("alice", limit=10, offset=0, query="élan").records] == ["accent"]
    assert [r.uuid for r in store.search("alice", limit=10, offset=0, query="STRASSE").records] == ["street"]
    assert store.search("alice", limit=10, offset=0, query="cat").total == 0
    assert store.search("alice", limit=10, offset=0, tool_name="transform_image").total == 0


def test_search_treats_wildcards_as_plain_characters(store: HistoryStore) -> None:
    store.add(record("percent", prompt="100% cotton"))
    store.add(record("underscore", prompt="snake_case logo"))
    store.add(record("plain", prompt="1000 cotton snakeXcase"))
    assert [r.uuid for r in store.search("alice", limit=10, offset=0, query="0%").records] == ["percent"]
    assert [r.uuid for r in store.search("alice", limit=10, offset=0, query="%").records] == ["percent"]
    assert [r.uuid for r in store.search("alice", limit=10, offset=0, query="e_c").records] == ["underscore"]
    assert [r.uuid for r in store.search("alice", limit=10, offset=0, query="_").records] == ["underscore"]
    assert store.search("alice", limit=10, offset=0, query="\\").total == 0
    assert store.search("alice", limit=10, offset=0, query="*").total == 0


def test_search_pagination_reports_the_total(store: HistoryStore) -> None:
    for index in range(7):
        store.add(record(f"u{index}", created_at=f"2025-01-0{index + 1}T00:00:00+00:00"))
    store.add(record("other", user="bob"))
    pages = [store.search("alice", limit=3, offset=offset) for offset in (0, 3, 6, 9)]
    assert [[r.uuid for r in page.records] for page in pages] == [["u6", "u5", "u4"], ["u3", "u2", "u1"], ["u0"], []]
    assert {page.total for page in pages} == {7}
    assert store.search("alice", limit=0, offset=0).total == 7


def test_filtered_pagination_counts_only_matches(store: HistoryStore) -> None:
    for index in range(9):
        tool = "edit_image" if index % 3 == 0 else "generate_image"
        store.add(record(f"u{index}", tool_name=tool, created_at=f"2025-01-0{index + 1}T00:00:00+00:00"))
    first = store.search("alice", limit=2, offset=0, tool_name="edit_image")
    second = store.search("alice", limit=2, offset=2, tool_name="edit_image")
    assert ([r.uuid for r in first.records], first.total) == (["u6", "u3"], 3)
    assert ([r.uuid for r in second.records], second.total) == (["u0"], 3)
    generated = store.search("alice", limit=4, offset=1, tool_name="generate_image", query="red")
    assert ([r.uuid for r in generated.records], generated.total) == (["u7", "u5", "u4", "u2"], 6)


def test_concurrent_and_repeated_adds_from_threads(store: HistoryStore) -> None:
    """Eight workers add at once, each record twice (a redelivered job): one row per record."""

    def add_batch(thread: int) -> None:
        for index in range(5):
            store.add(record(f"t{thread}-{index}"))
            store.add(record(f"t{thread}-{index}"))  # a redelivery
            store.search("alice", limit=5, offset=0, query="fox")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(add_batch, range(8)))
    assert store.search("alice", limit=1, offset=0).total == 40
