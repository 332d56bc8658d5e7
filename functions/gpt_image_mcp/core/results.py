"""Structured results of the image tools: the output schema every MCP client sees."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ImageFile(BaseModel):
    path: str = Field(description="Key relative to your image folder (or S3 prefix).")
    location: str = Field(description="Where the file is: an absolute path locally, s3://bucket/key remotely.")
    link: str = Field(description="file:// URI locally, presigned https URL remotely.")
    width: int
    height: int
    bytes: int
    format: str
    mime_type: str


class UsageInfo(BaseModel):
    input_text_tokens: int
    input_image_tokens: int
    output_tokens: int
    total_tokens: int
    partial_image_tokens: int = Field(default=0, description="Of output_tokens: 100 per streamed partial image.")


class CostInfo(BaseModel):
    currency: str = "USD"
    text_input: float
    image_input: float
    image_output: float
    total: float
    estimated: bool = Field(description="True when OpenAI returned no usage and tokens were estimated.")
    partial_images: float = Field(default=0.0, description="Of image_output: the streamed partial images.")


class ImageToolResult(BaseModel):
    status: Literal["completed", "continues_as_job"] = Field(
        default="completed",
        description="completed: the images are below. continues_as_job: the call would not fit this request's time "
        "limit and runs as background job `job_id` (check_job_status, get_job_result); images is empty.",
    )
    job_id: str | None = Field(default=None, description="The background job, when status is continues_as_job.")
    history_id: str | None = Field(description="Id for get_history_by_uuid; also embedded in each file's metadata.")
    tool: str
    model: str
    prompt: str
    size: str
    quality: str
    output_format: str
    images: list[ImageFile]
    usage: UsageInfo | None
    cost: CostInfo | None
    warnings: list[str] = Field(default_factory=list)


class MetadataCheck(BaseModel):
    path: str | None
    format: str
    width: int
    height: int
    metadata: dict[str, str] = Field(description="MCP-* fields embedded in the file.")
    history_id: str | None
    status: str = Field(description="verified | mismatch | no_history | no_metadata")
    detail: str


class ListedImageInfo(BaseModel):
    path: str
    location: str
    link: str
    bytes: int
    modified: str


class ImageListResult(BaseModel):
    directory: str
    count: int
    images: list[ListedImageInfo]


class HistorySummary(BaseModel):
    uuid: str
    created_at: str
    tool_name: str
    model: str
    prompt: str
    image_count: int
    paths: list[str]
    cost_usd: float | None


class HistoryListResult(BaseModel):
    total: int
    offset: int
    limit: int
    records: list[HistorySummary]


class HistoryDetail(BaseModel):
    uuid: str
    created_at: str
    tool_name: str
    model: str
    prompt: str
    parameters: dict[str, object]
    param_hash: str
    images: list[dict[str, object]] = Field(
        description="Each file: key, location, format, width, height, size_bytes, and a link made now (null when "
        "the file is no longer there)."
    )
    usage: dict[str, object] | None
    cost: dict[str, object] | None


class JobInfo(BaseModel):
    job_id: str
    tool_name: str
    prompt: str
    status: str = Field(description="pending | running | completed | failed | cancelled")
    progress: float = Field(description="0 to 1.")
    message: str = Field(description="What the job is doing, or how it ended.")
    created_at: str
    updated_at: str
    attempts: int = Field(description="Times a worker started it (more than 1 after a server restart).")
    cancel_requested: bool
    background: bool = Field(
        description=(
            "True for a background job (start_generation_job, an MCP task, or a call that continued as a job); "
            "False for the record of a synchronous call."
        )
    )
    error: str | None = Field(description="Why it failed, when it failed.")
    history_id: str | None = Field(description="The history record of the finished call, once completed.")


class JobResult(BaseModel):
    job: JobInfo
    result: ImageToolResult | None = Field(description="The image result, once the job completed.")


class JobListResult(BaseModel):
    total: int
    offset: int
    limit: int
    jobs: list[JobInfo]
