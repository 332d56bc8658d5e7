"""Helpers for the remote job tests (a module, not conftest, so test files can import it)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio

from gpt_image_mcp.aws.dynamo_history import DynamoHistoryStore
from gpt_image_mcp.aws.dynamo_jobs import DynamoJobStore
from gpt_image_mcp.aws.job_blobs import S3JobBlobs
from gpt_image_mcp.core.jobs import JobService
from gpt_image_mcp.core.lifecycle import JobRecord
from gpt_image_mcp.core.requests import ARGS_BY_TOOL, ImageToolName
from gpt_image_mcp.entry.compose import AwsServices
from local_sandbox.standins.aws_resources import AwsNames
from local_sandbox.standins.emulator import EmulatorServer
from local_sandbox.standins.lambda_context import LambdaContext
from local_sandbox.standins.sqs_driver import WORKER_FUNCTION_NAME

T = TypeVar("T")
IMAGE_PATHS = ("/v1/images/generations", "/v1/images/edits")


@dataclass(frozen=True)
class Stack:
    names: AwsNames
    services: AwsServices
    worker_env: dict[str, str]

    def store(self, **options: Any) -> DynamoJobStore:
        """A job store of its own (another container's view of the same table)."""
        blobs = S3JobBlobs(self.services.s3, self.names.bucket)
        return DynamoJobStore(self.services.dynamodb, self.names.jobs_table, blobs, **options)

    def history_total(self, user: str) -> int:
        return (
            DynamoHistoryStore(self.services.dynamodb, self.names.history_table).search(user, limit=1, offset=0).total
        )

    def objects(self, prefix: str) -> list[str]:
        response: dict[str, Any] = self.services.s3.list_objects_v2(Bucket=self.names.bucket, Prefix=prefix)
        return sorted(item["Key"] for item in response.get("Contents", []))

    def queue_depth(self, url: str) -> int:
        attributes = self.services.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def run(function: Callable[[], Awaitable[T]]) -> T:
    """Run async code from a synchronous test (the worker runs its own event loop on the caller's thread)."""
    return anyio.run(function)


def start(jobs: JobService, user: str, tool: ImageToolName = "generate_image", **arguments: Any) -> JobRecord:
    args = ARGS_BY_TOOL[tool].model_validate({"prompt": "a lighthouse at dusk", **arguments})
    return run(lambda: jobs.start(user, tool, args))


def job(jobs: JobService, user: str, job_id: str) -> JobRecord:
    record = jobs.store.get(user, job_id)
    assert record is not None, f"job {job_id} of {user} not found"
    return record


def upstream_calls(emulator: EmulatorServer) -> list[dict[str, object]]:
    return [entry for entry in emulator.requests if entry["path"] in IMAGE_PATHS]


def context(seconds: float = 300.0) -> LambdaContext:
    return LambdaContext.for_invocation(WORKER_FUNCTION_NAME, seconds)
