"""The DynamoDB history against moto over HTTP: per-user, idempotent, newest first, searchable, paged with totals."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from aws_support import Names

from gpt_image_mcp.aws.dynamo_history import DynamoHistoryStore
from gpt_image_mcp.core.storage import HistoryImage, HistoryRecord


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
        model="gpt-image-2",
        parameters={"size": "1024x1024", "quality": "high", "n": 1, "output_compression": None, "ratio": 0.1},
        param_hash="abc123",
        created_at=created_at,
        images=[
            HistoryImage(
                key="fox.png",
                location="s3://b/users/alice/fox.png",
                format="png",
                width=1024,
                height=1024,
                size_bytes=2048,
            )
        ],
        usage={"input_tokens": 10, "output_tokens": 4160},
        cost={"total_usd": 0.167, "breakdown": {"output": 0.1664, "input": 1e-05}},
    )


@pytest.fixture
def store(dynamodb: Any, aws: Names) -> DynamoHistoryStore:
    return DynamoHistoryStore(dynamodb, aws.history_table)


def test_add_and_get_round_trip_keeps_floats_exact(store: DynamoHistoryStore) -> None:
    added = record("u1")
    store.add(added)
    assert store.get("alice", "u1") == added


def test_nested_values_are_json_strings_and_the_prompt_has_a_folded_copy(
    store: DynamoHistoryStore, dynamodb: Any, aws: Names
) -> None:
    store.add(record("u1", prompt="Straße"))
    item = dynamodb.get_item(TableName=aws.history_table, Key={"user": {"S": "alice"}, "uuid": {"S": "u1"}})["Item"]
    assert set(item["cost"]) == {"S"}
    assert item["prompt_lc"] == {"S": "strasse"}


def test_none_usage_and_cost_round_trip(store: DynamoHistoryStore) -> None:
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


def test_add_is_idempotent(store: DynamoHistoryStore) -> None:
    store.add(record("u1", prompt="first"))
    store.add(record("u1", prompt="second"))
    page = store.search("alice", limit=10, offset=0)
    assert page.total == 1
    assert [r.prompt for r in page.records] == ["first"]


def test_another_users_record_is_invisible(store: DynamoHistoryStore) -> None:
    store.add(record("u1", user="bob"))
    assert store.get("alice", "u1") is None
    assert store.get("bob", "u1") is not None
    assert store.get("alice", "missing") is None
    assert store.get("", "u1") is None
    assert store.search("alice", limit=10, offset=0).total == 0
    assert store.search("alice", limit=10, offset=0, query="fox").total == 0


def test_search_newest_first(store: DynamoHistoryStore) -> None:
    store.add(record("old", created_at="2025-01-01T00:00:00+00:00"))
    store.add(record("new", created_at="2025-03-01T00:00:00+00:00"))
    store.add(record("mid", created_at="2025-02-01T00:00:00+00:00"))
    page = store.search("alice", limit=10, offset=0)
    assert [r.uuid for r in page.records] == ["new", "mid", "old"]


def test_search_by_tool_name_and_query(store: DynamoHistoryStore) -> None:
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


def test_search_treats_wildcards_as_plain_characters(store: DynamoHistoryStore) -> None:
    store.add(record("percent", prompt="100% cotton"))
    store.add(record("underscore", prompt="snake_case logo"))
    store.add(record("plain", prompt="1000 cotton snakeXcase"))
    assert [r.uuid for r in store.search("alice", limit=10, offset=0, query="0%").records] == ["percent"]
    assert [r.uuid for r in store.search("alice", limit=10, offset=0, query="e_c").records] == ["underscore"]
    assert store.search("alice", limit=10, offset=0, query="*").total == 0


@pytest.mark.parametrize("page_size", [None, 1, 2, 3])
def test_search_pagination_reports_the_total(store: DynamoHistoryStore, page_size: int | None) -> None:
    """Small DynamoDB pages (Limit applies before the filter) exercise the paging and the counting."""
    store.query_page_size = page_size
    for index in range(7):
        store.add(record(f"u{index}", created_at=f"2025-01-0{index + 1}T00:00:00+00:00"))
    store.add(record("other", user="bob"))
    pages = [store.search("alice", limit=3, offset=offset) for offset in (0, 3, 6, 9)]
    assert [[r.uuid for r in page.records] for page in pages] == [["u6", "u5", "u4"], ["u3", "u2", "u1"], ["u0"], []]
    assert {page.total for page in pages} == {7}
    assert store.search("alice", limit=0, offset=0).total == 7


@pytest.mark.parametrize("page_size", [None, 1, 4])
def test_filtered_pagination_counts_only_matches(store: DynamoHistoryStore, page_size: int | None) -> None:
    store.query_page_size = page_size
    for index in range(9):
        tool = "edit_image" if index % 3 == 0 else "generate_image"
        store.add(record(f"u{index}", tool_name=tool, created_at=f"2025-01-0{index + 1}T00:00:00+00:00"))
    first = store.search("alice", limit=2, offset=0, tool_name="edit_image")
    second = store.search("alice", limit=2, offset=2, tool_name="edit_image")
    assert ([r.uuid for r in first.records], first.total) == (["u6", "u3"], 3)
    assert ([r.uuid for r in second.records], second.total) == (["u0"], 3)
    generated = store.search("alice", limit=4, offset=1, tool_name="generate_image", query="red")
    assert ([r.uuid for r in generated.records], generated.total) == (["u7", "u5", "u4", "u2"], 6)


def test_concurrent_adds_from_threads(store: DynamoHistoryStore) -> None:
    def add_batch(thread: int) -> None:
        for index in range(5):
            store.add(record(f"t{thread}-{index}"))
            store.add(record(f"t{thread}-{index}"))  # a redelivery

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(add_batch, range(8)))
    assert store.search("alice", limit=1, offset=0).total == 40
