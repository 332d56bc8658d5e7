"""What only the DynamoDB history has (against moto over HTTP): nested values as JSON text and a folded prompt for
search. The contract it shares with the SQLite history (paging across small DynamoDB pages included) is
tests/aws/test_history_contract.py."""

from __future__ import annotations

from typing import Any

import pytest
from aws_support import Names
from history_records import record

from gpt_image_mcp.aws.dynamo_history import DynamoHistoryStore


@pytest.fixture
def store(dynamodb: Any, aws: Names) -> DynamoHistoryStore:
    return DynamoHistoryStore(dynamodb, aws.history_table)


def test_nested_values_are_json_strings_and_the_prompt_has_a_folded_copy(
    store: DynamoHistoryStore, dynamodb: Any, aws: Names
) -> None:
    store.add(record("u1", prompt="Straße"))
    item = dynamodb.get_item(TableName=aws.history_table, Key={"user": {"S": "alice"}, "uuid": {"S": "u1"}})["Item"]
    assert set(item["cost"]) == {"S"}
    assert item["prompt_lc"] == {"S": "strasse"}
