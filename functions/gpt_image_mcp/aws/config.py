"""Settings of the remote mode, read from the Lambda environment (names as in `template.yaml`).

`AwsSettings.from_env` is pure: it takes a mapping, so tests build settings without touching `os.environ`.
The MCP function gets every variable; the worker only the storage ones, so the required set is a parameter.
OpenAI settings (`OPENAI_IMAGE_MODEL`, `OPENAI_BASE_URL`, ...) stay with `gpt_image_mcp.core.config.Settings`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gpt_image_mcp.core.errors import ConfigurationError

LINK_EXPIRY_DEFAULT = 3600
LINK_EXPIRY_MIN = 60
LINK_EXPIRY_MAX = 604_800  # S3's limit for SigV4 presigned URLs: 7 days

# What each function cannot start without.
WORKER_REQUIRED: tuple[str, ...] = ("IMAGES_BUCKET", "HISTORY_TABLE", "JOBS_TABLE", "OPENAI_API_KEY_SECRET_ARN")
MCP_REQUIRED: tuple[str, ...] = (
    *WORKER_REQUIRED,
    "API_KEYS_TABLE",
    "JOBS_QUEUE_URL",
    "MCP_REQUEST_STATE_SECRET_ARN",
)


def _text(env: Mapping[str, str], name: str) -> str:
    return (env.get(name) or "").strip()


def _list(env: Mapping[str, str], name: str) -> list[str]:
    """A comma separated list; empty entries (an unset optional part of the template's !Sub) are dropped."""
    return [item.strip() for item in _text(env, name).split(",") if item.strip()]


def _link_expiry(env: Mapping[str, str]) -> int:
    raw = _text(env, "LINK_EXPIRY_SECONDS")
    if not raw:
        return LINK_EXPIRY_DEFAULT
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(
            f"LINK_EXPIRY_SECONDS={raw!r} is not a whole number; use {LINK_EXPIRY_MIN}-{LINK_EXPIRY_MAX}."
        ) from None
    if not LINK_EXPIRY_MIN <= value <= LINK_EXPIRY_MAX:
        raise ConfigurationError(
            f"LINK_EXPIRY_SECONDS={value} is out of range; use {LINK_EXPIRY_MIN}-{LINK_EXPIRY_MAX} (S3 allows 7 days)."
        )
    return value


@dataclass(frozen=True, slots=True)
class AwsSettings:
    """Names of the stack's resources and the auth settings of the MCP function."""

    bucket: str
    history_table: str
    jobs_table: str
    api_keys_table: str = ""
    queue_url: str = ""
    link_expiry_seconds: int = LINK_EXPIRY_DEFAULT
    allowed_hosts: list[str] = field(default_factory=list)  # besides the API's own host (see entry.endpoint)
    resource_url: str = ""  # empty: https://<the API's execute-api host>/mcp, learnt from the first request
    execute_api_domain: str = ""  # "execute-api.<region>.<URL suffix>": the API's host is "<api id>.<this>"
    cognito_issuer: str = ""  # empty: no Cognito, API keys only
    cognito_client_ids: list[str] = field(default_factory=list)
    required_scope: str = ""  # COGNITO_REQUIRED_SCOPE, e.g. "https://mcp.example.com/mcp/images"
    openai_secret_arn: str = ""
    request_state_secret_arn: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, required: Iterable[str] = MCP_REQUIRED) -> AwsSettings:
        """Read the settings; a missing required variable raises `ConfigurationError` naming it."""
        missing = [name for name in required if not _text(env, name)]
        if missing:
            raise ConfigurationError(
                f"Missing environment variable{'s' if len(missing) > 1 else ''} {', '.join(missing)}: "
                "the stack's template sets them; set them by hand only when running outside it."
            )
        issuer = _text(env, "COGNITO_ISSUER").rstrip("/")
        client_ids = _list(env, "COGNITO_CLIENT_IDS")
        if issuer and not client_ids:
            raise ConfigurationError(
                "COGNITO_ISSUER is set but COGNITO_CLIENT_IDS is empty: list the app client ids whose access "
                "tokens this server accepts (comma separated)."
            )
        return cls(
            bucket=_text(env, "IMAGES_BUCKET"),
            history_table=_text(env, "HISTORY_TABLE"),
            jobs_table=_text(env, "JOBS_TABLE"),
            api_keys_table=_text(env, "API_KEYS_TABLE"),
            queue_url=_text(env, "JOBS_QUEUE_URL"),
            link_expiry_seconds=_link_expiry(env),
            allowed_hosts=_list(env, "MCP_ALLOWED_HOSTS"),
            resource_url=_text(env, "MCP_RESOURCE_URL"),
            execute_api_domain=_text(env, "MCP_EXECUTE_API_DOMAIN").strip("."),
            cognito_issuer=issuer,
            cognito_client_ids=client_ids,
            required_scope=_text(env, "COGNITO_REQUIRED_SCOPE"),
            openai_secret_arn=_text(env, "OPENAI_API_KEY_SECRET_ARN"),
            request_state_secret_arn=_text(env, "MCP_REQUEST_STATE_SECRET_ARN"),
        )
