"""The worker function under SQS's at-least-once delivery: moto's queue, the emulator as OpenAI, real events.

"Upstream calls" are the emulator's request log; "history" is the DynamoDB history table. The invariant checked
throughout: one job -> at most one paid OpenAI call and exactly one history row, whatever the deliveries.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import SqsModel
from clock import Clock
from PIL import Image
from remote_jobs_support import Stack, context, job, run, start, upstream_calls
from waiting import wait_until

from gpt_image_mcp.aws.config import WorkerSettings
from gpt_image_mcp.aws.sqs_queue import SqsJobQueue, decode_message, encode_message
from gpt_image_mcp.core.errors import NotFoundError, UpstreamError, UserFacingError
from gpt_image_mcp.core.jobs import JobService, job_history_id
from gpt_image_mcp.core.lifecycle import Change, JobRecord, RequestCancel, next_state
from gpt_image_mcp.entry.lambda_worker import WorkerFunction, backoff, is_transient, queue_url_from_arn
from gpt_image_mcp.entry.lambda_worker import logger as worker_logger
from local_sandbox.standins.emulator import EmulatorServer
from local_sandbox.standins.sqs_driver import SqsDriver, failed_ids

A, B = "alice", "bob"


class WorkerKilled(BaseException):
    """Stands for the process dying (timeout, out of memory): nothing in the worker handles it."""


def receive(driver: SqsDriver, count: int = 1) -> list[dict[str, Any]]:
    """Exactly `count` messages (visible now), received the way the event source receives them."""
    messages: list[dict[str, Any]] = []
    for _ in range(20):
        messages += driver.receive(wait_seconds=1)
        if len(messages) >= count:
            break
    assert len(messages) == count, messages
    return messages


def failures(response: Any) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


# -- the normal path -----------------------------------------------------------------------------


def test_a_submitted_job_is_completed_by_the_worker(
    stack: Stack, jobs: JobService, driver: SqsDriver, worker: WorkerFunction, emulator: EmulatorServer
) -> None:
    record = start(jobs, A, output_path="sea/light.png")
    assert job(jobs, A, record.job_id).status == "pending"
    message = receive(driver)[0]
    assert decode_message(message["Body"]) == (A, record.job_id)
    s3_calls: list[str] = []

    def count(event_name: str, **_: Any) -> None:
        s3_calls.append(event_name.rsplit(".", 1)[1])

    stack.services.s3.meta.events.register("before-call.s3", count)
    try:
        assert driver.deliver(worker, [message]) == set()
    finally:
        stack.services.s3.meta.events.unregister("before-call.s3", count)

    # The answer is kept in one object and dropped once the job is settled; a first run reads no kept answer.
    assert s3_calls == ["PutObject", "PutObject", "DeleteObjects"]
    done = job(jobs, A, record.job_id)
    assert (done.status, done.progress, done.attempts) == ("completed", 1.0, 1)
    assert done.history_id == job_history_id(record.job_id)
    assert done.result is not None
    assert done.result["images"][0]["path"] == "sea/light.png"
    assert stack.history_total(A) == 1
    assert stack.objects("users/alice/") == ["users/alice/sea/light.png"]  # the upstream copy is gone
    assert len(upstream_calls(emulator)) == 1
    assert stack.queue_depth(stack.names.queue_url) == 0
    outcome = run(lambda: jobs.result(A, record.job_id))[1]
    assert outcome is not None and outcome.result.images[0].link.startswith("http")


def test_the_driver_builds_real_sqs_events(stack: Stack, jobs: JobService, driver: SqsDriver) -> None:
    start(jobs, A)
    stack.services.sqs.send_message(
        QueueUrl=stack.names.queue_url,
        MessageBody="x",
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "test"}},
    )
    event = driver.event(receive(driver, 2))
    parsed = SqsModel.model_validate(event)
    assert [r.attributes.ApproximateReceiveCount for r in parsed.Records] == ["1", "1"]
    assert parsed.Records[0].eventSourceARN.endswith(":" + stack.names.queue_url.rsplit("/", 1)[1])
    assert queue_url_from_arn(parsed.Records[0].eventSourceARN).endswith(stack.names.queue_url.split("/", 3)[3])
    assert {r.messageAttributes["kind"].stringValue for r in parsed.Records if r.messageAttributes} == {"test"}
    ids = [r.messageId for r in parsed.Records]
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": ids[0]}]}, ids) == {ids[0]}
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]}, ids) == set(ids)
    assert failed_ids({"batchItemFailures": []}, ids) == set()


# -- duplicates ------------------------------------------------------------------------------------


def test_a_message_delivered_twice_in_turn_runs_once(
    stack: Stack,
    jobs: JobService,
    driver: SqsDriver,
    make_worker: Callable[..., WorkerFunction],
    emulator: EmulatorServer,
) -> None:
    record = start(jobs, A)
    event = driver.event(receive(driver))
    first, second = make_worker(), make_worker()  # the redelivery may land on another container

    assert failures(first(event, context())) == []
    assert failures(second(event, context())) == []  # already completed: acknowledged

    assert job(jobs, A, record.job_id).status == "completed"
    assert len(upstream_calls(emulator)) == 1
    assert stack.history_total(A) == 1


def test_a_message_delivered_twice_at_once_runs_once(
    stack: Stack,
    jobs: JobService,
    driver: SqsDriver,
    make_worker: Callable[..., WorkerFunction],
    emulator: EmulatorServer,
) -> None:
    emulator.set_latency(300)
    record = start(jobs, A)
    event = driver.event(receive(driver))
    containers = [make_worker(), make_worker()]
    barrier = threading.Barrier(2)
    responses: list[Any] = [None, None]

    def invoke(index: int) -> None:
        barrier.wait()
        responses[index] = containers[index](event, context())

    threads = [threading.Thread(target=invoke, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert job(jobs, A, record.job_id).status == "completed"
    assert len(upstream_calls(emulator)) == 1
    assert stack.history_total(A) == 1
    # One container ran it; the other either found it finished (acknowledged) or running elsewhere (kept, so
    # that the message outlives the worker that has the job).
    assert sorted(len(failures(response)) for response in responses) in ([0, 0], [0, 1])


def test_a_worker_dying_after_the_openai_call_is_followed_by_a_rerun_that_does_not_pay_again(
    stack: Stack,
    jobs: JobService,
    driver: SqsDriver,
    make_worker: Callable[..., WorkerFunction],
    emulator: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record = start(jobs, A, output_path="kept.png")
    clock = Clock(time.time())  # the containers' clock, moved by the test
    doomed = make_worker()
    doomed_jobs = doomed.prepare()
    doomed_jobs.clock = clock

    async def die(*args: Any, **kwargs: Any) -> Any:
        raise WorkerKilled

    def write_all_but_a_release(job: JobRecord, change: Change) -> bool:
        return change.sets.get("status") == "pending" or write(job, change)

    write = doomed_jobs.store.write
    monkeypatch.setattr(doomed_jobs.images, "save", die)  # dies right after OpenAI answered
    monkeypatch.setattr(doomed_jobs.store, "write", write_all_but_a_release)  # a killed process hands nothing back
    message = receive(driver)[0]
    with pytest.raises(BaseExceptionGroup) as killed:  # out of the job's task group, the batch, the handler
        driver.deliver(doomed, [message])
    assert killed.group_contains(WorkerKilled)
    left = job(jobs, A, record.job_id)
    assert (left.status, left.attempts) == ("running", 1)
    assert stack.objects("users/alice/.jobs/") == [f"users/alice/.jobs/{record.job_id}/upstream"]

    # The lease (1 s) and the message's visibility run out; the redelivery goes to a healthy container.
    clock.now += 2
    stack.services.sqs.change_message_visibility(
        QueueUrl=stack.names.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    healthy = make_worker()
    healthy.prepare().clock = clock
    assert driver.deliver(healthy, receive(driver)) == set()

    done = job(jobs, A, record.job_id)
    assert (done.status, done.attempts) == ("completed", 2)
    assert len(upstream_calls(emulator)) == 1  # the kept images were used
    assert stack.history_total(A) == 1
    assert stack.objects("users/alice/") == ["users/alice/kept.png"]


# -- failures ------------------------------------------------------------------------------------


def test_a_429_storm_leaves_the_record_for_redelivery_and_the_job_completes_later(
    stack: Stack, jobs: JobService, driver: SqsDriver, emulator: EmulatorServer
) -> None:
    emulator.inject(429, times=2)  # more than the client's own retries (OPENAI_IMAGE_MAX_RETRIES=1)
    record = start(jobs, A)
    driver.start()
    wait_until(lambda: job(jobs, A, record.job_id).finished)
    driver.stop()

    done = job(jobs, A, record.job_id)
    assert (done.status, done.attempts, done.error) == ("completed", 1, None)  # the rate-limited try is not counted
    assert [entry["status"] for entry in upstream_calls(emulator)] == [429, 429, 200]
    assert stack.history_total(A) == 1
    assert (driver.stats.failed, driver.stats.deleted) == (1, 1)
    assert stack.queue_depth(stack.names.queue_url) == 0


def test_poison_messages_are_acknowledged_and_never_block_the_batch(
    stack: Stack, jobs: JobService, driver: SqsDriver, worker: WorkerFunction, emulator: EmulatorServer
) -> None:
    record = start(jobs, A)
    for body in ("not json", json.dumps({"job_id": record.job_id}), encode_message(A, "no-such-job"), "[1, 2]"):
        stack.services.sqs.send_message(QueueUrl=stack.names.queue_url, MessageBody=body)
    messages = receive(driver, 5)

    assert driver.deliver(worker, messages) == set()

    assert job(jobs, A, record.job_id).status == "completed"
    assert stack.queue_depth(stack.names.queue_url) == 0
    assert len(upstream_calls(emulator)) == 1


def test_a_permanent_upstream_failure_fails_the_job_with_the_reason(
    stack: Stack, jobs: JobService, driver: SqsDriver, worker: WorkerFunction, emulator: EmulatorServer
) -> None:
    record = start(jobs, A, prompt="forbidden-content please")
    assert driver.deliver(worker, receive(driver)) == set()  # acknowledged: a retry would be refused again

    failed = job(jobs, A, record.job_id)
    assert failed.status == "failed"
    assert failed.error is not None and "OpenAI's safety system rejected this request" in failed.error
    assert len(upstream_calls(emulator)) == 1
    assert stack.history_total(A) == 0
    assert stack.objects("users/alice/") == []


def test_after_max_receive_count_the_job_is_failed_and_the_message_is_in_the_dead_letter_queue(
    stack: Stack, jobs: JobService, driver: SqsDriver, emulator: EmulatorServer
) -> None:
    stack.worker_env["OPENAI_IMAGE_MAX_RETRIES"] = "0"
    emulator.inject(429, times=100)
    record = start(jobs, A)
    driver.start()
    wait_until(lambda: stack.queue_depth(stack.names.dlq_url) == 1)
    driver.stop()

    failed = job(jobs, A, record.job_id)
    assert failed.status == "failed"
    assert failed.error is not None
    assert failed.error.startswith("Gave up after 5 deliveries: OpenAI rate limit reached (429)")
    assert len(upstream_calls(emulator)) == 4  # deliveries 1-4 tried; the 5th only recorded the failure
    assert stack.queue_depth(stack.names.queue_url) == 0
    dead = stack.services.sqs.receive_message(QueueUrl=stack.names.dlq_url)["Messages"]
    assert decode_message(dead[0]["Body"]) == (A, record.job_id)


def test_a_job_that_cannot_be_queued_is_failed_not_left_pending(stack: Stack, jobs: JobService) -> None:
    jobs.queue = SqsJobQueue(stack.services.sqs, stack.names.queue_url + "-missing")
    with pytest.raises(UserFacingError, match="could not be queued for a worker") as refused:
        start(jobs, A)
    page = jobs.store.list(A, limit=10, offset=0)
    assert [(r.status, r.error) for r in page.records] == [
        (
            "failed",
            "The job could not be queued for a worker (QueueDoesNotExist); nothing was run or charged. Start it again.",
        )
    ]
    assert page.records[0].job_id in refused.value.message


def test_a_job_still_running_near_the_timeout_is_handed_back(
    stack: Stack, jobs: JobService, driver: SqsDriver, worker: WorkerFunction, emulator: EmulatorServer
) -> None:
    emulator.set_latency(3000)
    record = start(jobs, A)
    event = driver.event(receive(driver))
    response = worker(event, context(seconds=10.5))  # 10 s are kept back: the job may run 0.5 s
    assert len(failures(response)) == 1
    back = job(jobs, A, record.job_id)
    assert (back.status, back.attempts, back.lease_owner) == ("pending", 0, None)


# -- cancel and isolation ------------------------------------------------------------------------


def test_a_job_cancelled_while_pending_is_skipped(
    stack: Stack, jobs: JobService, driver: SqsDriver, worker: WorkerFunction, emulator: EmulatorServer
) -> None:
    record = start(jobs, A)
    cancelled = run(lambda: jobs.cancel(A, record.job_id))
    assert cancelled.status == "cancelled"
    assert driver.deliver(worker, receive(driver)) == set()
    assert job(jobs, A, record.job_id).status == "cancelled"
    assert upstream_calls(emulator) == []


def test_a_job_cancelled_while_running_stops_and_saves_nothing(
    stack: Stack, jobs: JobService, driver: SqsDriver, emulator: EmulatorServer
) -> None:
    emulator.set_latency(5000)
    record = start(jobs, A)
    driver.start()
    wait_until(lambda: len(upstream_calls(emulator)) == 1)
    cancelled = run(lambda: jobs.cancel(A, record.job_id))
    assert cancelled.status == "cancelled"
    assert cancelled.message == "Cancelled while running; the request was stopped and nothing was saved"
    wait_until(lambda: stack.queue_depth(stack.names.queue_url) == 0)
    driver.stop()
    assert stack.history_total(A) == 0
    assert stack.objects("users/alice/") == []


def test_another_user_can_neither_see_nor_cancel_a_job(
    stack: Stack, jobs: JobService, driver: SqsDriver, worker: WorkerFunction, emulator: EmulatorServer
) -> None:
    record = start(jobs, A)
    store = stack.store()
    assert store.get(B, record.job_id) is None
    assert store.list(B, limit=10, offset=0) == ([], 0)
    cancel = next_state(record, RequestCancel(), time.time())
    assert cancel is not None
    assert not store.write(dataclasses.replace(record, user=B), cancel)  # a write in B's name finds no such job
    with pytest.raises(NotFoundError):
        run(lambda: jobs.status(B, record.job_id))
    with pytest.raises(NotFoundError):
        run(lambda: jobs.cancel(B, record.job_id))
    # A message naming B with A's job id finds nothing under B and is dropped; A's job is untouched.
    stack.services.sqs.send_message(QueueUrl=stack.names.queue_url, MessageBody=encode_message(B, record.job_id))
    forged = [m for m in receive(driver, 2) if decode_message(m["Body"]) == (B, record.job_id)]
    assert driver.deliver(worker, forged) == set()
    assert job(jobs, A, record.job_id).status == "pending"
    assert upstream_calls(emulator) == []


def test_big_reference_images_travel_through_s3(
    stack: Stack, jobs: JobService, driver: SqsDriver, worker: WorkerFunction, emulator: EmulatorServer
) -> None:
    buffer = io.BytesIO()
    Image.frombytes("RGB", (300, 300), random.Random(7).randbytes(300 * 300 * 3)).save(buffer, "PNG")  # noise
    reference = base64.b64encode(buffer.getvalue()).decode()
    assert len(reference) > 300_000
    record = start(jobs, A, "transform_image", reference_image_base64=reference)
    assert stack.objects(f"users/alice/.jobs/{record.job_id}") == [f"users/alice/.jobs/{record.job_id}.json"]

    assert driver.deliver(worker, receive(driver)) == set()

    assert job(jobs, A, record.job_id).status == "completed"
    calls = upstream_calls(emulator)
    assert [call["path"] for call in calls] == ["/v1/images/edits"]
    files: Any = calls[0]["files"]
    assert files[0]["size"] == len(buffer.getvalue())


# -- policy --------------------------------------------------------------------------------------


def test_what_is_retried_and_when() -> None:
    from botocore.exceptions import ClientError, EndpointConnectionError

    assert is_transient(UpstreamError("429", category="rate_limit", retryable=True))
    assert not is_transient(UpstreamError("refused", category="content_policy"))
    assert is_transient(EndpointConnectionError(endpoint_url="https://dynamodb"))
    throttled = ClientError({"Error": {"Code": "ThrottlingException"}}, "UpdateItem")
    assert is_transient(throttled)
    assert not is_transient(ClientError({"Error": {"Code": "AccessDeniedException"}}, "UpdateItem"))
    assert not is_transient(ValueError("a bug"))
    base = WorkerSettings.model_fields["retry_base_seconds"].default
    assert [backoff(base, n) for n in (1, 2, 3, 4, 5, 9)] == [30, 60, 120, 240, 480, 900]
    assert backoff(base, 1, retry_after=75.0) == 75
    assert (
        queue_url_from_arn("arn:aws:sqs:eu-west-1:123456789012:q")
        == "https://sqs.eu-west-1.amazonaws.com/123456789012/q"
    )


def test_job_metrics_and_log_lines_carry_the_job(
    stack: Stack,
    jobs: JobService,
    driver: SqsDriver,
    make_worker: Callable[..., WorkerFunction],
    capfd: pytest.CaptureFixture[str],
) -> None:
    worker = make_worker(POWERTOOLS_METRICS_NAMESPACE="GptImageMcpTest")
    record = start(jobs, A)
    logs = io.StringIO()
    handler = logging.StreamHandler(logs)
    handler.setFormatter(worker_logger.registered_formatter)  # the function's JSON, with its context keys
    logging.getLogger(worker_logger.name).addHandler(handler)
    capfd.readouterr()
    try:
        assert driver.deliver(worker, receive(driver)) == set()
    finally:
        logging.getLogger(worker_logger.name).removeHandler(handler)

    emf = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    names = {metric["Name"] for line in emf for metric in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"JobsCompleted", "ImagesGenerated", "EstimatedCostUSD"} <= names
    assert next(line for line in emf if "JobsCompleted" in line)["JobsCompleted"] == [1.0]
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    done = [line for line in lines if line["message"] == "job completed"]
    assert done and (done[0]["job_id"], done[0]["receive_count"]) == (record.job_id, 1)
