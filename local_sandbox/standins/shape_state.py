"""The remote shape's data kept in a folder across restarts (`gpt-image-mcp-remote --state-dir`).

moto keeps everything in memory. On stop the images bucket and every table are written to the folder; on the next
start they are put back into the fresh resources, pending jobs get their queue message again (the queue itself is
not kept), and the MCP port and the demo key are reused, so a client's `claude mcp add` line stays valid.

    <state-dir>/shape.json          port, user and API key of the demo client
    <state-dir>/tables/<role>.json  every item of a table (DynamoDB JSON; binary values base64)
    <state-dir>/bucket/<key>        every object of the images bucket
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from local_sandbox.standins.aws_resources import AwsClients, AwsNames

TABLE_ROLES = ("history_table", "jobs_table", "api_keys_table", "oauth_table")


@dataclass(frozen=True, slots=True)
class Demo:
    """What makes the printed client line valid again: the same port and the same key."""

    port: int
    user: str
    token: str


def read_demo(folder: Path) -> Demo | None:
    path = folder / "shape.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return Demo(port=int(data["port"]), user=str(data["user"]), token=str(data["token"]))


def save(folder: Path, clients: AwsClients, names: AwsNames, demo: Demo) -> None:
    """Write the bucket, the tables and the demo client to `folder` (replacing what was there)."""
    (folder / "tables").mkdir(parents=True, exist_ok=True)
    for role in TABLE_ROLES:
        items = _scan(clients.dynamodb, getattr(names, role))
        (folder / "tables" / f"{role}.json").write_text(json.dumps(items, default=_binary), encoding="utf-8")
    bucket = folder / "bucket"
    for page in clients.s3.get_paginator("list_objects_v2").paginate(Bucket=names.bucket):
        for item in page.get("Contents", []):
            target = bucket / item["Key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(clients.s3.get_object(Bucket=names.bucket, Key=item["Key"])["Body"].read())
    (folder / "shape.json").write_text(json.dumps(asdict(demo)), encoding="utf-8")


def restore(folder: Path, clients: AwsClients, names: AwsNames) -> int:
    """Put what `save` wrote into the fresh resources; a pending job's message is sent again. The jobs restored."""
    from gpt_image_mcp.aws.sqs_queue import encode_message

    for role in TABLE_ROLES:
        path = folder / "tables" / f"{role}.json"
        if not path.is_file():
            continue
        for item in json.loads(path.read_text(encoding="utf-8"), object_hook=_unbinary):
            clients.dynamodb.put_item(TableName=getattr(names, role), Item=item)
    bucket = folder / "bucket"
    if bucket.is_dir():
        for path in sorted(p for p in bucket.rglob("*") if p.is_file()):
            clients.s3.put_object(Bucket=names.bucket, Key=path.relative_to(bucket).as_posix(), Body=path.read_bytes())
    pending = [item for item in _scan(clients.dynamodb, names.jobs_table) if item["status"]["S"] == "pending"]
    for item in pending:
        body = encode_message(item["user"]["S"], item["job_id"]["S"])
        clients.sqs.send_message(QueueUrl=names.queue_url, MessageBody=body)
    return len(pending)


def _scan(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        items += page.get("Items", [])
    return items


def _binary(value: object) -> object:
    if isinstance(value, bytes):
        return {"__base64__": base64.b64encode(value).decode("ascii")}
    raise TypeError(f"cannot keep a {type(value).__name__} in the state folder")


def _unbinary(value: dict[str, Any]) -> object:
    return base64.b64decode(value["__base64__"]) if set(value) == {"__base64__"} else value
