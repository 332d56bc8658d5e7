"""The emulator's image endpoints: the API's parameter rules, its usage figures and stand-in pictures.

This is a stand-in for the OpenAI Images API, not the service. It applies the rules the real API is
documented to apply (shared notes "openai-images-api.md" §3, §4, §6, §8, and the SDK 3.57 parameter
types) so that a client bug shows up offline as the same 400/404 it would get from OpenAI. Where the
real behaviour is unknown it says so below and stays lenient. The pictures are gradients with a disc,
coloured from a hash of the prompt, so they are real, decodable, and differ per prompt and per index; with a
photographic grain ("photo", the server's default) they are as large as real answers, without it ("flat") tiny.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import io
import math
import re
import struct
import time
import uuid
import zlib
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from local_sandbox.standins.emulator.multipart import MultipartError, Part

if TYPE_CHECKING:
    from PIL import Image

Endpoint = Literal["generations", "edits"]
Detail = Literal["photo", "flat"]  # real-size pictures, or tiny flat ones for tests that do not care

MAX_PROMPT_CHARS = 32_000
MAX_INPUT_IMAGES = 16
MAX_IMAGE_BYTES = 50 * 1024 * 1024
MODERATION_TRIGGER = "forbidden-content"

_COMMON_PARAMS = {
    "prompt", "model", "n", "size", "quality", "background", "output_format", "output_compression", "stream",
    "partial_images", "complexity", "frame_count", "frame_duration_ms", "svg", "safety_identifier", "user",
    "response_format",
}  # fmt: skip
GENERATE_PARAMS = frozenset(_COMMON_PARAMS | {"moderation", "style"})
EDIT_PARAMS = frozenset(_COMMON_PARAMS | {"image", "mask", "markup", "input_fidelity"})
_FILE_PARAMS = frozenset({"image", "mask", "markup"})
_INT_PARAMS = frozenset({"n", "output_compression", "partial_images", "frame_count", "frame_duration_ms"})

_QUALITY_ORDER = ("low", "medium", "high", "xhigh", "max", "auto")
_FIXED_SIZES = ("1024x1024", "1536x1024", "1024x1536")
_SIZE = re.compile(r"(\d{1,5})x(\d{1,5})")
_MIN_PIXELS, _MAX_PIXELS, _MAX_EDGE = 655_360, 8_294_400, 3840

# Output tokens per image. gpt-image-2 family: the community formula in notes §6.2 (exact for gpt-image-2;
# the xhigh/max factors are this emulator's extrapolation). Older models: the guide's table, notes §6.3.
_QUALITY_FACTOR = {"low": 16, "medium": 48, "high": 96, "xhigh": 144, "max": 192}
_LEGACY_TOKENS = {
    "low": {"1024x1024": 272, "1024x1536": 408, "1536x1024": 400},
    "medium": {"1024x1024": 1056, "1024x1536": 1584, "1536x1024": 1568},
    "high": {"1024x1024": 4160, "1024x1536": 6240, "1536x1024": 6208},
}


class ApiError(Exception):
    """An error answer in OpenAI's shape: `{"error": {message, type, param, code}}`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.param = param
        self.code = code
        self.extra = dict(extra or {})

    def body(self) -> dict[str, object]:
        error: dict[str, object] = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        return {"error": error | self.extra}


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What one model accepts. `legacy` models take only the three fixed sizes and use the token table."""

    legacy: bool
    qualities: frozenset[str]
    input_fidelity: frozenset[str]  # empty: the parameter must be omitted
    default_fidelity: str
    markup: bool
    shutdown: dt.date | None = None


_STANDARD = frozenset({"low", "medium", "high", "auto"})
_GPT_2 = ModelSpec(False, _STANDARD, frozenset(), "high", markup=False)
# Undocumented for 2.5/2.6: whether they take input_fidelity. Accepted here (lenient where unknown).
_GPT_2_5 = ModelSpec(False, _STANDARD | {"xhigh", "max"}, frozenset({"low", "high"}), "high", markup=True)
_GPT_2_6 = ModelSpec(False, _STANDARD, frozenset({"low", "high"}), "high", markup=True)
_SUNSET = dt.date(2026, 12, 1)
_GPT_1_5 = ModelSpec(True, _STANDARD, frozenset({"low", "high"}), "low", markup=False, shutdown=_SUNSET)
_GPT_1_MINI = ModelSpec(True, _STANDARD, frozenset({"low"}), "low", markup=False, shutdown=_SUNSET)

# gpt-image-1, dall-e-2 and dall-e-3 are shut down, so like any unknown name they get 404 model_not_found.
MODELS: dict[str, ModelSpec] = {
    "gpt-image-2": _GPT_2,
    "gpt-image-2-2026-04-21": _GPT_2,
    "gpt-image-2.5-flare": _GPT_2_5,
    "gpt-image-2.5-flare-2026-09-08": _GPT_2_5,
    "gpt-image-2.5-sunburst": _GPT_2_5,
    "gpt-image-2.5-sunburst-2026-09-08": _GPT_2_5,
    "gpt-image-2.6-flare": _GPT_2_6,
    "gpt-image-2.6-sunburst": _GPT_2_6,
    "gpt-image-1.5": _GPT_1_5,
    "gpt-image-1.5-2025-12-16": _GPT_1_5,
    "chatgpt-image-latest": _GPT_1_5,
    "gpt-image-1-mini": _GPT_1_MINI,
}


def today() -> dt.date:
    """The UTC date that decides whether a model has reached its shutdown date."""
    return dt.datetime.now(dt.UTC).date()


@dataclass(frozen=True, slots=True)
class InputImage:
    """Dimensions of an uploaded image, read from its header."""

    format: str
    width: int
    height: int
    has_alpha: bool


@dataclass(frozen=True, slots=True)
class ImageJob:
    """A validated request; `size` None means `auto`."""

    endpoint: Endpoint
    model: str
    spec: ModelSpec
    prompt: str
    n: int
    size: tuple[int, int] | None
    quality: str
    background: str
    output_format: str
    output_compression: int | None
    input_fidelity: str | None
    inputs: tuple[InputImage, ...]
    safety_identifier: str | None
    stream: bool = False
    partial_images: int = 0

    @property
    def output_size(self) -> tuple[int, int]:
        if self.size is not None:
            return self.size
        if self.endpoint == "edits":
            return _snap_size(self.spec, self.inputs[0].width, self.inputs[0].height)
        return 1024, 1024

    @property
    def output_quality(self) -> str:
        return "medium" if self.quality == "auto" else self.quality

    @property
    def output_background(self) -> str:
        return "transparent" if self.background == "transparent" else "opaque"


# --- validation helpers -------------------------------------------------------------------------------------


def _listing(values: Sequence[str]) -> str:
    quoted = [f"'{value}'" for value in values]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Part):
        return "a file"
    return "an object"


def _invalid_type(name: str, expected: str, value: object) -> ApiError:
    return ApiError(
        400,
        f"Invalid type for '{name}': expected {expected}, but got {_kind(value)} instead.",
        param=name,
        code="invalid_type",
    )


def _invalid_value(name: str, value: object, allowed: Sequence[str]) -> ApiError:
    return ApiError(
        400, f"Invalid value: '{value}'. Supported values are: {_listing(allowed)}.", param=name, code="invalid_value"
    )


def _unsupported(name: str, message: str) -> ApiError:
    return ApiError(400, message, param=name, code="unsupported_parameter")


def _reject_unknown(names: Iterable[str], known: frozenset[str]) -> None:
    for name in names:
        if name.split("[", 1)[0] not in known:
            raise ApiError(400, f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")


def _get_str(params: Mapping[str, object], name: str) -> str | None:
    value = params.get(name)
    if value is None or isinstance(value, str):
        return value
    raise _invalid_type(name, "a string", value)


def _get_int(params: Mapping[str, object], name: str, low: int, high: int) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid_type(name, "an integer", value)
    if value < low:
        raise ApiError(
            400,
            f"Invalid '{name}': integer below minimum value. Expected a value >= {low}, but got {value} instead.",
            param=name,
            code="integer_below_min_value",
        )
    if value > high:
        raise ApiError(
            400,
            f"Invalid '{name}': integer above maximum value. Expected a value <= {high}, but got {value} instead.",
            param=name,
            code="integer_above_max_value",
        )
    return value


def _get_choice(params: Mapping[str, object], name: str, allowed: Sequence[str]) -> str | None:
    value = _get_str(params, name)
    if value is not None and value not in allowed:
        raise _invalid_value(name, value, allowed)
    return value


def custom_size_problem(width: int, height: int) -> str | None:
    """Why `width`x`height` breaks the gpt-image-2 custom-size rules (notes §4), or None if it is fine."""
    if width % 16 or height % 16:
        return "width and height must be multiples of 16"
    if max(width, height) > _MAX_EDGE:
        return f"the longest edge must be at most {_MAX_EDGE} pixels"
    if not _MIN_PIXELS <= width * height <= _MAX_PIXELS:
        return f"the total pixel count must be between {_MIN_PIXELS} and {_MAX_PIXELS}"
    if max(width, height) > 3 * min(width, height):
        return "the aspect ratio must be between 1:3 and 3:1"
    return None


def _parse_size(value: str | None, spec: ModelSpec) -> tuple[int, int] | None:
    if value is None or value == "auto":
        return None
    if spec.legacy and value not in _FIXED_SIZES:
        raise _invalid_value("size", value, (*_FIXED_SIZES, "auto"))
    match = _SIZE.fullmatch(value)
    if match is None:
        raise ApiError(
            400,
            f"Invalid value: '{value}'. Use 'auto' or WIDTHxHEIGHT, for example '1536x864'.",
            param="size",
            code="invalid_value",
        )
    width, height = int(match[1]), int(match[2])
    problem = custom_size_problem(width, height)
    if problem is not None:
        raise ApiError(400, f"Invalid size '{value}': {problem}.", param="size", code="invalid_value")
    return width, height


def _snap_size(spec: ModelSpec, width: int, height: int) -> tuple[int, int]:
    """The size `auto` resolves to for an edit: the first input's shape, made legal for the model."""
    if spec.legacy:
        if width * 4 > height * 5:
            return 1536, 1024
        if height * 4 > width * 5:
            return 1024, 1536
        return 1024, 1024
    w, h = float(min(width, 3 * height)), float(min(height, 3 * width))
    scale = 1.0
    if w * h < _MIN_PIXELS:
        scale = math.sqrt(_MIN_PIXELS / (w * h))
    elif w * h > _MAX_PIXELS:
        scale = math.sqrt(_MAX_PIXELS / (w * h))
    scale = min(scale, _MAX_EDGE / max(w, h))
    for step in (round, math.ceil, math.floor):
        candidate = (16 * max(1, step(w * scale / 16)), 16 * max(1, step(h * scale / 16)))
        if custom_size_problem(*candidate) is None:
            return candidate
    return 1024, 1024


