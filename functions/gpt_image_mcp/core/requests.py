"""Tool arguments as pydantic models: the JSON schema a client sees, with a description per field.

Names and defaults follow the reference server, so prompts and configs written for it keep working.
Checks that need the model catalog (sizes, qualities, transparency) live in `planning`, which can name
what the chosen model allows.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gpt_image_mcp.core.errors import InvalidArgumentError

MAX_PROMPT_CHARS = 32_000
Quality = Literal["auto", "low", "medium", "high", "xhigh", "max"]
OutputFormat = Literal["png", "jpeg", "webp"]
ImageSource = str | list[str]


class ImageToolArgs(BaseModel):
    """Parameters shared by generate_image, edit_image and transform_image."""

    model_config = ConfigDict(extra="ignore")

    prompt: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_PROMPT_CHARS,
            description="What the image should show (up to 32,000 characters). Text in quotes is rendered.",
        ),
    ]
    output_path: Annotated[
        str | None,
        Field(
            description=(
                "Where to save, relative to the output folder (or an absolute path inside it), e.g. "
                "'posters/launch.png'. Folders are created; an existing file is never overwritten (a free "
                "name is chosen); the extension is set to match output_format. Default: a name made from "
                "the prompt."
            ),
        ),
    ] = None
    model: Annotated[
        str | None,
        Field(description="GPT image model, e.g. 'gpt-image-2' or 'gpt-image-2.6-sunburst'. Default: the server's."),
    ] = None
    size: Annotated[
        str,
        Field(
            description=(
                "'auto' or WIDTHxHEIGHT: 1024x1024, 1536x1024 (landscape), 1024x1536 (portrait); gpt-image-2 and "
                "newer also take custom sizes (edges multiples of 16, up to 3840, ratio up to 3:1)."
            ),
        ),
    ] = "auto"
    quality: Annotated[
        Quality, Field(description="low (fastest, cheapest), medium, high, or auto. xhigh/max: 2.5 models only.")
    ] = "auto"
    output_format: Annotated[OutputFormat, Field(description="File format: png, jpeg or webp.")] = "png"
    output_compression: Annotated[
        int | None, Field(ge=0, le=100, description="0-100 compression for jpeg and webp (100 = best quality).")
    ] = None
    transparent_background: Annotated[
        bool, Field(description="Transparent background (png or webp only); sent as background='transparent'.")
    ] = False
    moderation: Annotated[
        Literal["auto", "low"],
        Field(description="Content filtering for generate_image: auto (default) or low (less restrictive)."),
    ] = "auto"
    sample_count: Annotated[int, Field(ge=1, le=10, description="How many images to make (1-10).")] = 1
    return_base64: Annotated[
        bool,
        Field(description="Also return the full image inline as base64 (refused above the server's size cap)."),
    ] = False
    include_thumbnail: Annotated[
        bool | None,
        Field(description="Add a small JPEG preview to the result. Default: OPENAI_IMAGE_THUMBNAIL."),
    ] = None
    partial_images: Annotated[
        int | None,
        Field(
            ge=0,
            le=3,
            description=(
                "Partial previews streamed while the image is made (0-3, sample_count 1 only); each is a progress "
                "step and costs 100 output tokens. Default: OPENAI_IMAGE_PARTIAL_IMAGES (0)."
            ),
        ),
    ] = None

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, prompt: str) -> str:
        """OpenAI would be asked (and could bill) for an image of nothing: refuse it here."""
        if not prompt.strip():
            raise ValueError(f"the prompt is blank ({len(prompt)} whitespace characters); describe the image to make")
        return prompt


class GenerateImageArgs(ImageToolArgs):
    """Arguments of generate_image."""


_REFERENCE_PATH = Field(
    description=(
        "Input image path(s), relative to the input folder or absolute inside it; a list for several "
        "references (up to 16, the first is edited). png, jpeg or webp, under 50 MB each."
    ),
)
_REFERENCE_BASE64 = Field(description="Input image(s) as base64 (a data: URL prefix is accepted); a list for several.")
_FIDELITY = Field(
    description="How closely to keep input details (faces, logos): low or high. Only some models take it."
)


class TransformImageArgs(ImageToolArgs):
    """Arguments of transform_image: restyle or reinterpret reference image(s)."""

    reference_image_path: Annotated[ImageSource | None, _REFERENCE_PATH] = None
    reference_image_base64: Annotated[ImageSource | None, _REFERENCE_BASE64] = None
    input_fidelity: Annotated[Literal["low", "high"] | None, _FIDELITY] = None


class EditImageArgs(TransformImageArgs):
    """Arguments of edit_image: inpainting with an optional mask."""

    mask_image_path: Annotated[
        str | None,
        Field(
            description=(
                "Mask PNG with an alpha channel, the same size as the first reference image; fully transparent "
                "pixels mark the area to change."
            ),
        ),
    ] = None
    mask_image_base64: Annotated[str | None, Field(description="The mask as base64 PNG instead of a path.")] = None


ImageToolName = Literal["generate_image", "edit_image", "transform_image"]


class ListGeneratedImagesArgs(BaseModel):
    directory: Annotated[
        str | None, Field(description="Folder relative to the output folder (or absolute inside it); default: all.")
    ] = None
    limit: Annotated[int, Field(ge=1, le=500, description="At most this many images, newest first.")] = 50


class ListHistoryArgs(BaseModel):
    limit: Annotated[int, Field(ge=1, le=100, description="Records per page (1-100).")] = 20
    offset: Annotated[int, Field(ge=0, description="Records to skip, for paging.")] = 0
    tool_name: Annotated[
        ImageToolName | None, Field(description="Only calls of this tool: generate_image, edit_image, transform_image.")
    ] = None
    query: Annotated[str | None, Field(max_length=500, description="Text to find in prompts (any case).")] = None


class GetHistoryArgs(BaseModel):
    uuid: Annotated[str, Field(min_length=1, max_length=100, description="History id from a result or a list.")]


class GetMetadataArgs(BaseModel):
    image_path: Annotated[
        str | None, Field(description="Image path relative to the output folder (or absolute inside it).")
    ] = None
    image_base64: Annotated[str | None, Field(description="The image as base64, instead of a path.")] = None


ARGS_BY_TOOL: dict[ImageToolName, type[ImageToolArgs]] = {
    "generate_image": GenerateImageArgs,
    "edit_image": EditImageArgs,
    "transform_image": TransformImageArgs,
}
JobStatus = Literal["pending", "running", "completed", "failed", "cancelled"]


class _ToolChoice(BaseModel):
    tool_name: Annotated[
        ImageToolName,
        Field(description="Which image tool the job runs: generate_image, edit_image or transform_image."),
    ]


class StartJobArgs(EditImageArgs, _ToolChoice):
    """Arguments of start_generation_job: the tool to run plus its parameters, flat, as in the reference
    (tool_name comes first in the schema: the base listed last contributes its fields first)."""

    idempotency_key: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=200,
            description=(
                "A key of yours (up to 200 characters) that makes the start safe to repeat: a later start with the "
                "same key returns that job as it stands instead of starting, and paying for, another. Give each "
                "different request its own key."
            ),
        ),
    ] = None

    def tool_args(self) -> ImageToolArgs:
        """The chosen tool's own arguments. A parameter that tool does not take is refused, not silently dropped."""
        given = self.model_dump(exclude={"tool_name", "idempotency_key"}, exclude_none=True)
        refuse_foreign(self.tool_name, given)
        return ARGS_BY_TOOL[self.tool_name].model_validate(given)


