"""Lambda's SQS event source mapping, on one machine: poll the jobs queue and invoke the worker handler.

moto's SQS -> Lambda trigger does nothing, so this plays its part, with the same contract:

* long-poll receive batches of up to `batch_size` (template: 5) messages, with every system attribute;
* build the SQS event Lambda would send (`Records` with messageId, receiptHandle, body, attributes such as
  ApproximateReceiveCount, messageAttributes, md5OfBody, eventSource, eventSourceARN, awsRegion);
* invoke the handler with a Lambda-like context (request id, remaining time);
* delete every record not listed in `batchItemFailures` (ReportBatchItemFailures); when the handler raises, or
  names an id that is not in the batch, delete nothing (the whole batch failed);
* leave failures alone: they come back after their visibility timeout, and after the queue's maxReceiveCount
  SQS itself moves them to the dead-letter queue.

`concurrency` poller threads each own one handler (one warm container each, like the event source's
MaximumConcurrency), made by `handler_factory`, e.g. `lambda: WorkerFunction(env)`.

Import direction: local_sandbox.standins.sqs_driver -> boto3 (a client is passed in). It does not import the worker.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from local_sandbox.standins.lambda_context import LambdaContext
from local_sandbox.standins.lifetime import StartStop

log = logging.getLogger(__name__)

WORKER_FUNCTION_NAME = "gpt-image-mcp-worker"
WORKER_TIMEOUT_SECONDS = 300.0  # template.yaml: WorkerFunction.Timeout
_SYSTEM_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "AWSTraceHeader",
    "MessageGroupId",
    "MessageDeduplicationId",
    "SequenceNumber",
    "DeadLetterQueueSourceArn",
)

Handler = Callable[[dict[str, Any], Any], Mapping[str, Any]]


def sqs_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One record of Lambda's SQS event, from a ReceiveMessage result."""
    attributes = message.get("Attributes") or {}
    record_attributes = {name: str(attributes[name]) for name in _SYSTEM_ATTRIBUTES if name in attributes}
    message_attributes: dict[str, Any] = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        converted: dict[str, Any] = {
            "stringListValues": list(value.get("StringListValues") or []),
            "binaryListValues": [_b64(item) for item in value.get("BinaryListValues") or []],
            "dataType": value["DataType"],
        }
        if "StringValue" in value:
            converted["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            converted["binaryValue"] = _b64(value["BinaryValue"])
        message_attributes[name] = converted
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": record_attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _b64(value: bytes | str) -> str:
    import base64

    return base64.b64encode(value if isinstance(value, bytes) else value.encode()).decode("ascii")


def failed_ids(response: Any, batch: Sequence[str]) -> set[str]:
    """The message ids the handler reported as failed; all of them when the response is malformed, as Lambda
    treats a response naming an unknown or empty id as a failure of the whole batch."""
    if not isinstance(response, Mapping):
        return set(batch) if response is not None else set()
    failures = response.get("batchItemFailures") or []
    ids = {str(item.get("itemIdentifier") or "") if isinstance(item, Mapping) else "" for item in failures}
    return ids if ids <= set(batch) else set(batch)


@dataclass
class DriverStats:
    invocations: int = 0
    received: int = 0
    deleted: int = 0
    failed: int = 0
    errors: int = 0  # invocations that raised (the whole batch stays)


@dataclass
class SqsDriver(StartStop):
    """Polls `queue_url` and invokes handlers like an SQS event source mapping; `start()`/`stop()` or `with`."""

    sqs: Any
    queue_url: str
    handler_factory: Callable[[], Handler]
    batch_size: int = 5
    concurrency: int = 1
    wait_seconds: int = 1  # long-poll time per receive; bounds how long stop() waits for a poller
    function_timeout: float = WORKER_TIMEOUT_SECONDS
    region: str = "us-east-1"
    stats: DriverStats = field(default_factory=DriverStats)
    _queue_arn: str = field(default="", init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _threads: list[threading.Thread] = field(default_factory=list, init=False)
    _handlers: list[Handler] = field(default_factory=list, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    @property
    def queue_arn(self) -> str:
        if not self._queue_arn:
            attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
            self._queue_arn = str(attributes["Attributes"]["QueueArn"])
        return self._queue_arn

    def start(self) -> Self:
        if self._threads:
            raise RuntimeError("the driver is already running")
        self._stop.clear()
        _ = self.queue_arn
        for index in range(self.concurrency):
            handler = self.handler_factory()
            self._handlers.append(handler)
            thread = threading.Thread(target=self._poll, args=(handler,), name=f"sqs-driver-{index}", daemon=True)
            self._threads.append(thread)
            thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop polling; a batch in progress finishes first. Then close the handlers (their event loops)."""
        self._stop.set()
        limit = timeout if timeout is not None else self.wait_seconds + self.function_timeout
        for thread in self._threads:
            thread.join(limit)
        self._threads.clear()
        for handler in self._handlers:
            close = getattr(handler, "close", None)
            if callable(close):
                with contextlib.suppress(Exception):
                    close()
        self._handlers.clear()

    def receive(self, wait_seconds: int | None = None) -> list[dict[str, Any]]:
        """One long-poll receive, as the event source makes it."""
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=self.wait_seconds if wait_seconds is None else wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages") or []
        return messages

    def event(self, messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return {"Records": [sqs_record(message, self.queue_arn, self.region) for message in messages]}

    def deliver(self, handler: Handler, messages: Sequence[Mapping[str, Any]]) -> set[str]:
        """Invoke `handler` with one batch and delete what succeeded; returns the ids left for redelivery."""
        if not messages:
            return set()
        event = self.event(messages)
        ids = [str(message["MessageId"]) for message in messages]
        context = LambdaContext.for_invocation(WORKER_FUNCTION_NAME, self.function_timeout)
        try:
            response = handler(event, context)
        except Exception:
            log.warning("worker invocation failed: the whole batch of %d stays for redelivery", len(ids), exc_info=True)
            failed, errored = set(ids), True
        else:
            failed, errored = failed_ids(response, ids), False
        done = [message for message in messages if str(message["MessageId"]) not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)]
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        with self._lock:
            self.stats.invocations += 1
            self.stats.received += len(ids)
            self.stats.deleted += len(done)
            self.stats.failed += len(failed)
            self.stats.errors += int(errored)
        return failed

    def poll_once(self, handler: Handler, wait_seconds: int | None = None) -> int:
        """Receive one batch and deliver it; the number of messages received (tests drive it step by step)."""
        messages = self.receive(wait_seconds)
        self.deliver(handler, messages)
        return len(messages)

    def _poll(self, handler: Handler) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once(handler)
            except Exception:
                log.exception("SQS poll failed; retrying in 1 s")
                self._stop.wait(1.0)