# --- parsing requests ---------------------------------------------------------------------------------------


def parse_generation(body: object) -> ImageJob:
    """Validate a `/images/generations` JSON body."""
    if not isinstance(body, dict):
        raise ApiError(400, f"Invalid body: expected a JSON object, but got {_kind(body)} instead.")
    _reject_unknown(body, GENERATE_PARAMS)
    params = {str(key): value for key, value in body.items() if value is not None}
    return _validate("generations", params)


def _form_value(part: Part) -> object:
    name = part.name.split("[", 1)[0]
    if part.is_file:
        raise _invalid_type(name, "a string", part)
    try:
        text = part.text()
    except MultipartError as exc:
        raise ApiError(400, f"Invalid value for '{name}': {exc}.", param=name, code="invalid_value") from exc
    if name in _INT_PARAMS:
        if re.fullmatch(r"-?\d{1,9}", text) is None:
            raise _invalid_type(name, "an integer", text)
        return int(text)
    if name == "stream":
        if text.lower() not in ("true", "false"):
            raise _invalid_type(name, "a boolean", text)
        return text.lower() == "true"
    return text


def parse_edit(parts: Sequence[Part]) -> ImageJob:
    """Validate a `/images/edits` multipart body: `image` or repeated `image[]`, optional `mask`/`markup`."""
    _reject_unknown((part.name for part in parts), EDIT_PARAMS)
    params: dict[str, object] = {}
    files: dict[str, list[Part]] = {name: [] for name in _FILE_PARAMS}
    for part in parts:
        name = part.name.split("[", 1)[0]
        if name in _FILE_PARAMS:
            if not part.is_file:
                raise _invalid_type(name, "a file", "")
            files[name].append(part)
        else:
            params[name] = _form_value(part)
    images = files["image"]
    if not images:
        raise ApiError(400, "Missing required parameter: 'image'.", param="image", code="missing_required_parameter")
    job = _validate("edits", params)
    if len(images) > MAX_INPUT_IMAGES:
        raise ApiError(
            400,
            f"Invalid 'image': too many images. Expected at most {MAX_INPUT_IMAGES}, but got {len(images)}.",
            param="image",
            code="array_above_max_length",
        )
    inputs = tuple(_read_image(part, "image") for part in images)
    for name in ("mask", "markup"):
        if len(files[name]) > 1:
            raise ApiError(400, f"Only one '{name}' file may be given, got {len(files[name])}.", param=name)
    mask = files["mask"][0] if files["mask"] else None
    markup = files["markup"][0] if files["markup"] else None
    if mask is not None:
        _check_overlay(mask, "mask", inputs[0])
    if markup is not None:
        if mask is not None:
            raise _unsupported("markup", "'markup' cannot be combined with 'mask'; send one of them.")
        if not job.spec.markup:
            raise _unsupported("markup", f"'markup' is not supported with model '{job.model}'.")
        _check_overlay(markup, "markup", inputs[0])
        if not _has_transparent_pixels(markup.data):
            raise ApiError(400, "Invalid 'markup': it must contain transparent pixels.", param="markup")
    return dataclasses.replace(job, inputs=inputs)


