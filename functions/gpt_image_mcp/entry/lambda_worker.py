"""The worker function: SQS batches of job messages -> `JobService.execute`, reporting partial batch failures.

Handler `gpt_image_mcp.entry.lambda_worker.handler` (template.yaml: WorkerFunction, BatchSize 5,
ReportBatchItemFailures). A record that succeeds is deleted by Lambda; a failed one comes back after its visibility
timeout, and after `maxReceiveCount` receives SQS moves it to the dead-letter queue.

Per record:

* Not a job message (poison), or its job is missing (expired, never written) or finished (a duplicate): acknowledged
  and dropped, with a log line. It never blocks the rest of the batch.
* The job is running and its lease is live: another worker has it (a duplicate delivered while it runs). The record
  fails, so the message outlives that worker: if it dies, the redelivery finds the lease expired and takes over.
* The job is running with an expired lease (its worker died): taken over by the claim below, or failed once its
  attempts are used up, or cancelled if a cancel was asked (the rules of `core.lifecycle`, applied to this one job).
* Otherwise `JobService.execute` claims it atomically (a second claimant gets nothing: one OpenAI call, one history
  row) and runs it. A permanent failure (refused prompt, bad key, ...) fails the job with the user-facing reason and
  the record succeeds. A temporary one (429, 5xx, connection, AWS throttling) gives the job back as pending with the
  reason, and the record fails; its visibility is set to a backoff (30 s, 60 s, ... up to 15 min; `Retry-After`
  when OpenAI sent one) so a rate limit is retried in seconds rather than after the queue's 30 minutes (this needs
  `sqs:ChangeMessageVisibility`; without it the queue's visibility timeout applies).
* Delivery `JOBS_MAX_RECEIVE_COUNT` (the queue's maxReceiveCount) is the last one SQS makes: the job, if not
  finished, is failed at once with "gave up after N deliveries: <last reason>", and the record fails so the message
  moves to the dead-letter queue (visibility 0: right away), where the DLQ alarm sees it. The job is not run on that
  delivery, so it ends failed with its reason even if this worker were to die too.

What is never paid twice: the claim keeps duplicates from calling OpenAI; history ids are fixed per job; and the
images OpenAI returns are written to S3 (one object, `users/{user}/.jobs/{job_id}/upstream`) before anything is
saved, so a worker that dies after the call is followed by a re-run that re-uses them (a job no worker ever claimed
has nothing kept: its first run does not look). The one remaining window is a crash between OpenAI's answer and
that write (milliseconds); the re-run then calls OpenAI again. If a worker dies after saving some
files but before settling the job, the re-run saves the files again under free names (history stays one row).

Records of a batch run concurrently (Powertools' `AsyncBatchProcessor`) on one event loop per container: five
sequential image calls would not fit the function's 300 s timeout. Each call's timeout is capped by the time the
invocation has left, and a job still running 10 s before the end is handed back (pending) for a redelivery.

Logs: Powertools JSON with `job_id`, `message_id` and `receive_count` on every line of a record (context keys, so
concurrent records do not mix). Metrics: `JobsCompleted`, `JobsFailed`, `JobsRetried`, and the image tool metrics
(`ImagesGenerated`, `EstimatedCostUSD` per model) for completed jobs.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType, async_process_partial_response

from gpt_image_mcp.aws.limits import MAX_VISIBILITY_SECONDS
from gpt_image_mcp.entry.observability import ImageMetrics, make_logger, make_metrics, route_library_logs

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from gpt_image_mcp.core.jobs import JobService
    from gpt_image_mcp.core.lifecycle import JobRecord
    from gpt_image_mcp.entry.compose import AwsServices

logger = make_logger()

ATTEMPT_MARGIN_SECONDS = 20.0  # an OpenAI attempt must end this long before the function's timeout
HANDBACK_MARGIN_SECONDS = 10.0  # a job still running this long before the timeout is handed back
MIN_ATTEMPT_SECONDS = 30.0  # no retry of an OpenAI call with less time than this left


class RetryLater(Exception):
    """Fail the record on purpose: SQS delivers it again after `delay` seconds (None: the backoff)."""

    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


def is_transient(error: Exception) -> bool:
    """Errors worth another delivery: OpenAI's retryable ones (429, 5xx, connection) and AWS throttling or
    outages. Everything else is final: retrying a refused prompt or a bad key would fail (and maybe bill) again."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    from gpt_image_mcp.core.errors import UpstreamError

    if isinstance(error, UpstreamError):
        return error.retryable
    if isinstance(error, ConnectionError | HTTPClientError):
        return True
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return (
            status >= 500
            or "Throttl" in code
            or code
            in {
                "ProvisionedThroughputExceededException",
                "RequestLimitExceeded",
                "SlowDown",
                "InternalError",
                "ServiceUnavailable",
                "TransactionConflictException",
            }
        )
    return False


