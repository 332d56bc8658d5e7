"""What the two Lambda functions are built from, in one place, so the MCP function and the worker cannot drift apart.

The MCP function starts jobs (`JobService.start`: row in DynamoDB, message to SQS); the worker runs them
(`JobService.execute`). Both need the same image service (S3 images, DynamoDB history, the OpenAI client with the key
from Secrets Manager) and the same job store, or a job started by one would not be what the other runs.

Import direction: entry.compose -> aws.*, core.*; boto3 clients come from `aws.clients` (or are passed in, for tests
and the local emulation). Everything heavy is imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from gpt_image_mcp.core.errors import ConfigurationError

if TYPE_CHECKING:
    from gpt_image_mcp.aws.config import StackSettings
    from gpt_image_mcp.aws.dynamo_jobs import DynamoJobStore
    from gpt_image_mcp.aws.s3_store import S3ImageStore
    from gpt_image_mcp.core.jobs import JobQueue, JobService
    from gpt_image_mcp.core.service import ImageService
    from gpt_image_mcp.core.upstream import CallBudget


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


S = TypeVar("S", bound="StackSettings")


def with_openai_key(settings: S) -> S:
    """`settings` with the OpenAI key read from Secrets Manager, unless `OPENAI_API_KEY` gave it directly."""
    from gpt_image_mcp.aws.secrets import get_secret

    if settings.openai_api_key is not None:
        return settings
    return settings.model_copy(update={"openai_api_key": get_secret(settings.openai_secret_arn)})


def image_service(
    settings: StackSettings, services: AwsServices, *, budget: CallBudget | None = None
) -> tuple[ImageService, S3ImageStore]:
    """Images in S3 under each user's prefix, history in DynamoDB, OpenAI through `ImagesClient`."""
    from gpt_image_mcp.aws.dynamo_history import DynamoHistoryStore
    from gpt_image_mcp.aws.s3_store import S3ImageStore
    from gpt_image_mcp.core.catalog import load_catalog
    from gpt_image_mcp.core.service import ImageService
    from gpt_image_mcp.core.upstream import ImagesClient

    settings = with_openai_key(settings)
    store = S3ImageStore(services.s3, settings.bucket, settings.link_expiry_seconds)
    service = ImageService(
        settings=settings,
        catalog=load_catalog(),
        client=ImagesClient.from_settings(settings, budget=budget),
        images=store,
        history=DynamoHistoryStore(services.dynamodb, settings.history_table),
    )
    return service, store


def job_store(settings: StackSettings, services: AwsServices) -> DynamoJobStore:
    """Jobs in DynamoDB, big arguments in S3; finished jobs kept `JOB_RETENTION_DAYS` (the table's TTL)."""
    from gpt_image_mcp.aws.dynamo_jobs import DynamoJobStore
    from gpt_image_mcp.aws.job_blobs import S3JobBlobs

    blobs = S3JobBlobs(services.s3, settings.bucket)
    return DynamoJobStore(services.dynamodb, settings.jobs_table, blobs, settings.job_retention_days)


class NoQueue:
    """The worker's `JobQueue`: it runs jobs and never starts one."""

    async def submit(self, user: str, job_id: str) -> None:
        raise ConfigurationError("This function runs jobs; it cannot start them (JOBS_QUEUE_URL is not set).")


def job_service(
    images: ImageService,
    settings: StackSettings,
    services: AwsServices,
    *,
    queue_url: str = "",
    lease_seconds: float | None = None,
    poll_seconds: float | None = None,
) -> JobService:
    """`JobService` on DynamoDB + SQS, with the S3 upstream cache that keeps a re-run from paying twice.

    With a `queue_url` (the MCP function) jobs are started on that SQS queue; without one (the worker) they are
    only run: `NoQueue` refuses to start any.
    """
    from gpt_image_mcp.aws.identity import safety_identifier
    from gpt_image_mcp.aws.job_blobs import S3JobBlobs, S3UpstreamCache
    from gpt_image_mcp.aws.sqs_queue import SqsJobQueue
    from gpt_image_mcp.core.jobs import DEFAULT_LEASE_SECONDS, JobService

    queue: JobQueue = SqsJobQueue(services.sqs, queue_url) if queue_url else NoQueue()
    return JobService(
        images,
        job_store(settings, services),
        queue,
        lease_seconds=lease_seconds or DEFAULT_LEASE_SECONDS,
        poll_seconds=poll_seconds or 0.2,
        safety_identifier=safety_identifier,
        upstream_cache=S3UpstreamCache(
            S3JobBlobs(services.s3, settings.bucket), link_expiry_seconds=settings.link_expiry_seconds
        ),
    )
