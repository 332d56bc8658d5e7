"""Cost in USD from token usage, priced per model from the catalog.

After a call the API's `usage` is authoritative; before a call (or when a proxy drops `usage`) the tokens are
estimated, and the cost says it is an estimate: output tokens from size and quality, prompt tokens from its length,
input image tokens from each image's dimensions by the model's rule (`input_tokens` in the catalog):

- "tiles" (gpt-image-1.5, 1-mini, chatgpt-image-latest): OpenAI's published GPT Image 1 rule. The image is fitted
  into 2048x2048, its short side brought down to 512 px, then 65 tokens plus 129 per 512 px tile; input_fidelity
  high adds 4096 tokens for a square image and 6144 for one nearer portrait or landscape.
- "patches" (the gpt-image-2 family, which always reads inputs at high fidelity): not published by OpenAI; the rule
  the community measured on gpt-image-2 edits (OpenAI forum, June 2026): an image whose long side is under 1024 px is
  magnified toward 1024 (at most 2x), its canvas held within 3:1, then one token per 32 px patch, with the patch
  budget of 1536 applied the way OpenAI's vision guide resizes for it.

An input image is billed with each of the `n` images asked for (measured on gpt-image-2: `n` > 1 is billed as `n`
calls), so the input tokens count `n` times.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import astuple, dataclass, replace
from typing import Any

from gpt_image_mcp.core.catalog import Catalog, ModelSpec

_GPT_IMAGE_2_FACTOR = {"low": 16, "medium": 48, "high": 96}
PARTIAL_IMAGE_TOKENS = 100  # image output tokens OpenAI bills per streamed partial image (its image guide)
TEXT_CHARS_PER_TOKEN = 4  # OpenAI's rule of thumb for English text; no tokenizer is a dependency
DEFAULT_FIDELITY = "low"  # what the API assumes when a model takes input_fidelity and none is sent

# "tiles": OpenAI's images-and-vision guide, GPT Image 1.
TILE_FIT, TILE_SHORT_SIDE, TILE = 2048, 512, 512
TILE_BASE_TOKENS, TILE_TOKENS = 65, 129
HIGH_FIDELITY_SQUARE, HIGH_FIDELITY_OTHER = 4096, 6144
SQUARE_BELOW_RATIO = 1.25  # nearer 1:1 than 3:2 counts as square
# "patches": measured on gpt-image-2 edits.
PATCH, PATCH_BUDGET = 32, 1536
MAGNIFY_TOWARD, MAGNIFY_AT_MOST, CANVAS_MAX_RATIO = 1024, 2.0, 3.0


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

    def plus(self, other: Usage) -> Usage:
        return Usage(*(mine + theirs for mine, theirs in zip(astuple(self), astuple(other), strict=True)))

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


def estimate_text_tokens(text: str) -> int:
    """Prompt tokens without a tokenizer: 4 characters of ASCII a token, and one a token for any other character
    (accents, CJK), which tokenizers split finer; an honest estimate for prose, not a count."""
    other = sum(1 for character in text if not character.isascii())
    return math.ceil((len(text) - other) / TEXT_CHARS_PER_TOKEN) + other


def estimate_image_input_tokens(spec: ModelSpec, width: int, height: int, fidelity: str) -> int | None:
    """Input tokens for one input image of `width` x `height`; None when the model has no known rule."""
    if spec.input_tokens == "tiles":
        return _tile_tokens(width, height, fidelity)
    if spec.input_tokens == "patches":
        return _patch_tokens(width, height)
    return None


def estimate_input_usage(
    spec: ModelSpec, prompt: str, images: Sequence[tuple[int, int]], fidelity: str | None, n: int = 1
) -> Usage | None:
    """The input side of a request before it is sent: its prompt and input images (width, height), billed with each
    of the `n` images; None when an image cannot be counted for this model."""
    per_image = [estimate_image_input_tokens(spec, w, h, fidelity or DEFAULT_FIDELITY) for w, h in images]
    if None in per_image:
        return None
    text = estimate_text_tokens(prompt) * n
    image = sum(tokens for tokens in per_image if tokens is not None) * n
    return Usage(input_text_tokens=text, input_image_tokens=image, total_tokens=text + image)


def _tile_tokens(width: int, height: int, fidelity: str) -> int:
    fit = min(1.0, TILE_FIT / max(width, height))
    scale = fit * min(1.0, TILE_SHORT_SIDE / (min(width, height) * fit))
    scaled_w, scaled_h = math.floor(width * scale), math.floor(height * scale)  # 1024x1025 is one tile, as billed
    tokens = TILE_BASE_TOKENS + TILE_TOKENS * math.ceil(scaled_w / TILE) * math.ceil(scaled_h / TILE)
    if fidelity == "high":
        square = max(width, height) / min(width, height) < SQUARE_BELOW_RATIO
        tokens += HIGH_FIDELITY_SQUARE if square else HIGH_FIDELITY_OTHER
    return tokens


def _patch_tokens(width: int, height: int) -> int:
    long_edge = max(width, height)
    magnify = min(MAGNIFY_AT_MOST, MAGNIFY_TOWARD / long_edge) if long_edge < MAGNIFY_TOWARD else 1.0
    w, h = width * magnify, height * magnify
    w, h = max(w, h / CANVAS_MAX_RATIO), max(h, w / CANVAS_MAX_RATIO)
    patches = math.ceil(w / PATCH) * math.ceil(h / PATCH)
    if patches <= PATCH_BUDGET:
        return patches
    shrink = math.sqrt(PATCH * PATCH * PATCH_BUDGET / (w * h))
    across, down = w * shrink / PATCH, h * shrink / PATCH
    shrink *= min(math.floor(across) / across, math.floor(down) / down)  # whole patches along the tighter edge
    return _whole(w * shrink / PATCH) * _whole(h * shrink / PATCH)


def _whole(patches: float) -> int:
    """Patches across an edge: rounded up, but an edge resized to a whole number of patches is not one more."""
    return math.ceil(round(patches, 9))


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