def queue_url_from_arn(arn: str) -> str:
    """The queue URL an event's `eventSourceARN` names (the worker is not told the URL)."""
    _, partition, _, region, account, name = arn.split(":", 5)
    suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{suffix}/{account}/{name}"


def backoff(base_seconds: int, receive_count: int, retry_after: float | None = None) -> int:
    """Seconds until a failed record comes back: doubling from `base_seconds`, at least `retry_after`, capped."""
    delay = base_seconds * 2 ** max(receive_count - 1, 0)
    return int(min(max(delay, retry_after or 0.0), MAX_VISIBILITY_SECONDS))


class Deadline:
    """The invocation's time left, and the `CallBudget` that keeps each OpenAI attempt inside it.

    It refuses nothing up front (a job may take minutes); an attempt only must not outlive the function's timeout,
    or it would be paid for and its result lost.
    """

    def __init__(self) -> None:
        self._context: Any = None

    def begin(self, context: Any) -> None:
        self._context = context

    def end(self) -> None:
        self._context = None

    def seconds_left(self) -> float | None:
        remaining = getattr(self._context, "get_remaining_time_in_millis", None)
        return float(remaining()) / 1000.0 if callable(remaining) else None

    def attempt_timeout(self) -> float | None:
        left = self.seconds_left()
        return None if left is None else max(left - ATTEMPT_MARGIN_SECONDS, 1.0)

    def can_retry_after(self, delay: float) -> bool:
        left = self.seconds_left()
        return left is None or left - ATTEMPT_MARGIN_SECONDS - delay >= MIN_ATTEMPT_SECONDS


class JobMetrics:
    """Job outcome counts of one invocation, written as EMF by `flush` (only with POWERTOOLS_METRICS_NAMESPACE)."""

    NAMES = ("JobsCompleted", "JobsFailed", "JobsRetried")

    def __init__(self, namespace: str) -> None:
        self._metrics = make_metrics(namespace)
        self.counts: dict[str, int] = dict.fromkeys(self.NAMES, 0)
        self._lock = threading.Lock()

    def count(self, name: str) -> None:
        with self._lock:
            self.counts[name] += 1

    def flush(self) -> None:
        with self._lock:
            counts, self.counts = self.counts, dict.fromkeys(self.NAMES, 0)
        if self._metrics is None or not any(counts.values()):
            return
        from aws_lambda_powertools.metrics import MetricUnit

        for name, value in counts.items():
            if value:
                self._metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        self._metrics.flush_metrics()


