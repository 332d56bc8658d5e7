"""The cost of a request before anything is sent, from the catalog's token prices (shared notes §6: gpt-image-2 at
$30 per million output tokens; 1024x1024 low = 196 tokens, high = 7024; 1536x1024 high = 5488)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from batch_support import write_batch

from gpt_image_mcp.core.catalog import load_catalog
from local_sandbox.batch.batchfile import read_batch
from local_sandbox.batch.estimate import Estimate, estimate
from local_sandbox.batch.plans import offline_planner

pytestmark = pytest.mark.anyio


async def estimated(tmp_path: Path, **arguments: Any) -> Estimate:
    [request] = read_batch(write_batch(tmp_path / "b.json", [{"tool": "generate_image", "prompt": "x", **arguments}]))
    plan = await offline_planner(load_catalog(), "gpt-image-2", dt.date(2026, 11, 24))(request)
    return estimate(plan, load_catalog())


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"size": "1024x1024", "quality": "low"}, Estimate("gpt-image-2", 0.00588, False)),
        ({"size": "1024x1024", "quality": "low", "sample_count": 2}, Estimate("gpt-image-2", 0.01176, False)),
        ({"size": "1536x1024", "quality": "high"}, Estimate("gpt-image-2", 0.16464, False)),
        ({"size": "auto", "quality": "low"}, Estimate("gpt-image-2", 0.00588, True)),  # 1024x1024 costs most
        ({"size": "1024x1024"}, Estimate("gpt-image-2", 0.21072, True)),  # quality auto: priced as high
        (
            {"model": "gpt-image-2.5-flare", "quality": "xhigh", "size": "1024x1024"},
            Estimate("gpt-image-2.5-flare", None, False),
        ),
        ({"model": "house-model", "size": "1024x1024", "quality": "low"}, Estimate("house-model", None, False)),
    ],
)
async def test_estimates(tmp_path: Path, arguments: dict[str, Any], expected: Estimate) -> None:
    assert await estimated(tmp_path, **arguments) == expected


def test_how_an_estimate_reads() -> None:
    assert Estimate("gpt-image-2", 0.00588, False).text() == "$0.006"
    assert Estimate("gpt-image-2", 0.21072, True).text() == "≤ $0.211"
    assert Estimate("house-model", None, False).text() == "no estimate"
