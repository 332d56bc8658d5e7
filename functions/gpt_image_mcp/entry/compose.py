"""What the two Lambda functions are built from, in one place, so the MCP function and the worker cannot drift apart.

The MCP function starts jobs (`JobService.start`: row in DynamoDB, message to SQS); the worker runs them
(`JobService.execute`). Both need the same image service (S3 images, DynamoDB history, the OpenAI client with the key
from Secrets Manager) and the same job store, or a job started by one would not be what the other runs.

Import direction: entry.compose -> aws.*, core.*; boto3 clients come from `aws.clients` (or are passed in, for tests
and the local emulation). Everything heavy is imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from gpt_image_mcp.core.errors import ConfigurationError

if TYPE_CHECKING:
    from gpt_image_mcp.aws.config import AwsSettings
    from gpt_image_mcp.aws.dynamo_jobs import DynamoJobStore
    from gpt_image_mcp.aws.s3_store import S3ImageStore
    from gpt_image_mcp.core.config import Settings
    from gpt_image_mcp.core.jobs import JobQueue, JobService
    from gpt_image_mcp.core.service import ImageService
    from gpt_image_mcp.core.upstream import CallBudget

# An environment that gives a secret's value directly (local emulation, sam local) needs no ARN for it.
DIRECT_SECRETS = {
    "OPENAI_API_KEY_SECRET_ARN": "OPENAI_API_KEY",
    "MCP_REQUEST_STATE_SECRET_ARN": "MCP_REQUEST_STATE_KEY",
}


@dataclass(frozen=True, slots=True)
class AwsServices:
    """The boto3 clients a function uses; `default()` gives the per-container cached ones."""

    s3: Any
    dynamodb: Any
    sqs: Any

    @classmethod
    def default(cls) -> AwsServices:
        from gpt_image_mcp.aws import clients

        return cls(s3=clients.s3_client(), dynamodb=clients.dynamodb_client(), sqs=clients.sqs_client())


def int_env(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ConfigurationError(f"{name}={raw!r}: use a whole number from {low} to {high}.")
    return int(raw)


def float_env(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:
        raise ConfigurationError(f"{name}={raw!r}: use a number from {low:g} to {high:g}.")
    return value


def aws_settings(env: Mapping[str, str], required: Iterable[str]) -> AwsSettings:
    """`AwsSettings` of a function; a secret given by value in `env` (`DIRECT_SECRETS`) needs no ARN."""
    from gpt_image_mcp.aws.config import AwsSettings

    given = {arn for arn, value in DIRECT_SECRETS.items() if (env.get(value) or "").strip()}
    needed = [name for name in required if name not in given]
    return AwsSettings.from_env(env, required=needed)


def openai_settings(env: Mapping[str, str], aws: AwsSettings) -> Settings:
    """`Settings` from `env`, with the OpenAI key read from Secrets Manager unless `OPENAI_API_KEY` is set."""
    from gpt_image_mcp.aws.secrets import get_secret
    from gpt_image_mcp.core.config import Settings

    settings = Settings.from_env(env)
    if settings.openai_api_key is None:
        settings = replace(settings, openai_api_key=get_secret(aws.openai_secret_arn))
    return settings


def image_service(
    settings: Settings, aws: AwsSettings, services: AwsServices, *, budget: CallBudget | None = None
) -> tuple[ImageService, S3ImageStore]:
    """Images in S3 under each user's prefix, history in DynamoDB, OpenAI through `ImagesClient`."""
    from gpt_image_mcp.aws.dynamo_history import DynamoHistoryStore
    from gpt_image_mcp.aws.s3_store import S3ImageStore
    from gpt_image_mcp.core.catalog import load_catalog
    from gpt_image_mcp.core.service import ImageService
    from gpt_image_mcp.core.upstream import ImagesClient

    store = S3ImageStore(services.s3, aws.bucket, aws.link_expiry_seconds)
    service = ImageService(
        settings=settings,
        catalog=load_catalog(),
        client=ImagesClient.from_settings(settings, budget=budget),
        images=store,
        history=DynamoHistoryStore(services.dynamodb, aws.history_table),
    )
    return service, store


def job_store(aws: AwsSettings, services: AwsServices, env: Mapping[str, str]) -> DynamoJobStore:
    """Jobs in DynamoDB, big arguments in S3; finished jobs kept `JOB_RETENTION_DAYS` (the table's TTL)."""
    from gpt_image_mcp.aws.dynamo_jobs import DEFAULT_TTL_DAYS, DynamoJobStore
    from gpt_image_mcp.aws.job_blobs import S3JobBlobs

    ttl_days = int_env(env, "JOB_RETENTION_DAYS", DEFAULT_TTL_DAYS, 1, 365)
    return DynamoJobStore(services.dynamodb, aws.jobs_table, S3JobBlobs(services.s3, aws.bucket), ttl_days)


class NoQueue:
    """The worker's `JobQueue`: it runs jobs and never starts one."""

    async def submit(self, user: str, job_id: str) -> None:
        raise ConfigurationError("This function runs jobs; it cannot start them (JOBS_QUEUE_URL is not set).")


def job_service(
    images: ImageService,
    aws: AwsSettings,
    services: AwsServices,
    env: Mapping[str, str],
    *,
    queue: JobQueue | None = None,
    lease_seconds: float | None = None,
    poll_seconds: float | None = None,
) -> JobService:
    """`JobService` on DynamoDB + SQS, with the S3 upstream cache that keeps a re-run from paying twice.

    The queue is SQS when `JOBS_QUEUE_URL` is set (the MCP function), else `NoQueue` (the worker).
    """
    from gpt_image_mcp.aws.identity import safety_identifier
    from gpt_image_mcp.aws.job_blobs import S3JobBlobs, S3UpstreamCache
    from gpt_image_mcp.aws.sqs_queue import SqsJobQueue
    from gpt_image_mcp.core.jobs import DEFAULT_LEASE_SECONDS, JobService

    if queue is None:
        queue = SqsJobQueue(services.sqs, aws.queue_url) if aws.queue_url else NoQueue()
    return JobService(
        images,
        job_store(aws, services, env),
        queue,
        lease_seconds=lease_seconds or DEFAULT_LEASE_SECONDS,
        poll_seconds=poll_seconds or 0.2,
        safety_identifier=safety_identifier,
        upstream_cache=S3UpstreamCache(S3JobBlobs(services.s3, aws.bucket)),
    )
