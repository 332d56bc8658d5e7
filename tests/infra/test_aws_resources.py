"""local_sandbox.standins.aws_resources against a moto server on loopback: it creates what template.yaml declares."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from local_sandbox.standins.aws_resources import AwsClients, AwsNames, TemplateError, create_resources, load_template
from local_sandbox.standins.moto_server import MotoServer

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = MotoServer().start()
    yield server.url
    server.stop()


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> AwsClients:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"), timeout=10):
        pass
    return AwsClients.from_session(boto3.session.Session(), endpoint_url=moto_url)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def _props(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    props: dict[str, Any] = template["Resources"][logical_id]["Properties"]
    return props


def _index_shape(indexes: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {i["IndexName"]: (i["KeySchema"], i["Projection"]["ProjectionType"]) for i in indexes or ()}


# ------------------------------------------------------------------------------------------------ DynamoDB


@pytest.mark.parametrize("logical_id", ["HistoryTable", "JobsTable", "ApiKeysTable"])
def test_tables_match_the_template(aws: AwsClients, template: dict[str, Any], logical_id: str) -> None:
    names = create_resources(aws)
    table_name = {
        "HistoryTable": names.history_table,
        "JobsTable": names.jobs_table,
        "ApiKeysTable": names.api_keys_table,
    }[logical_id]
    want = _props(template, logical_id)
    table = aws.dynamodb.describe_table(TableName=table_name)["Table"]

    assert table["TableStatus"] == "ACTIVE"
    assert table["KeySchema"] == want["KeySchema"]
    assert sorted(table["AttributeDefinitions"], key=str) == sorted(want["AttributeDefinitions"], key=str)
    assert _index_shape(table.get("LocalSecondaryIndexes")) == _index_shape(want.get("LocalSecondaryIndexes"))
    assert _index_shape(table.get("GlobalSecondaryIndexes")) == _index_shape(want.get("GlobalSecondaryIndexes"))
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSEDescription"]["Status"] == "ENABLED"

    backups = aws.dynamodb.describe_continuous_backups(TableName=table_name)["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"

    ttl = aws.dynamodb.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
    if "TimeToLiveSpecification" in want:
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": want["TimeToLiveSpecification"]["AttributeName"]}
    else:
        assert ttl["TimeToLiveStatus"] == "DISABLED"


def test_indexes_answer_queries(aws: AwsClients) -> None:
    names = create_resources(aws)
    ddb = aws.dynamodb
    for i, created in enumerate(["2026-01-03T00:00:00Z", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"]):
        ddb.put_item(
            TableName=names.history_table,
            Item={"user": {"S": "u1"}, "uuid": {"S": f"id-{i}"}, "created_at": {"S": created}},
        )
    page = ddb.query(
        TableName=names.history_table,
        IndexName="by_created",
        KeyConditionExpression="#u = :u",
        ExpressionAttributeNames={"#u": "user"},
        ExpressionAttributeValues={":u": {"S": "u1"}},
        ScanIndexForward=False,
    )
    assert [item["uuid"]["S"] for item in page["Items"]] == ["id-0", "id-2", "id-1"]

    ddb.put_item(
        TableName=names.api_keys_table,
        Item={"key_hash": {"S": "h1"}, "user_id": {"S": "u1"}, "created_at": {"S": "2026-01-01T00:00:00Z"}},
    )
    keys = ddb.query(
        TableName=names.api_keys_table,
        IndexName="by_user",
        KeyConditionExpression="user_id = :u",
        ExpressionAttributeValues={":u": {"S": "u1"}},
    )
    assert [item["key_hash"]["S"] for item in keys["Items"]] == ["h1"]


def test_existing_table_with_other_keys_is_refused(aws: AwsClients) -> None:
    aws.dynamodb.create_table(
        TableName="local-history-table",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(TemplateError, match="local-history-table exists with keys or indexes that differ"):
        create_resources(aws)


# ------------------------------------------------------------------------------------------------ SQS


def test_queues_have_the_redrive_policy(aws: AwsClients, template: dict[str, Any]) -> None:
    names = create_resources(aws)
    attrs = aws.sqs.get_queue_attributes(QueueUrl=names.queue_url, AttributeNames=["All"])["Attributes"]
    dlq_attrs = aws.sqs.get_queue_attributes(QueueUrl=names.dlq_url, AttributeNames=["All"])["Attributes"]
    want = _props(template, "JobsQueue")
    redrive = json.loads(attrs["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq_attrs["QueueArn"]
    assert int(redrive["maxReceiveCount"]) == want["RedrivePolicy"]["maxReceiveCount"]
    assert int(attrs["VisibilityTimeout"]) == want["VisibilityTimeout"]
    assert attrs["SqsManagedSseEnabled"] == "true"
    want_dlq = _props(template, "JobsDeadLetterQueue")
    assert int(dlq_attrs["MessageRetentionPeriod"]) == want_dlq["MessageRetentionPeriod"]


def test_a_failing_message_reaches_the_dead_letter_queue(aws: AwsClients, template: dict[str, Any]) -> None:
    # Queues of their own: moto's state is per process, and a remote shape started earlier in the same session
    # polls the default-named jobs queue with its worker.
    names = create_resources(aws, prefix="dlq-check")
    max_receives = _props(template, "JobsQueue")["RedrivePolicy"]["maxReceiveCount"]
    aws.sqs.send_message(QueueUrl=names.queue_url, MessageBody=json.dumps({"user": "u1", "job_id": "j1"}))
    for _ in range(max_receives):
        got = aws.sqs.receive_message(QueueUrl=names.queue_url, VisibilityTimeout=0, WaitTimeSeconds=0)
        assert len(got.get("Messages", [])) == 1
    assert aws.sqs.receive_message(QueueUrl=names.queue_url, WaitTimeSeconds=0).get("Messages", []) == []
    dead = aws.sqs.receive_message(QueueUrl=names.dlq_url, WaitTimeSeconds=0)["Messages"]
    assert json.loads(dead[0]["Body"]) == {"user": "u1", "job_id": "j1"}


# ------------------------------------------------------------------------------------------------ S3


def test_bucket_matches_the_template(aws: AwsClients) -> None:
    names = create_resources(aws)
    s3 = aws.s3
    (sse,) = s3.get_bucket_encryption(Bucket=names.bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert sse["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=names.bucket)["PublicAccessBlockConfiguration"]
    assert block == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    ownership = s3.get_bucket_ownership_controls(Bucket=names.bucket)["OwnershipControls"]["Rules"]
    assert ownership == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=names.bucket)["Rules"]}
    assert rules["ExpireUserImages"]["Filter"] == {"Prefix": "users/"}
    assert rules["ExpireUserImages"]["Expiration"] == {"Days": 30}
    assert rules["AbortIncompleteUploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    (cors,) = s3.get_bucket_cors(Bucket=names.bucket)["CORSRules"]
    assert "PUT" in cors["AllowedMethods"] and cors["AllowedHeaders"] == ["content-type"]


def test_parameters_override_template_defaults(aws: AwsClients) -> None:
    names = create_resources(aws, parameters={"ImageRetentionDays": "7"})
    rules = {r["ID"]: r for r in aws.s3.get_bucket_lifecycle_configuration(Bucket=names.bucket)["Rules"]}
    assert rules["ExpireUserImages"]["Expiration"] == {"Days": 7}
    with pytest.raises(TemplateError, match="unknown template parameters: NoSuchParameter"):
        create_resources(aws, parameters={"NoSuchParameter": "1"})


# ------------------------------------------------------------------------------------------------ the call itself


def test_names_and_idempotence(aws: AwsClients) -> None:
    first = create_resources(aws)
    assert first == AwsNames(
        bucket="local-images-bucket",
        history_table="local-history-table",
        jobs_table="local-jobs-table",
        api_keys_table="local-api-keys-table",
        oauth_table="local-oauth-table",
        queue_url=first.queue_url,
        dlq_url=first.dlq_url,
    )
    assert first.queue_url.endswith("/local-jobs-queue")
    assert first.dlq_url.endswith("/local-jobs-dead-letter-queue")
    aws.dynamodb.put_item(TableName=first.jobs_table, Item={"user": {"S": "u"}, "job_id": {"S": "j"}})
    aws.s3.put_object(Bucket=first.bucket, Key="users/u/a.png", Body=b"png")

    second = create_resources(aws)

    assert second == first
    assert aws.dynamodb.get_item(TableName=first.jobs_table, Key={"user": {"S": "u"}, "job_id": {"S": "j"}})["Item"]
    assert aws.s3.get_object(Bucket=first.bucket, Key="users/u/a.png")["Body"].read() == b"png"
    assert len(aws.dynamodb.list_tables()["TableNames"]) == 4
    assert len(aws.sqs.list_queues()["QueueUrls"]) == 2
    assert [b["Name"] for b in aws.s3.list_buckets()["Buckets"]] == ["local-images-bucket"]


def test_session_and_prefix(aws: AwsClients, moto_url: str) -> None:
    names = create_resources(boto3.session.Session(), endpoint_url=moto_url, prefix="ci-7")
    assert names.bucket == "ci-7-images-bucket"
    assert names.oauth_table == "ci-7-oauth-table"  # named by the remote shape only with the façade's settings
    assert names.environment() == {
        "IMAGES_BUCKET": "ci-7-images-bucket",
        "HISTORY_TABLE": "ci-7-history-table",
        "JOBS_TABLE": "ci-7-jobs-table",
        "API_KEYS_TABLE": "ci-7-api-keys-table",
        "JOBS_QUEUE_URL": names.queue_url,
    }
    with pytest.raises(ValueError, match="prefix"):
        create_resources(aws, prefix="Bad_Prefix")


def test_env_json_uses_the_local_names(aws: AwsClients) -> None:
    names = create_resources(aws)
    env = json.loads((ROOT / "infra" / "env.json").read_text(encoding="utf-8"))
    for function_env in env.values():
        for key, value in names.environment().items():
            if key in function_env:
                expected = value if key != "JOBS_QUEUE_URL" else value.rsplit("/", 2)[-2:]
                got = function_env[key] if key != "JOBS_QUEUE_URL" else function_env[key].rsplit("/", 2)[-2:]
                assert got == expected, key


def test_unknown_property_is_refused(aws: AwsClients, tmp_path: Path) -> None:
    text = TEMPLATE.read_text(encoding="utf-8").replace(
        "      BillingMode: PAY_PER_REQUEST\n",
        "      BillingMode: PAY_PER_REQUEST\n      ImportSourceSpecification: {}\n",
        1,
    )
    changed = tmp_path / "template.yaml"
    changed.write_text(text, encoding="utf-8")
    with pytest.raises(TemplateError, match="no local translation for ImportSourceSpecification"):
        create_resources(aws, template_path=changed)


def test_heavy_imports_are_lazy() -> None:
    code = (
        "import sys, local_sandbox.standins.aws_resources\n"
        "print([m for m in ('cfnlint', 'yaml', 'boto3', 'botocore') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"
