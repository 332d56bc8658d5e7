"""Sizes in messages read as a person would write them."""

from __future__ import annotations

import pytest

from gpt_image_mcp.core.sizes import human_size


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "0 bytes"),
        (1, "1 byte"),
        (100, "100 bytes"),
        (1023, "1023 bytes"),
        (1024, "1 KB"),
        (1536, "1.5 KB"),
        (150 * 1024, "150 KB"),
        (1024 * 1024, "1 MB"),
        (int(1.25 * 1024 * 1024), "1.2 MB"),
        (50 * 1024 * 1024, "50 MB"),
    ],
)
def test_human_size(size: int, shown: str) -> None:
    assert human_size(size) == shown
