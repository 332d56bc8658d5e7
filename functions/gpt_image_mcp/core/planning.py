"""Check tool arguments against the chosen model and build the exact Images API request.

Everything here runs before any upstream call, so a refused combination costs nothing. Requests carry
only parameters the endpoint accepts, under the API's own names.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from gpt_image_mcp.core.catalog import Catalog, ModelSpec, parse_size
from gpt_image_mcp.core.errors import InvalidArgumentError
from gpt_image_mcp.core.imageinfo import ImageInfo, sniff
from gpt_image_mcp.core.pricing import Usage, estimate_input_usage
from gpt_image_mcp.core.requests import EditImageArgs, ImageToolArgs, ImageToolName, TransformImageArgs

MAX_INPUT_BYTES = 50 * 1024 * 1024
MAX_INPUT_IMAGES = 16
INPUT_FORMATS = ("png", "jpeg", "webp")
ToolName = ImageToolName
# Room an answer's files may need: uncompressed RGBA (4 bytes a pixel) bounds any picture's PNG, JPEG or WebP
# (real ones take 1-2 bytes a pixel or less), plus the embedded metadata; `auto` may be the largest standard size.
BOUND_BYTES_PER_PIXEL = 4
METADATA_BYTES_BOUND = 64 * 1024
AUTO_PIXELS_BOUND = 1536 * 1024


@dataclass(frozen=True, slots=True)
class InputImage:
    """An input image the caller supplied, already read and sniffed."""

    label: str  # how the user named it: a path, or "reference_image_base64[0]"
    data: bytes
    info: ImageInfo

    @property
    def filename(self) -> str:
        return f"image.{'jpg' if self.info.format == 'jpeg' else self.info.format}"


@dataclass(slots=True)
class ImagePlan:
    tool: ToolName
    spec: ModelSpec
    endpoint: Literal["generate", "edit"]
    params: dict[str, Any]
    record: dict[str, Any]  # the user's parameters as history records them (no image bytes)
    images: list[InputImage] = field(default_factory=list)
    mask: InputImage | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def output_format(self) -> str:
        return str(self.params["output_format"])

    @property
    def partial_images(self) -> int:
        return int(self.params.get("partial_images", 0))

    def input_usage(self) -> Usage | None:
        """The prompt and input image tokens this request is expected to be billed (`core.pricing`); the mask is
        counted as one more input image (OpenAI does not say whether it bills it, so the estimate errs high)."""
        inputs = self.images + ([self.mask] if self.mask is not None else [])
        dimensions = [(image.info.width, image.info.height) for image in inputs]
        fidelity = self.params.get("input_fidelity")
        return estimate_input_usage(self.spec, str(self.params["prompt"]), dimensions, fidelity, int(self.params["n"]))

    @property
    def expected_bytes(self) -> int:
        """An upper bound of the disk space the answer's files take, checked before OpenAI is paid."""
        size = str(self.params["size"])
        if size != "auto":
            width, height = parse_size(size)
            pixels = width * height
        else:  # an edit's `auto` follows its first image
            pixels = max([AUTO_PIXELS_BOUND] + [image.info.width * image.info.height for image in self.images[:1]])
        return int(self.params["n"]) * (pixels * BOUND_BYTES_PER_PIXEL + METADATA_BYTES_BOUND)


def as_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def decode_base64(text: str, what: str) -> bytes:
    """Decode base64 (standard or URL-safe, with or without a data: URL prefix) or say what is wrong."""
    payload = text.strip()
    if payload.startswith("data:"):
        header, sep, payload = payload.partition(",")
        if not sep or ";base64" not in header:
            raise InvalidArgumentError(f"{what} is a data: URL without ';base64,' data.")
    payload = "".join(payload.split())
    if "-" in payload or "_" in payload:
        payload = payload.replace("-", "+").replace("_", "/")
    payload += "=" * (-len(payload) % 4)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgumentError(f"{what} is not valid base64; send the file's bytes base64-encoded.") from None
    if not data:
        raise InvalidArgumentError(f"{what} is empty.")
    return data


def input_image(label: str, data: bytes) -> InputImage:
    """Sniff an input and enforce the API's format and size limits."""
    if len(data) > MAX_INPUT_BYTES:
        raise InvalidArgumentError(
            f"{label} is {len(data):,} bytes; OpenAI accepts input images up to 50 MB ({MAX_INPUT_BYTES:,} bytes)."
        )
    info = sniff(data, what=label)
    if info.format not in INPUT_FORMATS:
        raise InvalidArgumentError(f"{label} is a {info.format.upper()}; input images must be PNG, JPEG or WebP.")
    return InputImage(label=label, data=data, info=info)


@dataclass(frozen=True, slots=True)
class Streaming:
    """Whether to stream the answer (`OPENAI_IMAGE_STREAM`) and how many partial previews to ask for."""

    enabled: bool = True
    partial_images: int = 0


STREAM = Streaming()  # stream single images, no partial previews: the settings' defaults


