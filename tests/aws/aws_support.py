"""Names and set-up shared by the AWS tests (kept out of conftest.py so test modules can import them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Names:
    bucket: str = "gim-images-test"
    history_table: str = "gim-history"
    jobs_table: str = "gim-jobs"
    api_keys_table: str = "gim-api-keys"


NAMES = Names()


def strings(*attributes: str) -> list[dict[str, str]]:
    return [{"AttributeName": name, "AttributeType": "S"} for name in attributes]


def key(hash_key: str, range_key: str | None = None) -> list[dict[str, str]]:
    schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    return schema + ([{"AttributeName": range_key, "KeyType": "RANGE"}] if range_key else [])


def create_resources(s3: Any, dynamodb: Any, names: Names) -> None:
    """The bucket and tables with the key schemas and indexes of template.yaml (moto ignores TTL settings)."""
    s3.create_bucket(Bucket=names.bucket)
    for table, sort_key in ((names.history_table, "uuid"), (names.jobs_table, "job_id")):
        dynamodb.create_table(
            TableName=table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=strings("user", sort_key, "created_at"),
            KeySchema=key("user", sort_key),
            LocalSecondaryIndexes=[
                {
                    "IndexName": "by_created",
                    "KeySchema": key("user", "created_at"),
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )
    dynamodb.create_table(
        TableName=names.api_keys_table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=strings("key_hash", "user_id", "created_at"),
        KeySchema=key("key_hash"),
        GlobalSecondaryIndexes=[
            {"IndexName": "by_user", "KeySchema": key("user_id", "created_at"), "Projection": {"ProjectionType": "ALL"}}
        ],
    )
