"""The Lambda functions' settings from their environment, boto3 clients, and Secrets Manager values (moto)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_support import Names

from gpt_image_mcp.aws import clients
from gpt_image_mcp.aws.config import McpSettings, WorkerSettings
from gpt_image_mcp.aws.secrets import clear_secret_cache, get_secret
from gpt_image_mcp.core.errors import ConfigurationError
from gpt_image_mcp.entry.endpoint import resolve_endpoint

MCP_ENV = {
    "IMAGES_BUCKET": "images",
    "HISTORY_TABLE": "history",
    "JOBS_TABLE": "jobs",
    "API_KEYS_TABLE": "keys",
    "JOBS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/jobs",
    "OPENAI_API_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:openai-AbCdEf",
    "MCP_REQUEST_STATE_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:state-AbCdEf",
    "MCP_ALLOWED_HOSTS": "abc.execute-api.us-east-1.amazonaws.com,, mcp.example.com ,",
    "MCP_RESOURCE_URL": "https://mcp.example.com/mcp",
    "COGNITO_ISSUER": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_X/",
    "COGNITO_CLIENT_IDS": "a1,b2",
    "COGNITO_REQUIRED_SCOPE": "https://mcp.example.com/mcp/images",
}


WORKER_NEEDS = ("IMAGES_BUCKET", "HISTORY_TABLE", "JOBS_TABLE", "OPENAI_API_KEY_SECRET_ARN")


def test_from_env_reads_every_variable() -> None:
    settings = McpSettings.from_env(MCP_ENV)
    assert settings.bucket == "images"
    assert (settings.history_table, settings.jobs_table, settings.api_keys_table) == ("history", "jobs", "keys")
    assert settings.queue_url.endswith("/jobs")
    assert settings.link_expiry_seconds == 3600
    assert settings.allowed_hosts == ["abc.execute-api.us-east-1.amazonaws.com", "mcp.example.com"]
    assert settings.resource_url == "https://mcp.example.com/mcp"
    assert settings.cognito_issuer == "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_X"
    assert settings.cognito_client_ids == ["a1", "b2"]
    assert settings.required_scope == "https://mcp.example.com/mcp/images"
    assert settings.openai_secret_arn.endswith(":openai-AbCdEf")
    assert settings.request_state_secret_arn.endswith(":state-AbCdEf")


def test_missing_variables_are_named() -> None:
    env = {name: value for name, value in MCP_ENV.items() if name not in ("IMAGES_BUCKET", "JOBS_QUEUE_URL")}
    with pytest.raises(ConfigurationError) as caught:
        McpSettings.from_env({**env, "JOBS_TABLE": "  "})
    assert caught.value.message.startswith(
        "Missing environment variables IMAGES_BUCKET, JOBS_TABLE, JOBS_QUEUE_URL: the stack's template sets them"
    )


API_CONTEXT = {"apiId": "abc123def4", "domainName": "abc123def4.execute-api.us-east-1.amazonaws.com"}
EXECUTE_API = {"MCP_EXECUTE_API_DOMAIN": "execute-api.us-east-1.amazonaws.com"}


def test_the_endpoint_is_learnt_from_api_gateway_without_naming_the_api() -> None:
    env = {k: v for k, v in MCP_ENV.items() if k not in ("MCP_ALLOWED_HOSTS", "MCP_RESOURCE_URL")} | EXECUTE_API
    resolved = resolve_endpoint(McpSettings.from_env(env), API_CONTEXT)
    assert resolved.resource_url == "https://abc123def4.execute-api.us-east-1.amazonaws.com/mcp"
    assert resolved.allowed_hosts == ["abc123def4.execute-api.us-east-1.amazonaws.com"]
    # a custom domain (DomainName) is the resource URL; the API's own host stays allowed
    custom = resolve_endpoint(McpSettings.from_env({**MCP_ENV, **EXECUTE_API}), API_CONTEXT)
    assert custom.resource_url == "https://mcp.example.com/mcp"
    assert custom.allowed_hosts == [
        "abc123def4.execute-api.us-east-1.amazonaws.com",
        "abc.execute-api.us-east-1.amazonaws.com",
        "mcp.example.com",
    ]
    # an apiId that is not API Gateway's shape is never made into a host
    odd = resolve_endpoint(McpSettings.from_env({**MCP_ENV, **EXECUTE_API}), {"apiId": "evil.example.net#"})
    assert odd.allowed_hosts == ["abc.execute-api.us-east-1.amazonaws.com", "mcp.example.com"]


def test_an_unknown_endpoint_is_a_configuration_error() -> None:
    env = {k: v for k, v in MCP_ENV.items() if k not in ("MCP_ALLOWED_HOSTS", "MCP_RESOURCE_URL")}
    with pytest.raises(ConfigurationError) as caught:
        resolve_endpoint(McpSettings.from_env(env), API_CONTEXT)
    assert caught.value.message.startswith("The MCP resource URL is unknown: set MCP_RESOURCE_URL")
    with pytest.raises(ConfigurationError) as caught:
        resolve_endpoint(McpSettings.from_env({**MCP_ENV, "MCP_ALLOWED_HOSTS": "[::1]:8080,ok.example"}), {})
    assert caught.value.message.startswith("MCP_ALLOWED_HOSTS entries '[::1]:8080' cannot be served")


def test_the_worker_needs_only_the_storage_variables() -> None:
    env = {name: MCP_ENV[name] for name in WORKER_NEEDS}
    settings = WorkerSettings.from_env(env)
    assert (settings.bucket, settings.history_table, settings.jobs_table) == ("images", "history", "jobs")
    assert not {"api_keys_table", "allowed_hosts", "cognito_issuer"} & set(WorkerSettings.model_fields)
    for name in WORKER_NEEDS:
        with pytest.raises(ConfigurationError, match=f"^Missing environment variable {name}: "):
            WorkerSettings.from_env({other: value for other, value in env.items() if other != name})


@pytest.mark.parametrize(
    ("raw", "result"),
    [("60", 60), ("604800", 604800), ("", 3600), ("0", None), ("604801", None), ("1h", None)],
)
def test_link_expiry_bounds(raw: str, result: int | None) -> None:
    env = {**MCP_ENV, "LINK_EXPIRY_SECONDS": raw}
    if result is None:
        with pytest.raises(ConfigurationError, match="LINK_EXPIRY_SECONDS"):
            McpSettings.from_env(env)
    else:
        assert McpSettings.from_env(env).link_expiry_seconds == result


def test_an_issuer_needs_client_ids() -> None:
    with pytest.raises(ConfigurationError, match="COGNITO_CLIENT_IDS is empty"):
        McpSettings.from_env({**MCP_ENV, "COGNITO_CLIENT_IDS": " , "})


def test_a_secret_given_by_value_needs_no_arn() -> None:
    direct = {name: value for name, value in MCP_ENV.items() if not name.endswith("_SECRET_ARN")}
    with pytest.raises(ConfigurationError) as caught:
        McpSettings.from_env(direct)
    assert caught.value.message.startswith(
        "Missing environment variables OPENAI_API_KEY_SECRET_ARN, MCP_REQUEST_STATE_SECRET_ARN: "
    )
    settings = McpSettings.from_env({**direct, "OPENAI_API_KEY": "sk-direct", "MCP_REQUEST_STATE_KEY": "state"})
    assert (settings.openai_api_key, settings.request_state_key, settings.openai_secret_arn) == (
        "sk-direct",
        "state",
        "",
    )


def test_limits_of_the_mcp_function_and_the_worker() -> None:
    mcp = McpSettings.from_env({**MCP_ENV, "MCP_MAX_REQUEST_BYTES": "65536", "MCP_REQUEST_BUDGET_SECONDS": "20"})
    assert (mcp.max_request_bytes, mcp.request_budget_seconds, mcp.allowed_origins) == (65536, 20, [])
    with pytest.raises(ConfigurationError) as caught:
        McpSettings.from_env({**MCP_ENV, "MCP_MAX_REQUEST_BYTES": "lots", "MCP_ALLOWED_ORIGINS": "https://a.example"})
    assert caught.value.message == "MCP_MAX_REQUEST_BYTES='lots' is not a whole number; use 1024-10485760."
    worker_env = {name: MCP_ENV[name] for name in WORKER_NEEDS}
    worker = WorkerSettings.from_env({**worker_env, "JOBS_LEASE_SECONDS": "1.5", "JOBS_POLL_SECONDS": "0.05"})
    assert (worker.lease_seconds, worker.poll_seconds, worker.max_receive_count, worker.queue_url) == (1.5, 0.05, 5, "")
    with pytest.raises(ConfigurationError) as caught:
        WorkerSettings.from_env({**worker_env, "JOBS_LEASE_SECONDS": "0.1", "JOBS_RETRY_BASE_SECONDS": "1h"})
    assert caught.value.message == (
        "JOBS_LEASE_SECONDS=0.1 is out of range; use 0.5-900. "
        "JOBS_RETRY_BASE_SECONDS='1h' is not a whole number; use 0-900."
    )


def test_clients_are_cached_per_service(aws: Names) -> None:
    assert clients.s3_client() is clients.client("s3")
    assert clients.dynamodb_client() is not clients.s3_client()
    assert clients.s3_client().meta.config.signature_version == "s3v4"
    assert clients.s3_client().meta.config.retries["mode"] == "standard"


# secrets


@pytest.fixture
def secretsmanager(aws: Names) -> Any:
    clear_secret_cache()
    return clients.secretsmanager_client()


def test_plain_and_json_secrets(secretsmanager: Any) -> None:
    plain = secretsmanager.create_secret(Name="plain", SecretString="sk-plain\n")["ARN"]
    as_json = secretsmanager.create_secret(Name="json", SecretString=json.dumps({"OPENAI_API_KEY": "sk-json"}))["ARN"]
    single = secretsmanager.create_secret(Name="single", SecretString=json.dumps({"key": "state-key"}))["ARN"]
    assert get_secret(plain) == "sk-plain"
    assert get_secret(as_json) == "sk-json"
    assert get_secret(single, field="MCP_REQUEST_STATE_SECRET") == "state-key"


def test_secret_is_cached_until_its_ttl(secretsmanager: Any) -> None:
    arn = secretsmanager.create_secret(Name="rotating", SecretString="first")["ARN"]
    assert get_secret(arn) == "first"
    secretsmanager.put_secret_value(SecretId=arn, SecretString="second")
    assert get_secret(arn) == "first"
    assert get_secret(arn, ttl_seconds=0) == "second"


def test_secret_errors_name_the_secret_but_never_the_value(secretsmanager: Any) -> None:
    with pytest.raises(ConfigurationError, match="could not be read \\(ResourceNotFoundException\\)"):
        get_secret("arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-AbCdEf")
    arn = secretsmanager.create_secret(Name="wrong", SecretString=json.dumps({"a": "sk-secret", "b": "x"}))["ARN"]
    with pytest.raises(ConfigurationError) as caught:
        get_secret(arn)
    assert "sk-secret" not in caught.value.message
    assert "without a text value under 'OPENAI_API_KEY'" in caught.value.message


def _schema(dynamodb: Any, table: str) -> dict[str, Any]:
    description = dynamodb.describe_table(TableName=table)["Table"]
    indexes = description.get("LocalSecondaryIndexes", []) + description.get("GlobalSecondaryIndexes", [])
    return {
        "attributes": sorted((a["AttributeName"], a["AttributeType"]) for a in description["AttributeDefinitions"]),
        "key": description["KeySchema"],
        "indexes": sorted(
            (index["IndexName"], json.dumps(index["KeySchema"]), index["Projection"]["ProjectionType"])
            for index in indexes
        ),
    }


def test_the_fixture_tables_match_template_yaml(aws: Names) -> None:
    """The per-test tables are made by hand for speed; this checks them against what template.yaml declares."""
    from local_sandbox.standins.aws_resources import create_resources

    dynamodb = clients.dynamodb_client()
    declared = create_resources(prefix="schemacheck")
    for mine, theirs in (
        (aws.history_table, declared.history_table),
        (aws.jobs_table, declared.jobs_table),
        (aws.api_keys_table, declared.api_keys_table),
    ):
        assert _schema(dynamodb, mine) == _schema(dynamodb, theirs)