def _stream_params(args: ImageToolArgs, streaming: Streaming, params: dict[str, Any], warnings: list[str]) -> None:
    """Stream single-image calls, so their arrival (and any partial preview) is seen as it happens. Several images
    come in one plain answer: how OpenAI streams more than one image is not documented."""
    partials = streaming.partial_images
    if not streaming.enabled:
        if partials:
            warnings.append("partial_images needs streaming, which OPENAI_IMAGE_STREAM=false turns off; none asked.")
        return
    if args.sample_count > 1:
        if partials:
            warnings.append(
                f"partial_images is for single images: with sample_count {args.sample_count} the images arrive "
                "together, without previews."
            )
        return
    params["stream"] = True
    if partials:
        params["partial_images"] = partials


def _common_params(
    args: ImageToolArgs, spec: ModelSpec, catalog: Catalog, streaming: Streaming
) -> tuple[dict[str, Any], list[str]]:
    warnings: list[str] = []
    catalog.check_size(spec, args.size)
    if args.quality not in spec.qualities:
        raise InvalidArgumentError(
            f"quality '{args.quality}' is not available for {spec.name}; use one of: {', '.join(spec.qualities)}."
        )
    if args.transparent_background:
        if args.output_format == "jpeg":
            raise InvalidArgumentError(
                "transparent_background needs output_format 'png' or 'webp': JPEG has no alpha channel."
            )
        if not spec.transparency:
            raise InvalidArgumentError(f"{spec.name} cannot make transparent backgrounds; use another model.")
    if args.output_compression is not None and args.output_format == "png":
        raise InvalidArgumentError(
            "output_compression applies to jpeg and webp only; drop it for png or choose another output_format."
        )
    params: dict[str, Any] = {
        "model": spec.name,
        "prompt": args.prompt,
        "n": args.sample_count,
        "size": args.size,
        "quality": args.quality,
        "output_format": args.output_format,
    }
    if args.transparent_background:
        params["background"] = "transparent"
    if args.output_compression is not None:
        params["output_compression"] = args.output_compression
    _stream_params(args, streaming, params, warnings)
    return params, warnings


def _record(args: ImageToolArgs, model: str) -> dict[str, Any]:
    """The caller's parameters for history and metadata: no base64 blobs, model resolved."""
    data = args.model_dump(exclude={"reference_image_base64", "mask_image_base64", "return_base64"})
    data["model"] = model
    return data


def plan_generate(
    args: ImageToolArgs, spec: ModelSpec, catalog: Catalog, warnings: list[str], streaming: Streaming = STREAM
) -> ImagePlan:
    params, more = _common_params(args, spec, catalog, streaming)
    if args.moderation != "auto":
        params["moderation"] = args.moderation
    return ImagePlan(
        tool="generate_image",
        spec=spec,
        endpoint="generate",
        params=params,
        record=_record(args, spec.name),
        warnings=warnings + more,
    )


def plan_edit(
    tool: ToolName,
    args: TransformImageArgs,
    spec: ModelSpec,
    catalog: Catalog,
    warnings: list[str],
    images: list[InputImage],
    mask: InputImage | None,
    streaming: Streaming = STREAM,
) -> ImagePlan:
    """Plan edit_image / transform_image: both go to /images/edits; only edit takes a mask."""
    params, more = _common_params(args, spec, catalog, streaming)
    if not images:
        raise InvalidArgumentError(
            f"{tool} needs a reference image: give reference_image_path or reference_image_base64."
        )
    if len(images) > MAX_INPUT_IMAGES:
        raise InvalidArgumentError(f"{len(images)} reference images given; OpenAI accepts at most {MAX_INPUT_IMAGES}.")
    if args.moderation != "auto":
        more.append("moderation applies to generate_image only; the edit endpoint uses its default filtering.")
    if args.input_fidelity is not None:
        if args.input_fidelity in spec.input_fidelity:
            params["input_fidelity"] = args.input_fidelity
        elif not spec.input_fidelity and args.input_fidelity == "high":
            more.append(f"input_fidelity not sent: {spec.fidelity_note or spec.name + ' does not take it'}.")
        else:
            allowed = ", ".join(spec.input_fidelity) if spec.input_fidelity else "none (omit it)"
            note = f" ({spec.fidelity_note})" if spec.fidelity_note else ""
            raise InvalidArgumentError(
                f"input_fidelity '{args.input_fidelity}' is not available for {spec.name}{note}; allowed: {allowed}."
            )
    if mask is not None:
        first = images[0].info
        if mask.info.format != "png" or not mask.info.has_alpha:
            raise InvalidArgumentError(
                f"{mask.label} must be a PNG with an alpha channel (transparent pixels mark the area to edit); "
                f"it is a {mask.info.format.upper()}{' without alpha' if mask.info.format == 'png' else ''}."
            )
        if (mask.info.width, mask.info.height) != (first.width, first.height):
            raise InvalidArgumentError(
                f"{mask.label} is {mask.info.width}x{mask.info.height} but the first reference image is "
                f"{first.width}x{first.height}; the mask must have the same size."
            )
    record = _record(args, spec.name)
    record["reference_images"] = [image.label for image in images]
    if isinstance(args, EditImageArgs):
        record["mask_image"] = mask.label if mask else None
    return ImagePlan(
        tool=tool,
        spec=spec,
        endpoint="edit",
        params=params,
        record=record,
        images=images,
        mask=mask,
        warnings=warnings + more,
    )


def resolve_model(
    args: ImageToolArgs, default_model: str, catalog: Catalog, today: dt.date
) -> tuple[ModelSpec, list[str]]:
    return catalog.resolve((args.model or default_model).strip(), today)