def _validate(endpoint: Endpoint, params: Mapping[str, object]) -> ImageJob:
    """The checks both endpoints share; an edit's input images are added by `parse_edit`."""
    prompt = _get_str(params, "prompt")
    if prompt is None:
        raise ApiError(400, "Missing required parameter: 'prompt'.", param="prompt", code="missing_required_parameter")
    if not prompt:
        raise ApiError(
            400,
            "Invalid 'prompt': empty string. Expected a string with minimum length 1, but got an empty string instead.",
            param="prompt",
            code="empty_string",
        )
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ApiError(
            400,
            f"Invalid 'prompt': string too long. Expected a string with maximum length {MAX_PROMPT_CHARS}, "
            f"but got a string with length {len(prompt)} instead.",
            param="prompt",
            code="string_above_max_length",
        )
    model = _get_str(params, "model")
    if model is None:
        # The SDK asks callers to name a model; the real default is undocumented, so the emulator insists.
        raise ApiError(400, "Missing required parameter: 'model'.", param="model", code="missing_required_parameter")
    spec = MODELS.get(model)
    if spec is None or (spec.shutdown is not None and today() >= spec.shutdown):
        raise ApiError(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            code="model_not_found",
        )
    stream = params.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _invalid_type("stream", "a boolean", stream)

    output_format = _get_choice(params, "output_format", ("png", "webp", "jpeg", "gif", "svg")) or "png"
    if output_format in ("gif", "svg"):
        raise _unsupported(
            "output_format",
            f"output_format '{output_format}' needs preview access on the real API and is not supported by this "
            "emulator; use png, jpeg or webp.",
        )
    for name in ("frame_count", "frame_duration_ms", "svg"):
        if name in params:
            needed = "svg" if name == "svg" else "gif"
            raise _unsupported(name, f"'{name}' is only supported with output_format '{needed}'.")
    background = _get_choice(params, "background", ("transparent", "opaque", "auto")) or "auto"
    if background == "transparent" and output_format not in ("png", "webp"):
        raise _unsupported(
            "background",
            f"Transparent background requires output_format 'png' or 'webp', not '{output_format}'.",
        )
    compression = _get_int(params, "output_compression", 0, 100)
    if compression is not None and compression < 100 and output_format == "png":
        raise _unsupported("output_compression", "Compression less than 100 is not supported for PNG output format.")
    qualities = [quality for quality in _QUALITY_ORDER if quality in spec.qualities]
    quality = _get_choice(params, "quality", qualities) or "auto"
    n = _get_int(params, "n", 1, 10) or 1
    _get_choice(params, "moderation", ("low", "auto"))
    _get_choice(params, "complexity", ("low", "medium", "high"))
    partial_images = _get_int(params, "partial_images", 0, 3) or 0
    if _get_choice(params, "response_format", ("url", "b64_json")) == "url":
        raise _unsupported(
            "response_format", "response_format 'url' is not supported for GPT image models; they return b64_json."
        )
    if _get_choice(params, "style", ("vivid", "natural")) is not None:
        raise _unsupported("style", "style is not supported for GPT image models; describe the style in the prompt.")
    fidelity = _get_choice(params, "input_fidelity", ("high", "low"))
    if fidelity is not None and fidelity not in spec.input_fidelity:
        if not spec.input_fidelity:
            raise _unsupported(
                "input_fidelity",
                f"input_fidelity is not supported for model '{model}'; omit it (input images are always read at "
                "high fidelity).",
            )
        raise _invalid_value("input_fidelity", fidelity, sorted(spec.input_fidelity))
    size = _parse_size(_get_str(params, "size"), spec)
    identifier = _get_str(params, "safety_identifier") or _get_str(params, "user") or None
    return ImageJob(
        endpoint=endpoint,
        model=model,
        spec=spec,
        prompt=prompt,
        n=n,
        size=size,
        quality=quality,
        background=background,
        output_format=output_format,
        output_compression=compression,
        input_fidelity=fidelity,
        inputs=(),
        safety_identifier=identifier,
        stream=bool(stream),
        partial_images=partial_images if stream else 0,
    )


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _read_image(part: Part, param: str) -> InputImage:
    """Check an upload's size and format and read its dimensions (the error codes here are the emulator's own)."""
    from PIL import Image, UnidentifiedImageError

    label = f"'{part.filename}'" if part.filename else "the upload"
    if len(part.data) > MAX_IMAGE_BYTES:
        raise ApiError(
            400,
            f"Invalid '{param}': {label} is {len(part.data)} bytes; each image must be smaller than 50 MB.",
            param=param,
            code="image_too_large",
        )
    kind = _sniff(part.data)
    if kind is None:
        raise ApiError(
            400,
            f"Invalid '{param}': unsupported image format in {label}. Supported formats are 'image/png', "
            "'image/jpeg', and 'image/webp'.",
            param=param,
            code="invalid_image_format",
        )
    try:
        with Image.open(io.BytesIO(part.data)) as image:
            has_alpha = "A" in image.getbands() or "transparency" in image.info
            return InputImage(kind, image.width, image.height, has_alpha)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise ApiError(
            400, f"Invalid '{param}': {label} could not be decoded.", param=param, code="invalid_image"
        ) from exc


