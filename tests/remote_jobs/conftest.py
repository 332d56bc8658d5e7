"""Fixtures for durable remote jobs: moto with the template's tables, queues and bucket; the OpenAI emulator (the
session one from tests/conftest.py); worker functions (one per simulated container); the SQS driver; and the MCP
function's side of jobs (`JobService` on DynamoDB + SQS).

moto runs once per session on loopback, and every test gets its own stack (`create_resources` from template.yaml
under a fresh prefix, ~0.1 s), so the queues' redrive policy and the tables' keys are exactly the deployed ones and
no test sees another's messages. Clients are built with an explicit endpoint instead of AWS_ENDPOINT_URL: other
session fixtures (tests/aws, tests/remote) point the process environment at their own moto servers.

The queue's visibility timeout is lowered to 2 s so that a record the worker could not settle (a crash) comes back
within a test; the worker itself sets 0 s for retries (`JOBS_RETRY_BASE_SECONDS=0`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest
from remote_jobs_support import Stack

from gpt_image_mcp.aws.config import McpSettings
from gpt_image_mcp.core.jobs import JobService
from gpt_image_mcp.entry.compose import AwsServices, image_service, job_service
from gpt_image_mcp.entry.lambda_worker import WorkerFunction
from local_sandbox.standins.aws_resources import AwsClients, create_resources
from local_sandbox.standins.emulator import EmulatorServer
from local_sandbox.standins.moto_server import MotoServer
from local_sandbox.standins.sqs_driver import SqsDriver

REGION = "us-east-1"
_prefixes = itertools.count()


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    server = MotoServer().start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def services(moto_url: str) -> AwsServices:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)
    config = Config(retries={"mode": "standard", "max_attempts": 2}, signature_version="s3v4")
    return AwsServices(
        s3=session.client("s3", endpoint_url=moto_url, config=config),
        dynamodb=session.client("dynamodb", endpoint_url=moto_url, config=config),
        sqs=session.client("sqs", endpoint_url=moto_url, config=config),
    )


@pytest.fixture
def stack(services: AwsServices, emulator: EmulatorServer) -> Stack:
    names = create_resources(
        AwsClients(s3=services.s3, sqs=services.sqs, dynamodb=services.dynamodb), prefix=f"rj{next(_prefixes)}"
    )
    services.sqs.set_queue_attributes(QueueUrl=names.queue_url, Attributes={"VisibilityTimeout": "2"})
    worker_env = {
        "IMAGES_BUCKET": names.bucket,
        "HISTORY_TABLE": names.history_table,
        "JOBS_TABLE": names.jobs_table,
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": emulator.base_url,
        "OPENAI_IMAGE_MAX_RETRIES": "1",
        "JOB_RETENTION_DAYS": "7",
        "JOBS_MAX_RECEIVE_COUNT": "5",
        "JOBS_LEASE_SECONDS": "1",
        "JOBS_POLL_SECONDS": "0.05",
        "JOBS_RETRY_BASE_SECONDS": "0",
    }
    return Stack(names=names, services=services, worker_env=worker_env)


@pytest.fixture
def make_worker(stack: Stack) -> Iterator[Callable[..., WorkerFunction]]:
    """Worker functions (containers) on the test's stack; `make_worker(**env)` overrides variables."""
    made: list[WorkerFunction] = []

    def make(**overrides: str) -> WorkerFunction:
        worker = WorkerFunction({**stack.worker_env, **overrides}, services=stack.services)
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.close()


@pytest.fixture
def worker(make_worker: Callable[..., WorkerFunction]) -> WorkerFunction:
    return make_worker()


@pytest.fixture
def driver(stack: Stack, make_worker: Callable[..., WorkerFunction]) -> Iterator[SqsDriver]:
    """The event source mapping for the test's queue (not started: call `start()` or `poll_once`)."""
    running = SqsDriver(stack.services.sqs, stack.names.queue_url, make_worker, wait_seconds=1, region=REGION)
    yield running
    running.stop()


@pytest.fixture
def mcp_settings(stack: Stack) -> McpSettings:
    """The MCP function's settings on the test's stack (JOBS_QUEUE_URL included)."""
    env = {**stack.worker_env, **stack.names.environment(), "MCP_REQUEST_STATE_KEY": "remote-jobs-tests"}
    return McpSettings.from_env(env)


@pytest.fixture
def jobs(stack: Stack, mcp_settings: McpSettings) -> JobService:
    """The MCP function's `JobService`: what `start_generation_job`, `cancel_job` ... call."""
    images, _ = image_service(mcp_settings, stack.services)
    return job_service(images, mcp_settings, stack.services, queue_url=mcp_settings.queue_url, poll_seconds=0.05)