class _ContainerBatchProcessor(AsyncBatchProcessor):
    """`AsyncBatchProcessor` on the container's own event loop.

    Powertools keeps one loop only when it sees LAMBDA_TASK_ROOT and otherwise uses `asyncio.run` (a new loop per
    batch); pinning the loop makes every run, emulated or not, behave like Lambda: one loop per container, so the
    OpenAI client's connection pool survives between invocations.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # A batch whose every record waits for a retry is reported like any partial failure, not raised: a retry
        # is an expected outcome, and raising would count it in the function's Errors metric and alarms.
        super().__init__(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        self._loop = loop

    def async_process(self) -> list[tuple[Any, ...]]:
        async def all_records() -> list[tuple[Any, ...]]:
            return list(await asyncio.gather(*(self._async_process_record(record) for record in self.records)))

        return self._loop.run_until_complete(all_records())


class WorkerFunction:
    """One Lambda container's worker: built on the first invocation, warm afterwards; one invocation at a time."""

    def __init__(self, env: Mapping[str, str] | None = None, *, services: AwsServices | None = None) -> None:
        from gpt_image_mcp.aws.config import WorkerSettings

        # The one place this function reads its environment.
        self.settings = WorkerSettings.from_env(os.environ if env is None else env)
        self.services = services
        self.deadline = Deadline()
        self.image_metrics = ImageMetrics(self.settings.metrics_namespace)
        self.job_metrics = JobMetrics(self.settings.metrics_namespace)
        self.jobs: JobService | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._processor: _ContainerBatchProcessor | None = None
        self._lock = threading.Lock()
        self._sqs: Any = None

    def prepare(self) -> JobService:
        """The container's job service, built on first use (the first invocation, or a test that wants it early)."""
        if self.jobs is None:
            self.jobs = self._build()
        return self.jobs

    def _build(self) -> JobService:
        from gpt_image_mcp.entry.compose import AwsServices, image_service, job_service

        route_library_logs(logger)  # core's job and upstream logs become JSON lines with the record's keys
        services = self.services or AwsServices.default()
        settings = self.settings
        images, _ = image_service(settings, services, budget=self.deadline)
        jobs = job_service(
            images, settings, services, lease_seconds=settings.lease_seconds, poll_seconds=settings.poll_seconds
        )
        self._sqs = services.sqs
        return jobs

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        with self._lock:
            started = time.perf_counter()
            cold = self.jobs is None
            records = len(event.get("Records") or [])
            if self._loop is None or self._loop.is_closed():
                self._loop = asyncio.new_event_loop()
                self._processor = _ContainerBatchProcessor(self._loop)
            assert self._processor is not None
            self.deadline.begin(context)
            try:
                self.prepare()
                response: dict[str, Any] = dict(
                    async_process_partial_response(
                        event=event, record_handler=self._record, processor=self._processor, context=context
                    )
                )
                return response
            except Exception:
                logger.exception("invocation failed: every record of the batch will be delivered again")
                raise
            finally:
                self.deadline.end()
                counts = dict(self.job_metrics.counts)
                self.job_metrics.flush()
                self.image_metrics.flush()
                logger.info(
                    "batch",
                    extra={
                        "records": records,
                        **counts,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                        "cold_start": cold,
                    },
                )

    def close(self) -> None:
        """Close the OpenAI client's connections and the event loop (tests, the local driver)."""
        with self._lock:
            loop, self._loop = self._loop, None
            if loop is None or loop.is_closed():
                return
            if self.jobs is not None:
                loop.run_until_complete(self.jobs.images.client.aclose())
            loop.close()

    # -- one record ------------------------------------------------------------------------------

    async def _record(self, record: SQSRecord, lambda_context: Any = None) -> None:
        from gpt_image_mcp.aws.sqs_queue import decode_message

        receive_count = int(record.attributes.approximate_receive_count or 1)
        message = decode_message(record.body)
        if message is None:
            logger.error(
                "not a job message: acknowledged and dropped",
                extra={"message_id": record.message_id, "body_chars": len(record.body or "")},
            )
            return
        # Context keys: each record runs in its own task, so concurrent records keep their own job_id.
        logger.thread_safe_append_keys(job_id=message.job_id, message_id=record.message_id, receive_count=receive_count)
        owner = f"{getattr(lambda_context, 'aws_request_id', None) or 'local'}:{record.message_id}"
        try:
            await self._job(message.user, message.job_id, receive_count, owner)
        except Exception as error:
            if isinstance(error, RetryLater):
                logger.warning("record left for redelivery: %s", error.reason)
                delay = error.delay
            else:
                logger.exception("record failed; it will be delivered again")
                delay = None
            if delay is None:
                delay = backoff(self.settings.retry_base_seconds, receive_count)
            await self._set_visibility(record, delay)
            raise

    async def _job(self, user: str, job_id: str, receive_count: int, owner: str) -> None:
        """What `core.lifecycle.on_delivery` decides for this delivery, done."""
        from gpt_image_mcp.core.lifecycle import on_delivery

        jobs = self.prepare()
        job = await jobs.read(user, job_id)
        decision = on_delivery(job, receive_count, self.settings.max_receive_count, jobs.max_attempts, jobs.clock())
        if decision.action == "drop":
            logger.warning(decision.why)
            return
        if decision.action == "acknowledge":
            logger.info(decision.why)
            return
        if decision.action == "wait":
            raise RetryLater(decision.why, delay=0 if decision.at_once else None)
        assert job is not None
        if decision.event is not None:  # settle or dead_letter
            settled = await jobs.advance(job, decision.event)
            if settled is not None:
                self._count(settled)
            if decision.action == "dead_letter":
                raise RetryLater(f"last delivery: the job is now {settled.status if settled else 'unchanged'}", delay=0)
            if settled is None:
                raise RetryLater("the job changed while it was being recovered")
            logger.warning("%s: now %s", decision.why, settled.status)
            return
        await self._run(jobs, job, receive_count, owner)

    async def _run(self, jobs: JobService, job: JobRecord, receive_count: int, owner: str) -> None:
        """Claim and run the job, handing it back before the invocation's end and on a temporary failure."""
        import anyio

        transient: list[Exception] = []

        def requeue(error: Exception) -> bool:
            if is_transient(error):
                transient.append(error)
                return True
            return False

        left = self.deadline.seconds_left()
        with anyio.move_on_after(None if left is None else left - HANDBACK_MARGIN_SECONDS) as scope:
            result = await jobs.execute(job, owner, requeue=requeue)
        if scope.cancelled_caught:
            raise RetryLater("the invocation ran out of time; the job was handed back", delay=0)
        if result is None:  # another worker claimed it first, or it finished or was cancelled meanwhile
            now = await jobs.read(job.user, job.job_id)
            if now is None or now.finished:
                logger.info("job claimed and settled elsewhere: acknowledged")
                return
            raise RetryLater("another worker holds the job")
        self._count(result)
        if result.status == "pending":
            retry_after = getattr(transient[-1], "retry_after", None) if transient else None
            raise RetryLater(
                f"temporary failure: {result.error}",
                delay=backoff(self.settings.retry_base_seconds, receive_count, retry_after),
            )
        logger.info("job %s", result.status)

    def _count(self, record: JobRecord) -> None:
        if record.status == "completed":
            self.job_metrics.count("JobsCompleted")
            result = record.result or {}
            cost = (result.get("cost") or {}).get("total")
            self.image_metrics.record(str(result.get("model") or "unknown"), len(result.get("images") or []), cost)
        elif record.status == "failed":
            self.job_metrics.count("JobsFailed")
        elif record.status == "pending":
            self.job_metrics.count("JobsRetried")

    async def _set_visibility(self, record: SQSRecord, delay: float) -> None:
        """Best effort: when the record comes back. Without the permission, the queue's timeout applies."""
        import anyio.to_thread

        if self._sqs is None:
            return
        url = self.settings.queue_url or queue_url_from_arn(record.event_source_arn)
        seconds = int(min(max(delay, 0), MAX_VISIBILITY_SECONDS))
        try:
            await anyio.to_thread.run_sync(
                lambda: self._sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=record.receipt_handle, VisibilityTimeout=seconds
                )
            )
        except Exception as error:
            logger.warning("could not set the message's visibility (%s); the queue's timeout applies", error)


_function: WorkerFunction | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda handler (`gpt_image_mcp.entry.lambda_worker.handler` in template.yaml)."""
    global _function
    if _function is None:
        _function = WorkerFunction()
    return _function(event, context)