def _check_overlay(part: Part, param: str, first: InputImage) -> None:
    """A mask or markup must be a PNG with alpha and the first image's dimensions."""
    overlay = _read_image(part, param)
    if overlay.format != "png" or not overlay.has_alpha:
        raise ApiError(
            400,
            f"Invalid '{param}': it must be a PNG with an alpha channel (got {overlay.format}"
            f"{'' if overlay.has_alpha else ' without alpha'}).",
            param=param,
            code=f"invalid_{param}",
        )
    if (overlay.width, overlay.height) != (first.width, first.height):
        raise ApiError(
            400,
            f"Invalid '{param}': its size {overlay.width}x{overlay.height} does not match the first image's size "
            f"{first.width}x{first.height}.",
            param=param,
            code=f"invalid_{param}",
        )


def _has_transparent_pixels(data: bytes) -> bool:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        low, _high = image.convert("RGBA").getchannel("A").getextrema()
    return low == 0


# --- moderation, usage, response ----------------------------------------------------------------------------


def moderate(job: ImageJob) -> None:
    """Refuse prompts containing the trigger word the way the safety system refuses real ones (notes §8.3)."""
    if MODERATION_TRIGGER in job.prompt.lower():
        raise ApiError(
            400,
            "Your request was rejected by the safety system. If you believe this is an error, contact us at "
            f"help.openai.com and include the request ID {uuid.uuid4()}. safety_violations=[sexual].",
            type_="image_generation_user_error",
            code="moderation_blocked",
            extra={"moderation_details": {"moderation_stage": "input", "categories": ["sexual"]}},
        )


