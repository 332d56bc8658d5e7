"""boto3 clients, one per service per container, created on first use.

boto3 is imported inside `client()` so that importing this package stays cheap and the local mode never needs it.
Endpoints come from botocore's own configuration: `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`, ...) points every
client at an emulator such as moto's server with no code change. boto3 clients are thread-safe; creating them is
not, hence the lock.
"""

from __future__ import annotations

import threading
from typing import Any

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
MAX_ATTEMPTS = 4  # "standard" retry mode: exponential backoff with jitter on throttling and transient errors

_lock = threading.Lock()
_clients: dict[str, Any] = {}


def client(service: str) -> Any:
    """The cached client for `service` ("s3", "dynamodb", "sqs", "secretsmanager", ...)."""
    with _lock:
        existing = _clients.get(service)
        if existing is None:
            import boto3
            from botocore.config import Config

            options: dict[str, Any] = {
                "retries": {"mode": "standard", "max_attempts": MAX_ATTEMPTS},
                "connect_timeout": CONNECT_TIMEOUT,
                "read_timeout": READ_TIMEOUT,
            }
            if service == "s3":
                # SigV4 presigned URLs (X-Amz-Expires, up to 7 days); SigV2 would be used otherwise in some regions.
                options["signature_version"] = "s3v4"
            existing = boto3.session.Session().client(service, config=Config(**options))
            _clients[service] = existing
        return existing


def s3_client() -> Any:
    return client("s3")


def dynamodb_client() -> Any:
    return client("dynamodb")


def sqs_client() -> Any:
    return client("sqs")


def secretsmanager_client() -> Any:
    return client("secretsmanager")


def reset_clients() -> None:
    """Forget every client (tests that change the endpoint or credentials between runs)."""
    with _lock:
        _clients.clear()
