"""Settings of the two Lambda functions, read once from their environment (names as in `template.yaml`).

Both extend `core.config.Settings` (the OpenAI and image variables) with the stack's resources. `McpSettings` adds
what the MCP function needs to authenticate and answer (API keys table, queue, hosts, Cognito, request limits);
`WorkerSettings` what the SQS worker needs to redeliver (receive count, lease, backoff). Local-only variables (folders,
SQLite, the local job pool) are not here: a remote function has none of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Self

from pydantic import Field, field_validator, model_validator

from gpt_image_mcp.aws.limits import (
    API_BUDGET_SECONDS,
    LINK_EXPIRY_MAX,
    MAX_RECEIVE_DEFAULT,
    MAX_REQUEST_BYTES,
    MAX_VISIBILITY_SECONDS,
)
from gpt_image_mcp.core.config import CommaList, Settings

LINK_EXPIRY_DEFAULT = 3600
LINK_EXPIRY_MIN = 60


class StackSettings(Settings):
    """What both functions use: the bucket, the history and jobs tables, the OpenAI key's secret."""

    missing_hint: ClassVar[str] = "the stack's template sets them; set them by hand only when running outside it."
    alternatives: ClassVar[Mapping[str, str]] = {"OPENAI_API_KEY_SECRET_ARN": "OPENAI_API_KEY"}

    bucket: str = Field(validation_alias="IMAGES_BUCKET")
    history_table: str = Field(validation_alias="HISTORY_TABLE")
    jobs_table: str = Field(validation_alias="JOBS_TABLE")
    openai_secret_arn: str = Field(default="", validation_alias="OPENAI_API_KEY_SECRET_ARN")
    link_expiry_seconds: int = Field(
        default=LINK_EXPIRY_DEFAULT, ge=LINK_EXPIRY_MIN, le=LINK_EXPIRY_MAX, validation_alias="LINK_EXPIRY_SECONDS"
    )
    job_retention_days: int = Field(default=7, ge=1, le=365, validation_alias="JOB_RETENTION_DAYS")
    metrics_namespace: str = Field(default="", validation_alias="POWERTOOLS_METRICS_NAMESPACE")  # empty: no metrics


