"""Secrets Manager values, cached per container for a few minutes (so a rotated key is picked up without a deploy).

A secret's SecretString is either the value itself or a JSON object; from an object the value under `field` is
taken (default `OPENAI_API_KEY`), or its only value. Values are never logged nor put in error messages.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from gpt_image_mcp.core.errors import ConfigurationError

DEFAULT_TTL_SECONDS = 300.0

_lock = threading.Lock()
_cache: dict[str, tuple[str, float]] = {}  # arn -> (SecretString, monotonic time fetched)


def get_secret(
    arn: str, *, field: str = "OPENAI_API_KEY", client: Any = None, ttl_seconds: float = DEFAULT_TTL_SECONDS
) -> str:
    """The secret's value; `client` defaults to the shared Secrets Manager client."""
    now = time.monotonic()
    with _lock:
        cached = _cache.get(arn)
    if cached is not None and now - cached[1] < ttl_seconds:
        raw = cached[0]
    else:
        raw = _fetch(arn, client)
        with _lock:
            _cache[arn] = (raw, now)
    return _extract(arn, raw, field)


def clear_secret_cache() -> None:
    with _lock:
        _cache.clear()


def _fetch(arn: str, client: Any) -> str:
    if client is None:
        from gpt_image_mcp.aws.clients import secretsmanager_client

        client = secretsmanager_client()
    from botocore.exceptions import ClientError

    try:
        response = client.get_secret_value(SecretId=arn)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "Unknown")
        raise ConfigurationError(
            f"The secret {arn} could not be read ({code}); check its ARN and the function's policy."
        ) from None
    raw = response.get("SecretString")
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigurationError(f"The secret {arn} has no SecretString; store the value as text.")
    return raw


def _extract(arn: str, raw: str, field: str) -> str:
    text = raw.strip()
    if not text.startswith("{"):
        return text
    try:
        data = json.loads(text)
    except ValueError:
        return text  # a plain value that happens to start with "{"
    if not isinstance(data, dict):
        return text
    value = data.get(field)
    if value is None and len(data) == 1:
        value = next(iter(data.values()))
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(
            f"The secret {arn} is a JSON object without a text value under {field!r}; "
            f"store {{{field!r}: '...'}} or the value alone."
        )
    return value.strip()