# OpenAI's names (and near misses) for parameters this server names otherwise: the hint a caller needs.
_KNOWN_AS = {"n": "sample_count", "image": "reference_image_path", "mask": "mask_image_path", "filename": "file_name"}


def unknown_parameters(names: Iterable[str], known: Collection[str]) -> list[str]:
    """`name: not a parameter of <what>` for each of `names` not in `known`, with the name meant when it is clear
    (OpenAI's own name for it, or a close spelling). A parameter that is not known is refused rather than dropped:
    dropping `n` would make one image where four were asked, and bill it."""
    import difflib  # only for a refusal: not worth its import at start-up

    problems = []
    for name in names:
        if name in known:
            continue
        meant = _KNOWN_AS.get(name)
        if meant not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            meant = close[0] if close else None
        problems.append(f"unknown parameter '{name}'" + (f" (did you mean '{meant}'?)" if meant else ""))
    return problems


def refuse_foreign(tool: ImageToolName, names: Iterable[str], *, chooser: str = "tool_name") -> None:
    """Refuse the parameters among `names` that another image tool takes but `tool` does not, naming the tools that
    take them; `chooser` is what the caller calls its choice of tool."""
    model = ARGS_BY_TOOL[tool]
    foreign = [name for name in names if name not in model.model_fields]
    if foreign:
        takers = [other for other, args in ARGS_BY_TOOL.items() if foreign[0] in args.model_fields]
        raise InvalidArgumentError(
            f"{', '.join(foreign)} {'is' if len(foreign) == 1 else 'are'} not a parameter of {tool} "
            f"(only {' and '.join(takers)} take{'s' if len(takers) == 1 else ''} it); choose that {chooser} "
            "or leave it out."
        )


class JobIdArgs(BaseModel):
    job_id: Annotated[str, Field(min_length=1, max_length=100, description="Job id from start_generation_job.")]


class ListJobsArgs(BaseModel):
    status: Annotated[
        JobStatus | None, Field(description="Only jobs in this state: pending, running, completed, failed, cancelled.")
    ] = None
    tool_name: Annotated[ImageToolName | None, Field(description="Only jobs of this tool.")] = None
    include_synchronous: Annotated[
        bool,
        Field(
            description=(
                "Also list the jobs of synchronous image calls (every generate_image, edit_image and "
                "transform_image call is recorded as a job); by default only background jobs are listed."
            )
        ),
    ] = False
    limit: Annotated[int, Field(ge=1, le=100, description="Jobs per page (1-100), newest first.")] = 20
    offset: Annotated[int, Field(ge=0, description="Jobs to skip, for paging.")] = 0