class McpSettings(StackSettings):
    """The MCP function: what it serves, to whom, and within which limits."""

    alternatives: ClassVar[Mapping[str, str]] = {
        **StackSettings.alternatives,
        "MCP_REQUEST_STATE_SECRET_ARN": "MCP_REQUEST_STATE_KEY",
    }

    api_keys_table: str = Field(validation_alias="API_KEYS_TABLE")
    queue_url: str = Field(validation_alias="JOBS_QUEUE_URL")
    # Besides the API's own host, learnt from the requests (see entry.endpoint).
    allowed_hosts: CommaList = Field(default_factory=list, validation_alias="MCP_ALLOWED_HOSTS")
    allowed_origins: CommaList = Field(default_factory=list, validation_alias="MCP_ALLOWED_ORIGINS")
    # Empty: https://<the API's execute-api host>/mcp, learnt from the first request.
    resource_url: str = Field(default="", validation_alias="MCP_RESOURCE_URL")
    # "execute-api.<region>.<URL suffix>": the API's host is "<api id>.<this>".
    execute_api_domain: str = Field(default="", validation_alias="MCP_EXECUTE_API_DOMAIN")
    request_state_secret_arn: str = Field(default="", validation_alias="MCP_REQUEST_STATE_SECRET_ARN")
    request_state_key: str = Field(default="", validation_alias="MCP_REQUEST_STATE_KEY")  # given directly: no ARN
    cognito_issuer: str = Field(default="", validation_alias="COGNITO_ISSUER")  # empty: no Cognito, API keys only
    cognito_client_ids: CommaList = Field(default_factory=list, validation_alias="COGNITO_CLIENT_IDS")
    required_scope: str = Field(default="", validation_alias="COGNITO_REQUIRED_SCOPE")
    # The OAuth façade (gpt_image_mcp.oauth), on when OAUTH_TABLE is set: CIMD/DCR clients sign in through Cognito.
    oauth_table: str = Field(default="", validation_alias="OAUTH_TABLE")
    cognito_domain: str = Field(default="", validation_alias="COGNITO_DOMAIN")  # the hosted login's base URL
    # The façade's own Cognito app client: a secret {"client_id", "client_secret"} by name, or the two values.
    oauth_upstream_secret_id: str = Field(default="", validation_alias="OAUTH_UPSTREAM_CLIENT_SECRET_ID")
    oauth_upstream_client_id: str = Field(default="", validation_alias="OAUTH_UPSTREAM_CLIENT_ID")
    oauth_upstream_client_secret: str = Field(default="", validation_alias="OAUTH_UPSTREAM_CLIENT_SECRET")
    oauth_signing_secret_arn: str = Field(default="", validation_alias="OAUTH_SIGNING_SECRET_ARN")
    oauth_signing_key: str = Field(default="", validation_alias="OAUTH_SIGNING_KEY")  # given directly: no ARN
    oauth_registrations_per_hour: int = Field(
        default=20, ge=1, le=10_000, validation_alias="OAUTH_REGISTRATIONS_PER_HOUR"
    )
    # Tests only: fetch client metadata documents from loopback, trusting this CA file.
    oauth_cimd_allow_loopback: bool = Field(default=False, validation_alias="OAUTH_CIMD_ALLOW_LOOPBACK")
    oauth_cimd_ca_file: str = Field(default="", validation_alias="OAUTH_CIMD_CA_FILE")
    max_request_bytes: int = Field(
        default=MAX_REQUEST_BYTES, ge=1024, le=10 * 1024 * 1024, validation_alias="MCP_MAX_REQUEST_BYTES"
    )
    request_budget_seconds: int = Field(
        default=API_BUDGET_SECONDS, ge=5, le=900, validation_alias="MCP_REQUEST_BUDGET_SECONDS"
    )

    @field_validator("cognito_issuer", mode="after")
    @classmethod
    def _no_trailing_slash(cls, issuer: str) -> str:
        return issuer.rstrip("/")

    @field_validator("execute_api_domain", mode="after")
    @classmethod
    def _no_outer_dots(cls, domain: str) -> str:
        return domain.strip(".")

    @model_validator(mode="after")
    def _facade_needs_cognito(self) -> Self:
        if not self.oauth_table:
            return self
        missing = [name for name, value in (
            ("COGNITO_ISSUER", self.cognito_issuer),
            ("COGNITO_DOMAIN", self.cognito_domain),
            ("OAUTH_UPSTREAM_CLIENT_SECRET_ID or OAUTH_UPSTREAM_CLIENT_ID and _SECRET", self.oauth_upstream_secret_id
             or (self.oauth_upstream_client_id and self.oauth_upstream_client_secret)),
            ("OAUTH_SIGNING_SECRET_ARN or OAUTH_SIGNING_KEY", self.oauth_signing_secret_arn or self.oauth_signing_key),
        ) if not value]  # fmt: skip
        if missing:
            raise ValueError(f"OAUTH_TABLE is set (the OAuth façade is on) but {', '.join(missing)} is not")
        return self

    @model_validator(mode="after")
    def _issuer_needs_clients(self) -> Self:
        if self.cognito_issuer and not self.cognito_client_ids:
            raise ValueError(
                "COGNITO_ISSUER is set but COGNITO_CLIENT_IDS is empty: list the app client ids whose access "
                "tokens this server accepts (comma separated)"
            )
        return self


class WorkerSettings(StackSettings):
    """The SQS worker: how often a job may be delivered, its lease, and the retry backoff."""

    max_receive_count: int = Field(
        default=MAX_RECEIVE_DEFAULT, ge=1, le=1000, validation_alias="JOBS_MAX_RECEIVE_COUNT"
    )
    lease_seconds: float = Field(default=60.0, ge=0.5, le=900.0, validation_alias="JOBS_LEASE_SECONDS")
    # How often a running job checks for a cancel (one GetItem each).
    poll_seconds: float = Field(default=1.0, ge=0.01, le=60.0, validation_alias="JOBS_POLL_SECONDS")
    retry_base_seconds: int = Field(
        default=30, ge=0, le=MAX_VISIBILITY_SECONDS, validation_alias="JOBS_RETRY_BASE_SECONDS"
    )
    queue_url: str = Field(default="", validation_alias="JOBS_QUEUE_URL")  # empty: from each record's ARN
