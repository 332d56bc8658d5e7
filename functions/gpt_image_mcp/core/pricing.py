"""Cost in USD from token usage, priced per model from the catalog.

After a call the API's `usage` is authoritative; before a call (or when a proxy drops `usage`) the
output tokens are estimated from size and quality, and the cost says it is an estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from gpt_image_mcp.core.catalog import Catalog, ModelSpec

_GPT_IMAGE_2_FACTOR = {"low": 16, "medium": 48, "high": 96}
PARTIAL_IMAGE_TOKENS = 100  # image output tokens OpenAI bills per streamed partial image (its image guide)


@dataclass(frozen=True, slots=True)
class Usage:
    input_text_tokens: int = 0
    input_image_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    partial_image_tokens: int = 0  # of output_tokens: the partial previews

    def with_partial_images(self, count: int) -> Usage:
        """The usage plus `count` partial previews, which the final image's usage does not include."""
        extra = PARTIAL_IMAGE_TOKENS * count
        return replace(
            self,
            output_tokens=self.output_tokens + extra,
            total_tokens=self.total_tokens + extra,
            partial_image_tokens=self.partial_image_tokens + extra,
        )

    @classmethod
    def from_api(cls, usage: dict[str, Any] | None) -> Usage | None:
        """Read the Images API `usage` object (`input_tokens_details` split text / image)."""
        if not usage:
            return None
        details = usage.get("input_tokens_details") or {}
        text = int(details.get("text_tokens") or 0)
        image = int(details.get("image_tokens") or 0)
        if not details:
            text = int(usage.get("input_tokens") or 0)
        output = int(usage.get("output_tokens") or 0)
        total = int(usage.get("total_tokens") or (text + image + output))
        return cls(input_text_tokens=text, input_image_tokens=image, output_tokens=output, total_tokens=total)


@dataclass(frozen=True, slots=True)
class Cost:
    text_input_usd: float
    image_input_usd: float
    image_output_usd: float
    total_usd: float
    estimated: bool  # True when output tokens were estimated rather than reported by the API
    partial_images_usd: float = 0.0  # of image_output_usd: the partial previews


def estimate_output_tokens(catalog: Catalog, spec: ModelSpec, width: int, height: int, quality: str) -> int | None:
    """Output tokens for one image, or None when no estimator applies (unknown model, xhigh/max)."""
    if spec.output_tokens == "gpt-image-2":
        factor = _GPT_IMAGE_2_FACTOR.get(quality)
        if factor is None:
            return None
        long_edge, short_edge = max(width, height), min(width, height)
        scaled = (2 * factor * short_edge + long_edge) // (2 * long_edge)
        return math.ceil(factor * scaled * (2_000_000 + width * height) / 4_000_000)
    if spec.output_tokens == "legacy":
        return catalog.legacy_output_tokens.get(quality, {}).get(f"{width}x{height}")
    return None


def price(spec: ModelSpec, usage: Usage, *, estimated: bool = False) -> Cost | None:
    """Cost of `usage` at the model's rates; None when the catalog has no prices for the model."""
    if spec.prices is None:
        return None
    rates = spec.prices
    text = usage.input_text_tokens * rates.text_input / 1_000_000
    image_in = usage.input_image_tokens * rates.image_input / 1_000_000
    image_out = usage.output_tokens * rates.image_output / 1_000_000
    return Cost(
        text_input_usd=round(text, 6),
        image_input_usd=round(image_in, 6),
        image_output_usd=round(image_out, 6),
        total_usd=round(text + image_in + image_out, 6),
        estimated=estimated,
        partial_images_usd=round(usage.partial_image_tokens * rates.image_output / 1_000_000, 6),
    )
