"""Remote resources over S3 (moto): bytes within the response cap, a fresh download link above it."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from aws_support import Names
from mcp.shared.exceptions import MCPError
from PIL import Image

from gpt_image_mcp.aws.s3_store import S3ImageStore
from gpt_image_mcp.server.resources import KeyResources

pytestmark = pytest.mark.anyio
USER = "0b7e9c1e-1111-4a4a-8c8c-0123456789ab"


def jpeg(size: int) -> bytes:
    out = io.BytesIO()
    Image.effect_noise((size, size), 64).convert("RGB").save(out, "JPEG", quality=95)
    return out.getvalue()


async def test_within_the_cap_the_bytes_above_it_a_fresh_link(s3: Any, aws: Names) -> None:
    store = S3ImageStore(s3, aws.bucket, 900)
    small, big = jpeg(16), jpeg(256)
    store.save(USER, "small.jpg", small, "image/jpeg")
    store.save(USER, "big.jpg", big, "image/jpeg")
    resources = KeyResources(store, lambda: USER, max_bytes=len(big) - 1)

    read = await resources.read("gpt-image://images/small.jpg")
    assert (read.content, read.mime_type) == (small, "image/jpeg")

    answer = await resources.read("gpt-image://images/big.jpg")
    assert answer.mime_type == "text/plain" and isinstance(answer.content, str)
    assert answer.content.startswith(f"big.jpg is larger than the {len(big) - 1:,} bytes a response may carry here.")
    link = answer.content.rsplit(" ", 1)[-1]
    assert parse_qs(urlsplit(link).query)["X-Amz-Expires"] == ["900"]
    async with httpx2.AsyncClient() as http:
        assert (await http.get(link)).content == big

    for uri in ("gpt-image://images/../x.jpg", "gpt-image://images/", "gpt-image://other/small.jpg", "s3://b/k"):
        with pytest.raises(MCPError) as caught:
            await resources.read(uri)
        assert caught.value.error.message == f"Resource not found: {uri}"
