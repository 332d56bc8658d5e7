"""`JobQueue` on SQS, and the message format both ends agree on: `{"user": ..., "job_id": ...}`.

The MCP function writes the job row first (pending), then sends the message (`JobService.start`); if the send fails,
`start` fails the row with the reason, so a pending row never waits for a message that will not come. The worker
(`entry.lambda_worker`) reads the message, finds the row by its key, and acknowledges (drops) a message whose row is
missing or already finished. Delivery is at least once; the store's atomic claim makes a duplicate harmless.

The message carries ids only, never arguments: they may be megabytes of base64 (SQS allows 256 KB) and they are
already durable in the job row.
"""

from __future__ import annotations

import json
from typing import Any

import anyio.to_thread

from gpt_image_mcp.core.jobs import JobRef


def encode_message(user: str, job_id: str) -> str:
    return json.dumps({"user": user, "job_id": job_id}, separators=(",", ":"))


def decode_message(body: str) -> JobRef | None:
    """The job a message names, or None when the body is not a job message (a poison message)."""
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    user, job_id = data.get("user"), data.get("job_id")
    if not isinstance(user, str) or not isinstance(job_id, str) or not user or not job_id:
        return None
    return JobRef(user, job_id)


class SqsJobQueue:
    """Sends one message per job to the jobs queue; the worker function consumes it."""

    def __init__(self, sqs_client: Any, queue_url: str) -> None:
        self._sqs = sqs_client
        self.queue_url = queue_url

    async def submit(self, user: str, job_id: str) -> None:
        body = encode_message(user, job_id)
        await anyio.to_thread.run_sync(lambda: self._sqs.send_message(QueueUrl=self.queue_url, MessageBody=body))
