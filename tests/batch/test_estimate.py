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
    return estimate(plan, load_catalog(), request.args)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        # the prompt "x": one text token, $0.000005, with each image made
        ({"size": "1024x1024", "quality": "low"}, Estimate("gpt-image-2", 0.005885, False, 0.000005, 0.00588)),
        (
            {"size": "1024x1024", "quality": "low", "sample_count": 2},
            Estimate("gpt-image-2", 0.01177, False, 0.00001, 0.01176),
        ),
        ({"size": "1536x1024", "quality": "high"}, Estimate("gpt-image-2", 0.164645, False, 0.000005, 0.16464)),
        # 1024x1024 costs most
        ({"size": "auto", "quality": "low"}, Estimate("gpt-image-2", 0.005885, True, 0.000005, 0.00588)),
        # quality auto: priced as high
        ({"size": "1024x1024"}, Estimate("gpt-image-2", 0.210725, True, 0.000005, 0.21072)),
        # a partial preview: 100 output tokens more, $0.003
        (
            {"size": "1024x1024", "quality": "low", "partial_images": 1},
            Estimate("gpt-image-2", 0.008885, False, 0.000005, 0.00888),
        ),
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
    cheap = Estimate("gpt-image-2", 0.014077, False, 0.008197, 0.00588)
    assert (cheap.input_text(), cheap.output_text(), cheap.text()) == ("$0.0082", "$0.0059", "$0.0141")
    bound = Estimate("gpt-image-2", 0.210725, True, 0.000005, 0.21072)
    assert (bound.input_text(), bound.output_text(), bound.text()) == ("$0.0000", "≤ $0.2107", "≤ $0.2107")
    remote = Estimate("gpt-image-2", 0.005885, False, 0.000005, 0.00588, uncounted_images=2)
    assert (remote.input_text(), remote.text()) == ("$0.0000 + 2 images not counted", "$0.0059 + images")
    none = Estimate("house-model", None, False)
    assert (none.input_text(), none.output_text(), none.text()) == ("", "", "no estimate")


async def test_a_remote_edit_says_its_input_images_are_not_counted(tmp_path: Path) -> None:
    [request] = read_batch(
        write_batch(
            tmp_path / "b.json",
            [
                {
                    "tool": "edit_image",
                    "prompt": "make the sky stormy",
                    "reference_image_path": ["photos/coast.png", "photos/sky.png"],
                    "mask_image_path": "photos/mask.png",
                    "size": "1024x1024",
                    "quality": "low",
                }
            ],
        )
    )
    plan = await offline_planner(load_catalog(), "gpt-image-2", dt.date(2026, 11, 24))(request)
    # the prompt's 5 tokens ($0.000025) and the output; the three images named are keys this client cannot read
    assert estimate(plan, load_catalog(), request.args) == Estimate(
        "gpt-image-2", 0.005905, False, 0.000025, 0.00588, uncounted_images=3
    )
