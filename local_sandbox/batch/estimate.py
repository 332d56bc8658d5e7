"""What a request is expected to cost, before anything is sent: the catalog's token prices (`core.pricing`).

The image output tokens dominate an image's price and follow from the model, size, quality and count. `auto` lets
OpenAI choose, so an `auto` size or quality is priced at the most it can cost (the costliest standard size; the
highest quality the estimator knows) and marked as an upper bound. Prompt text and input images add input tokens,
a small share that is not estimated. A model without prices, or a quality without an estimator (xhigh, max), has no
estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpt_image_mcp.core.catalog import Catalog, parse_size
from gpt_image_mcp.core.planning import ImagePlan
from gpt_image_mcp.core.pricing import Usage, estimate_output_tokens, price

STANDARD_SIZES = ("1024x1024", "1536x1024", "1024x1536")  # what `auto` chooses among
ESTIMATED_QUALITIES = ("low", "medium", "high")


@dataclass(frozen=True, slots=True)
class Estimate:
    model: str  # as planned: the request's, or the default
    usd: float | None  # None: no estimate for this model or quality
    upper_bound: bool  # `auto` size or quality, priced at the most it can cost

    def text(self) -> str:
        if self.usd is None:
            return "no estimate"
        return f"{'≤ ' if self.upper_bound else ''}${self.usd:.3f}"


def estimate(plan: ImagePlan, catalog: Catalog) -> Estimate:
    spec, size, quality = plan.spec, str(plan.params["size"]), str(plan.params["quality"])
    sizes = [parse_size(size)] if size != "auto" else [parse_size(standard) for standard in STANDARD_SIZES]
    qualities = [quality] if quality != "auto" else [q for q in ESTIMATED_QUALITIES if q in spec.qualities]
    per_image = [estimate_output_tokens(catalog, spec, w, h, q) for w, h in sizes for q in qualities]
    if spec.prices is None or not per_image or None in per_image:
        return Estimate(model=spec.name, usd=None, upper_bound=False)
    tokens = max(count for count in per_image if count is not None) * int(plan.params["n"])
    cost = price(spec, Usage(output_tokens=tokens, total_tokens=tokens), estimated=True)
    assert cost is not None  # the spec has prices
    return Estimate(model=spec.name, usd=cost.total_usd, upper_bound=len(per_image) > 1)