def output_tokens_per_image(spec: ModelSpec, quality: str, width: int, height: int) -> int:
    """Image output tokens for one image (notes §6.2 formula, or the §6.3 table for legacy models)."""
    if spec.legacy:
        return _LEGACY_TOKENS[quality][f"{width}x{height}"]
    factor = _QUALITY_FACTOR[quality]
    long, short = max(width, height), min(width, height)
    steps = (2 * factor * short + long) // (2 * long)
    return -(-(factor * steps * (2_000_000 + width * height)) // 4_000_000)


def input_image_tokens(spec: ModelSpec, image: InputImage, fidelity: str) -> int:
    """Image input tokens for one input image, as OpenAI bills them.

    Legacy models: the published GPT Image 1 rule (images-and-vision guide): fit into 2048x2048, bring the short side
    down to 512, 65 + 129 per 512 px tile (sizes rounded down), and at high fidelity 4096 more for a square image,
    6144 for one nearer portrait or landscape. The gpt-image-2 family: what the community measured on gpt-image-2
    edits (OpenAI forum, June 2026): a long side under 1024 magnified toward 1024 (at most 2x), the canvas held
    within 3:1, a token per 32 px patch, at most 1536 patches (shrunk as the vision guide shrinks for its budget).
    """
    if spec.legacy:
        return _tiles(image.width, image.height, fidelity)
    return _patches(image.width, image.height)


def _tiles(width: int, height: int, fidelity: str) -> int:
    long, short = max(width, height), min(width, height)
    if long > 2048:  # into 2048x2048
        width, height = width * 2048 // long, height * 2048 // long
        long, short = max(width, height), min(width, height)
    if short > 512:  # short side to 512
        width, height = width * 512 // short, height * 512 // short
    tiles = -(-width // 512) * -(-height // 512)
    tokens = 65 + 129 * tiles
    if fidelity == "high":
        tokens += 4096 if 4 * long < 5 * short else 6144  # nearer 1:1 than 3:2 is square
    return tokens


def _patches(width: int, height: int) -> int:
    long = max(width, height)
    factor = min(2.0, 1024 / long) if long < 1024 else 1.0
    w, h = width * factor, height * factor
    if w > 3 * h:
        h = w / 3
    elif h > 3 * w:
        w = h / 3
    count = math.ceil(w / 32) * math.ceil(h / 32)
    if count <= 1536:
        return count
    shrink = math.sqrt(32 * 32 * 1536 / (w * h))
    fit = min(math.floor(w * shrink / 32) / (w * shrink / 32), math.floor(h * shrink / 32) / (h * shrink / 32))
    w, h = w * shrink * fit, h * shrink * fit
    return math.ceil(w / 32 - 1e-9) * math.ceil(h / 32 - 1e-9)


def usage(job: ImageJob) -> dict[str, object]:
    """Tokens as OpenAI reports them. The prompt is counted at about 4 characters a token (no tokenizer here). The
    input is billed with each of the n images (n > 1 is billed as n calls, as measured on gpt-image-2); a mask is not
    counted, since OpenAI does not say that it bills one."""
    text_tokens = job.n * math.ceil(len(job.prompt) / 4)
    fidelity = job.input_fidelity or job.spec.default_fidelity
    image_tokens = job.n * sum(input_image_tokens(job.spec, image, fidelity) for image in job.inputs)
    output = job.n * output_tokens_per_image(job.spec, job.output_quality, *job.output_size)
    return {
        "input_tokens": text_tokens + image_tokens,
        "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": image_tokens},
        "output_tokens": output,
        "total_tokens": text_tokens + image_tokens + output,
        "output_tokens_details": {"image_tokens": output, "text_tokens": 0},
    }


def respond(job: ImageJob, detail: Detail = "flat") -> dict[str, object]:
    """The 200 body: n base64 images plus the resolved settings and usage, as `ImagesResponse` expects."""
    width, height = job.output_size
    transparent = job.output_background == "transparent"
    compression = None
    if job.output_format != "png":
        compression = 100 if job.output_compression is None else job.output_compression
    data = []
    for index in range(job.n):
        seed = f"{job.endpoint}\0{job.model}\0{job.prompt}\0{index}"
        image = render(width, height, job.output_format, transparent, compression, seed, detail)
        data.append({"b64_json": base64.b64encode(image).decode("ascii")})
    body: dict[str, object] = {
        "created": int(time.time()),
        "data": data,
        "background": job.output_background,
        "output_format": job.output_format,
        "quality": job.output_quality,
        "size": f"{width}x{height}",
        "usage": usage(job),
    }
    if job.safety_identifier:
        body["safety_identifier"] = job.safety_identifier
    return body


def stream_events(job: ImageJob, detail: Detail = "flat") -> list[tuple[str, dict[str, object]]]:
    """The server-sent events of a `stream=true` answer (notes §3.4): per image, `partial_images` previews, then
    the image. A completed event carries the usage of its own image; how OpenAI splits usage over several streamed
    images is undocumented, so this is the emulator's guess."""
    prefix = "image_generation" if job.endpoint == "generations" else "image_edit"
    body = respond(job, detail)
    settings = {key: body[key] for key in ("background", "output_format", "quality", "size")}
    created = {"created_at": body["created"]}
    data = body["data"]
    assert isinstance(data, list)
    single = usage(dataclasses.replace(job, n=1))
    width, height = job.output_size
    compression = None if job.output_format == "png" else 75
    transparent = job.output_background == "transparent"
    events: list[tuple[str, dict[str, object]]] = []
    for index, item in enumerate(data):
        for step in range(job.partial_images):
            seed = f"{job.endpoint}\0{job.model}\0{job.prompt}\0{index}\0partial {step}"
            preview = render(
                max(16, width // 4), max(16, height // 4), job.output_format, transparent, compression, seed
            )
            partial = {"b64_json": base64.b64encode(preview).decode("ascii"), "partial_image_index": step}
            events.append(
                (f"{prefix}.partial_image", {"type": f"{prefix}.partial_image", **partial, **settings, **created})
            )
        completed = {
            "type": f"{prefix}.completed",
            "b64_json": item["b64_json"],
            **settings,
            **created,
            "usage": single,
        }
        events.append((f"{prefix}.completed", completed))
    return events


# --- pictures -----------------------------------------------------------------------------------------------

_BAND = 8  # each picture row is repeated this many times, which lets `_png` skip compressing the repeats

# Deflate tables (RFC 1951 §3.2.5): base value and extra bits of each length and distance code.
_LENGTH_BASE = (3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163,
                195, 227, 258)  # fmt: skip
_LENGTH_EXTRA = (0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0)
_DISTANCE_BASE = (1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049,
                  3073, 4097, 6145, 8193, 12289, 16385, 24577)  # fmt: skip
_DISTANCE_EXTRA = (0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13)


@lru_cache(maxsize=64)
def _copy_block(distance: int, length: int) -> bytes:
    """A deflate block that writes `length` bytes by copying from `distance` back, ending byte-aligned."""
    value = count = 0

    def put(bits: int, width: int, *, huffman: bool = False) -> None:
        nonlocal value, count
        if huffman:  # Huffman codes are packed most significant bit first, everything else least first
            bits = int(f"{bits:0{width}b}"[::-1], 2)
        value |= bits << count
        count += width

    put(0b010, 3)  # BFINAL=0, BTYPE=01 (fixed Huffman codes)
    code = bisect_right(_DISTANCE_BASE, distance) - 1
    while length:
        take = min(258, length)
        if 0 < length - take < 3:  # keep the last match at the 3-byte minimum
            take = length - 3
        length -= take
        index = bisect_right(_LENGTH_BASE, take) - 1
        symbol = 257 + index
        if symbol < 280:
            put(symbol - 256, 7, huffman=True)
        else:
            put(0b11000000 + symbol - 280, 8, huffman=True)
        put(take - _LENGTH_BASE[index], _LENGTH_EXTRA[index])
        put(code, 5, huffman=True)
        put(distance - _DISTANCE_BASE[code], _DISTANCE_EXTRA[code])
    put(0, 7, huffman=True)  # end of block
    put(0, 3)  # then an empty stored block, which pads to a byte boundary
    count += -count % 8
    return value.to_bytes(count // 8, "little") + b"\x00\x00\xff\xff"


def _png(small: Image.Image, height: int) -> bytes:
    """An RGB/RGBA PNG, `height` rows tall, whose row y is row y // _BAND of `small`.

    zlib over the whole picture takes ~8 ms at 1024x1024. Here each distinct row is Sub-filtered and
    compressed once and its repeats are a few deflate back-references: ~2 ms for a ~15 KB valid PNG.
    """
    from PIL import Image, ImageChops

    width, stride = small.width, small.width * len(small.getbands())
    left = Image.new(small.mode, small.size)
    left.paste(small.crop((0, 0, width - 1, small.height)), (1, 0))
    filtered = ImageChops.subtract_modulo(small, left).tobytes()  # PNG filter 1 (Sub): minus the pixel to the left
    compressor = zlib.compressobj(1, zlib.DEFLATED, -15)  # raw deflate; the zlib header and checksum are added here
    stream = [b"\x78\x01"]
    adler = 1
    for index, start in enumerate(range(0, len(filtered), stride)):
        row = b"\x01" + filtered[start : start + stride]
        copies = min(_BAND, height - index * _BAND)
        # A full flush drops the compressor's history, so it never points back across the copies it cannot see.
        stream += (compressor.compress(row), compressor.flush(zlib.Z_FULL_FLUSH))
        if copies > 1:
            stream.append(_copy_block(len(row), len(row) * (copies - 1)))
        adler = zlib.adler32(row * copies, adler)
    stream += (compressor.flush(zlib.Z_FINISH), struct.pack(">I", adler))

    def chunk(tag: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 6 if small.mode == "RGBA" else 2, 0, 0, 0)
    idat = b"".join(stream)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@lru_cache(maxsize=32)  # the same request gives the same pictures: a repeated one (a benchmark) costs nothing
def render(
    width: int,
    height: int,
    output_format: str,
    transparent: bool,
    compression: int | None,
    seed: str,
    detail: Detail = "flat",
) -> bytes:
    """A gradient with a disc, both coloured from `seed`; the background is alpha 0 when `transparent`. With
    detail "photo" the picture carries a photographic grain, so it is as large as a real answer: a 1024x1024 PNG
    of about 1.3 MB, a JPEG of about 0.55 MB at quality 100, a WebP of about 0.35 MB; larger sizes alike."""
    from PIL import Image, ImageDraw

    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    corners = [tuple(digest[i : i + 3]) for i in range(0, 12, 3)]
    mode = "RGBA" if transparent else "RGB"
    rows = -(-height // _BAND)
    gradient = Image.new("RGB", (2, 2))
    gradient.putdata(corners)
    small = gradient.resize((width, rows), Image.Resampling.BILINEAR).convert(mode)
    if transparent:
        small.putalpha(0)
    radius = min(width, height) * (0.2 + 0.15 * digest[12] / 255)
    centre_x = width * (0.35 + 0.3 * digest[13] / 255)
    centre_y = height * (0.35 + 0.3 * digest[14] / 255)
    ratio = rows / height
    box = (centre_x - radius, (centre_y - radius) * ratio, centre_x + radius, (centre_y + radius) * ratio)
    ImageDraw.Draw(small).ellipse(box, fill=(*digest[15:18], 255))
    if output_format == "png" and detail == "flat":
        return _png(small, height)
    picture = small.resize((width, height), Image.Resampling.NEAREST)
    if detail == "photo":
        picture = _grainy(picture)
    out = io.BytesIO()
    if output_format == "png":
        picture.save(out, "PNG", compress_level=1)
    elif output_format == "jpeg":
        picture.save(out, "JPEG", quality=compression)
    else:
        picture.save(out, "WEBP", quality=compression, method=0)
    return out.getvalue()


@lru_cache(maxsize=4)
def _grain(width: int, height: int) -> Image.Image:
    """Soft colour noise around mid-grey, like a photograph's texture; made once per size (~0.2 s per megapixel)."""
    from PIL import Image, ImageFilter

    channels = [Image.effect_noise((width, height), 64).filter(ImageFilter.GaussianBlur(2.2)) for _ in range(3)]
    return Image.merge("RGB", channels)


def _grainy(picture: Image.Image) -> Image.Image:
    from PIL import Image, ImageChops

    colour = ImageChops.add(picture.convert("RGB"), _grain(*picture.size), offset=-128)
    if picture.mode == "RGBA":
        return Image.merge("RGBA", (*colour.split(), picture.getchannel("A")))
    return colour
