"""The S3 upstream cache against moto: a paid answer kept whole in one object, read back exactly, and never read back
half-written."""

from __future__ import annotations

import io
import urllib.request
from typing import Any

import pytest
from aws_support import Names
from PIL import Image

from gpt_image_mcp.aws.job_blobs import S3JobBlobs, S3UpstreamCache
from gpt_image_mcp.core.upstream import UpstreamResult

JOB = "3f1c2a9e-1b2c-4d5e-8f90-123456789abc"
KEY = f"users/alice/.jobs/{JOB}/upstream"


@pytest.fixture
def cache(s3: Any, aws: Names) -> S3UpstreamCache:
    return S3UpstreamCache(S3JobBlobs(s3, aws.bucket))


def png(colour: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(out, "PNG")
    return out.getvalue()


def answer() -> UpstreamResult:
    return UpstreamResult(
        images=[b"\x89PNG first\n\x00", b"", b"\xff\xd8 third, with a newline\n"],
        usage={"input_tokens": 12, "output_tokens": 4160},
        echoed={"size": "1024x1024", "quality": "high"},
        request_id="req_123",
        attempts=2,
        notes=["image 2 of 4 was broken"],
    )


def test_an_answer_is_kept_in_one_object_and_read_back_exactly(cache: S3UpstreamCache, s3: Any, aws: Names) -> None:
    cache.save("alice", JOB, answer())
    listed = s3.list_objects_v2(Bucket=aws.bucket, Prefix="users/alice/.jobs/")["Contents"]
    assert [item["Key"] for item in listed] == [KEY]
    assert cache.load("alice", JOB) == answer()
    assert cache.load("bob", JOB) is None  # another user's prefix holds nothing
    cache.discard("alice", JOB)
    assert cache.load("alice", JOB) is None
    assert "Contents" not in s3.list_objects_v2(Bucket=aws.bucket, Prefix="users/alice/.jobs/")
    cache.discard("alice", JOB)  # nothing there: not an error


@pytest.mark.parametrize(
    "body",
    [
        b"not json\nbytes",  # unreadable
        b'{"count": 1}\nbytes',  # no sizes
        b'{"count": 1, "sizes": [10]}\nshort',  # cut short
        b'{"count": 2, "sizes": [5]}\nbytes',  # fewer images than the answer had
    ],
)
def test_a_damaged_object_is_not_used(cache: S3UpstreamCache, s3: Any, aws: Names, body: bytes) -> None:
    s3.put_object(Bucket=aws.bucket, Key=KEY, Body=body)
    assert cache.load("alice", JOB) is None  # the job calls OpenAI again rather than save a broken answer


def test_a_jobs_latest_partial_image_is_kept_behind_a_link_and_goes_with_the_answer(
    cache: S3UpstreamCache, s3: Any, aws: Names
) -> None:
    first, latest = (png(colour) for colour in ("red", "blue"))
    cache.keep_preview("alice", JOB, first)
    link = cache.keep_preview("alice", JOB, latest)  # replaces the one before

    with urllib.request.urlopen(link, timeout=10) as response:  # a presigned GET, as a client would follow it
        assert (response.read(), response.headers["Content-Type"]) == (latest, "image/png")
    assert (cache.read_preview("alice", JOB), cache.read_preview("bob", JOB)) == (latest, None)  # the owner's only
    cache.save("alice", JOB, answer())
    cache.discard("alice", JOB)
    assert cache.read_preview("alice", JOB) is None
    assert "Contents" not in s3.list_objects_v2(Bucket=aws.bucket, Prefix="users/alice/.jobs/")
