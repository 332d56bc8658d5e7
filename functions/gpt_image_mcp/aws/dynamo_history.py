"""`HistoryStore` on DynamoDB (low-level client): one item per record, partition `user`, sort key `uuid`.

Table (see template.yaml): key `user` (S) + `uuid` (S); local secondary index `by_created` on `user` + `created_at`
(projection ALL). Nested values (parameters, images, usage, cost) are stored as JSON strings, which avoids DynamoDB's
Decimal numbers and keeps floats exact. `prompt_lc` is a case-folded copy of the prompt for searching.

Search cost: DynamoDB filters after reading, and offsets do not exist, so a page reads the user's newest records
until `offset + limit` matches are found, and the total is counted by reading the rest of the user's partition
(`Select=COUNT`: no items are returned, but the read capacity is the same). Each search therefore reads the whole
partition, about 1 read unit per 4 KB (strongly consistent). Fine for personal histories of thousands of records;
a total from a counter item would be the next step if histories grow much larger. Unlike SQLite there is no
snapshot across the pages, so the total can be off by records added during the search. Records created in the
same second (`created_at` has one-second precision) come back in DynamoDB's index order, not by insertion.
"""

from __future__ import annotations

import json
from typing import Any

from gpt_image_mcp.core.storage import HistoryPage, HistoryRecord

INDEX_BY_CREATED = "by_created"
_JSON_FIELDS = ("parameters", "images", "usage", "cost")
_TEXT_FIELDS = ("uuid", "user", "tool_name", "prompt", "model", "param_hash", "created_at")


def to_item(record: HistoryRecord) -> dict[str, Any]:
    """The DynamoDB item (attribute-value form) of `record`; None-valued JSON fields are left out."""
    data = record.to_dict()
    item: dict[str, Any] = {name: {"S": str(data[name])} for name in _TEXT_FIELDS}
    item["prompt_lc"] = {"S": record.prompt.casefold()}
    for name in _JSON_FIELDS:
        if data[name] is not None:
            item[name] = {"S": json.dumps(data[name], separators=(",", ":"))}
    return item


def from_item(item: dict[str, Any]) -> HistoryRecord:
    data: dict[str, Any] = {name: item[name]["S"] for name in _TEXT_FIELDS}
    for name in _JSON_FIELDS:
        data[name] = json.loads(item[name]["S"]) if name in item else None
    if data["images"] is None:
        data["images"] = []
    return HistoryRecord.from_dict(data)


class DynamoHistoryStore:
    """History of every user in one table; each call touches only the caller's partition."""

    query_page_size: int | None = None  # items read per Query request (None: DynamoDB's 1 MB pages); tests lower it

    def __init__(self, dynamodb_client: Any, table: str) -> None:
        self._db = dynamodb_client
        self.table = table

    def add(self, record: HistoryRecord) -> None:
        """Put unless the (user, uuid) item exists: a redelivered job adding the same record again is a no-op."""
        from botocore.exceptions import ClientError

        try:
            self._db.put_item(
                TableName=self.table,
                Item=to_item(record),
                ConditionExpression="attribute_not_exists(#uuid)",
                ExpressionAttributeNames={"#uuid": "uuid"},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def get(self, user: str, uuid: str) -> HistoryRecord | None:
        if not user or not uuid:
            return None
        response = self._db.get_item(
            TableName=self.table, Key={"user": {"S": user}, "uuid": {"S": uuid}}, ConsistentRead=True
        )
        item = response.get("Item")
        return None if item is None else from_item(item)

    def search(
        self, user: str, *, limit: int, offset: int, tool_name: str | None = None, query: str | None = None
    ) -> HistoryPage:
        """Newest first; `tool_name` matches exactly, `query` as a case-insensitive substring of the prompt."""
        if not user:
            return HistoryPage(records=[], total=0)
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": INDEX_BY_CREATED,
            "KeyConditionExpression": "#user = :user",
            "ScanIndexForward": False,
            "ConsistentRead": True,
        }
        names = {"#user": "user"}
        values: dict[str, Any] = {":user": {"S": user}}
        filters = []
        if tool_name:
            filters.append("#tool_name = :tool_name")
            names["#tool_name"] = "tool_name"
            values[":tool_name"] = {"S": tool_name}
        if query:
            filters.append("contains(#prompt_lc, :query)")
            names["#prompt_lc"] = "prompt_lc"
            values[":query"] = {"S": query.casefold()}
        if filters:
            request["FilterExpression"] = " AND ".join(filters)
        if self.query_page_size:
            request["Limit"] = self.query_page_size
        request["ExpressionAttributeNames"] = names
        request["ExpressionAttributeValues"] = values

        items, total = query_page(self._db, request, offset=offset, limit=limit)
        return HistoryPage(records=[from_item(item) for item in items], total=total)


def query_page(db: Any, request: dict[str, Any], *, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Items `offset` .. `offset + limit` of a Query (filters applied), and how many items match in all.

    DynamoDB has no offsets: the matches before the page are read and skipped, then the rest is only counted
    (`Select=COUNT`). Shared by the history and the job store.
    """
    offset, limit = max(offset, 0), max(limit, 0)
    wanted = offset + limit
    matched = 0
    items: list[dict[str, Any]] = []
    start_key: dict[str, Any] | None = None
    # 1. Items, newest first, until the page is full. Every item returned matches the filter.
    while wanted > matched:
        page = db.query(**request, **({"ExclusiveStartKey": start_key} if start_key else {}))
        for item in page.get("Items", []):
            if offset <= matched < wanted:
                items.append(item)
            matched += 1
        start_key = page.get("LastEvaluatedKey")
        if start_key is None:
            return items, matched
    # 2. Count the rest of the partition; the page above is already counted in full.
    while True:
        page = db.query(**request, Select="COUNT", **({"ExclusiveStartKey": start_key} if start_key else {}))
        matched += int(page.get("Count", 0))
        start_key = page.get("LastEvaluatedKey")
        if start_key is None:
            return items, matched
