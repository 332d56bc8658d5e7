"""A stand-in for the context object Lambda passes to a handler: the parts the handlers and Powertools read."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"


@dataclass(slots=True)
class LambdaContext:
    function_name: str
    deadline: float  # time.monotonic() when the function times out
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    log_stream_name: str = "local"

    @classmethod
    def for_invocation(cls, function_name: str, timeout_seconds: float) -> LambdaContext:
        return cls(function_name, time.monotonic() + timeout_seconds)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))
