"""What a request is expected to cost, before anything is sent: the catalog's token prices (`core.pricing`).

The output side: image output tokens from the model, size, quality and count, plus any partial previews. `auto` lets
OpenAI choose, so an `auto` size or quality is priced at the most it can cost (the costliest standard size; the
highest quality the estimator knows) and marked as an upper bound. The input side: the prompt's text tokens and each
input image's (and mask's) tokens by the model's rule, read from the plan's images. Against a remote deployment the
input images are keys in the caller's remote folder, which this client cannot read: the estimate says how many
it could not count, never leaves them out silently. A model without prices, or a quality without an estimator
(xhigh, max), has no estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpt_image_mcp.core.catalog import Catalog, parse_size
from gpt_image_mcp.core.planning import ImagePlan, as_list
from gpt_image_mcp.core.pricing import Usage, estimate_output_tokens, price
from gpt_image_mcp.core.requests import EditImageArgs, ImageToolArgs, TransformImageArgs

STANDARD_SIZES = ("1024x1024", "1536x1024", "1024x1536")  # what `auto` chooses among
ESTIMATED_QUALITIES = ("low", "medium", "high")


@dataclass(frozen=True, slots=True)
class Estimate:
    model: str  # as planned: the request's, or the default
    usd: float | None  # None: no estimate for this model or quality
    upper_bound: bool  # `auto` size or quality, priced at the most it can cost
    input_usd: float = 0.0  # of usd: the prompt and the input images counted
    output_usd: float = 0.0  # of usd: the images made (and partial previews)
    uncounted_images: int = 0  # input images (remote keys) the estimate could not read, so not in usd

    def text(self) -> str:
        return self._dollars(self.usd, bound=self.upper_bound, more=bool(self.uncounted_images))

    def input_text(self) -> str:
        if self.usd is None:
            return ""
        images = self.uncounted_images
        missing = f" + {images} image{'' if images == 1 else 's'} not counted" if images else ""
        return self._dollars(self.input_usd) + missing

    def output_text(self) -> str:
        return "" if self.usd is None else self._dollars(self.output_usd, bound=self.upper_bound)

    @staticmethod
    def _dollars(usd: float | None, *, bound: bool = False, more: bool = False) -> str:
        if usd is None:
            return "no estimate"
        return f"{'≤ ' if bound else ''}${usd:.4f}{' + images' if more else ''}"


def estimate(plan: ImagePlan, catalog: Catalog, args: ImageToolArgs) -> Estimate:
    """`plan` is the request planned (locally with its input images read; remotely without them); `args` are the
    request's parameters, which name the input images a remote plan could not read."""
    spec, size, quality = plan.spec, str(plan.params["size"]), str(plan.params["quality"])
    sizes = [parse_size(size)] if size != "auto" else [parse_size(standard) for standard in STANDARD_SIZES]
    qualities = [quality] if quality != "auto" else [q for q in ESTIMATED_QUALITIES if q in spec.qualities]
    per_image = [estimate_output_tokens(catalog, spec, w, h, q) for w, h in sizes for q in qualities]
    inputs = plan.input_usage()
    if spec.prices is None or not per_image or None in per_image or inputs is None:
        return Estimate(model=spec.name, usd=None, upper_bound=False)
    tokens = max(count for count in per_image if count is not None) * int(plan.params["n"])
    output = Usage(output_tokens=tokens, total_tokens=tokens).with_partial_images(plan.partial_images)
    cost = price(spec, output.plus(inputs), estimated=True)
    assert cost is not None  # the spec has prices
    return Estimate(
        model=spec.name,
        usd=cost.total_usd,
        upper_bound=len(per_image) > 1,
        input_usd=round(cost.text_input_usd + cost.image_input_usd, 6),
        output_usd=cost.image_output_usd,
        uncounted_images=_named_images(args) - len(plan.images) - (plan.mask is not None),
    )


def _named_images(args: ImageToolArgs) -> int:
    """The input images and mask a request names, read or not."""
    if not isinstance(args, TransformImageArgs):
        return 0
    named = len(as_list(args.reference_image_path)) + len(as_list(args.reference_image_base64))
    if isinstance(args, EditImageArgs):
        named += len(as_list(args.mask_image_path)) + len(as_list(args.mask_image_base64))
    return named
