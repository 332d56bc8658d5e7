"""Links are made when a result is read, not when the call finished: a presigned link expires (LINK_EXPIRY_SECONDS,
900 s in this shape) long before a job (7 days) or a history record does.

A job's stored result is aged on purpose (its link rewritten with a signing date in 2020, in the jobs table), then
read back through the Lambda handler: the link returned is signed at read time. moto does not enforce presigned
expiry, so freshness is read from the URL's own X-Amz-Date and X-Amz-Expires.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import anyio
import httpx2
import pytest
from mcp import Client
from remote_support import s3_object, succeeds

from gpt_image_mcp.aws import clients
from local_sandbox.standins.remote_shape import RemoteShape

pytestmark = pytest.mark.anyio
STALE_DATE = "20200101T000000Z"


def signed_at(link: str) -> tuple[dt.datetime, str]:
    query = parse_qs(urlsplit(link).query)
    return dt.datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC), query[
        "X-Amz-Expires"
    ][0]


def aged(link: str) -> str:
    parts = urlsplit(link)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()} | {"X-Amz-Date": STALE_DATE}
    return parts._replace(query=urlencode(query)).geturl()


def age_stored_links(shape: RemoteShape, job_id: str) -> list[str]:
    """Rewrite the job's stored result as if its links were made in 2020; returns the aged links."""
    table = shape.env["JOBS_TABLE"]
    db = clients.dynamodb_client()
    [item] = db.scan(
        TableName=table, FilterExpression="job_id = :id", ExpressionAttributeValues={":id": {"S": job_id}}
    )["Items"]
    result: dict[str, Any] = json.loads(item["result"]["S"])
    for image in result["images"]:
        image["link"] = aged(image["link"])
    db.update_item(
        TableName=table,
        Key={"user": item["user"], "job_id": item["job_id"]},
        UpdateExpression="SET #r = :r",
        ExpressionAttributeNames={"#r": "result"},
        ExpressionAttributeValues={":r": {"S": json.dumps(result)}},
    )
    return [image["link"] for image in result["images"]]


async def completed(client: Client, job_id: str) -> None:
    with anyio.fail_after(30):
        while True:
            status = await succeeds(client, "check_job_status", {"job_id": job_id})
            if status.structured_content["status"] == "completed":
                return
            await anyio.sleep(0.1)


async def test_a_job_result_and_its_history_carry_links_made_when_read(client: Client, shape: RemoteShape) -> None:
    path = f"fresh/{uuid.uuid4().hex[:8]}.png"
    started = await succeeds(
        client,
        "start_generation_job",
        {"tool_name": "generate_image", "prompt": "fresh links", "quality": "low", "output_path": path},
    )
    job_id = started.structured_content["job_id"]
    await completed(client, job_id)
    [stale] = age_stored_links(shape, job_id)
    assert signed_at(stale) == (dt.datetime(2020, 1, 1, tzinfo=dt.UTC), "900")

    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    result = (await succeeds(client, "get_job_result", {"job_id": job_id})).structured_content["result"]
    history = await succeeds(client, "get_history_by_uuid", {"uuid": result["history_id"]})
    after = dt.datetime.now(dt.UTC)

    [image] = result["images"]
    [recorded] = history.structured_content["images"]
    for link in (image["link"], recorded["link"]):
        when, expires = signed_at(link)
        assert before <= when <= after and expires == "900", link
        async with httpx2.AsyncClient() as http:
            download = await http.get(link)
        assert download.status_code == 200 and download.content == s3_object(image["location"])
    assert recorded["key"] == image["path"] == path
