"""Create the stack's S3 bucket, SQS queues and DynamoDB tables in a local AWS emulator (moto), from template.yaml.

The remote shape's storage is declared once, in `template.yaml`. This module reads that file and translates the
`Properties` of every `AWS::S3::Bucket`, `AWS::SQS::Queue` and `AWS::DynamoDB::Table` resource into the boto3 calls
that create the same thing (key schema, indexes, TTL, point-in-time recovery, SSE, redrive policy, lifecycle rules,
CORS, ...), so the local emulation and the tests can never drift from what CloudFormation deploys. A property this
module does not know raises `TemplateError` instead of being silently dropped.

Used by the tests and by the local emulation command only; never imported in Lambda. The YAML loader (cfn-lint's,
which understands the CloudFormation short tags such as `!Sub`) and boto3 are imported lazily.

Import direction: local_sandbox.standins.aws_resources -> boto3, cfnlint.decode (lazily). Nothing in `functions/`
imports it.

Local physical names are `<prefix>-<logical id in kebab case>`, e.g. `local-history-table`, `local-jobs-queue`.
Every call is idempotent: existing resources are reused and brought in line with the template.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"

BUCKET_TYPE = "AWS::S3::Bucket"
QUEUE_TYPE = "AWS::SQS::Queue"
TABLE_TYPE = "AWS::DynamoDB::Table"
SUPPORTED_TYPES = (BUCKET_TYPE, QUEUE_TYPE, TABLE_TYPE)

# Logical ids in template.yaml -> AwsNames fields.
LOGICAL_IDS = {
    "bucket": "ImagesBucket",
    "history_table": "HistoryTable",
    "jobs_table": "JobsTable",
    "api_keys_table": "ApiKeysTable",
    "oauth_table": "OauthTable",
    "queue_url": "JobsQueue",
    "dlq_url": "JobsDeadLetterQueue",
}

_PREFIX_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,28}[a-z0-9])?$")
_SUB_VAR_RE = re.compile(r"\$\{([^}!][^}]*)\}")
_ACCOUNT_ID = "123456789012"


class TemplateError(ValueError):
    """The template holds something this module cannot reproduce locally."""


@dataclass(frozen=True, slots=True)
class AwsNames:
    """Physical names of the local resources, as the functions see them in their environment."""

    bucket: str
    history_table: str
    jobs_table: str
    api_keys_table: str
    oauth_table: str
    queue_url: str
    dlq_url: str

    def environment(self) -> dict[str, str]:
        """The functions' environment variables that name these resources (same names as in template.yaml).

        Not OAUTH_TABLE: it turns the OAuth façade on, which needs Cognito settings; the remote shape sets them all."""
        return {
            "IMAGES_BUCKET": self.bucket,
            "HISTORY_TABLE": self.history_table,
            "JOBS_TABLE": self.jobs_table,
            "API_KEYS_TABLE": self.api_keys_table,
            "JOBS_QUEUE_URL": self.queue_url,
        }


@dataclass(frozen=True, slots=True)
class AwsClients:
    """The three boto3 clients needed; build them with `from_session` or pass your own."""

    s3: Any
    sqs: Any
    dynamodb: Any

    @classmethod
    def from_session(
        cls, session: Any = None, *, endpoint_url: str | None = None, region_name: str | None = None
    ) -> AwsClients:
        if session is None:
            import boto3  # lazy: keeps this module cheap to import

            session = boto3.session.Session()
        kwargs: dict[str, Any] = {}
        if endpoint_url:
            kwargs["endpoint_url"] = endpoint_url
        if region_name:
            kwargs["region_name"] = region_name
        return cls(
            s3=session.client("s3", **kwargs),
            sqs=session.client("sqs", **kwargs),
            dynamodb=session.client("dynamodb", **kwargs),
        )


# ----------------------------------------------------------------------------------------------- template


def load_template(path: Path | str | None = None) -> dict[str, Any]:
    """Parse a CloudFormation/SAM YAML template (short tags become `{"Fn::Sub": ...}` etc.) into plain Python."""
    from cfnlint.decode import cfn_yaml  # lazy: only the tests and the local emulation need it

    template_path = Path(path) if path is not None else TEMPLATE_PATH
    if not template_path.is_file():
        raise FileNotFoundError(f"template not found: {template_path}")
    loaded = _plain(cfn_yaml.load(str(template_path)))
    if not isinstance(loaded, dict) or not isinstance(loaded.get("Resources"), dict):
        raise TemplateError(f"{template_path} has no Resources mapping")
    return loaded


def _plain(node: Any) -> Any:
    """cfn-lint's node subclasses (dict_node, str_node, ...) to builtin types."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def local_name(prefix: str, logical_id: str) -> str:
    """`local` + `JobsDeadLetterQueue` -> `local-jobs-dead-letter-queue`."""
    kebab = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", logical_id).lower()
    return f"{prefix}-{kebab}"


# ----------------------------------------------------------------------------------------------- intrinsics


class _NoValue:
    """`AWS::NoValue`: removes the enclosing key or list item."""


NO_VALUE = _NoValue()


class _Stack:
    """Resolves intrinsic functions against parameter values and the local resources, creating those on demand."""

    def __init__(
        self,
        template: Mapping[str, Any],
        clients: AwsClients,
        prefix: str,
        parameters: Mapping[str, Any],
    ) -> None:
        self.template = template
        self.clients = clients
        self.prefix = prefix
        self.region: str = clients.sqs.meta.region_name or "us-east-1"
        self.resources: Mapping[str, Any] = template["Resources"]
        self.parameters = self._parameter_values(parameters)
        self.created: dict[str, dict[str, str]] = {}  # logical id -> {"Ref": ..., "Arn": ..., ...}
        self._creating: set[str] = set()

    # -- parameters and conditions

    def _parameter_values(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        declared: Mapping[str, Any] = self.template.get("Parameters", {})
        unknown = sorted(set(overrides) - set(declared))
        if unknown:
            raise TemplateError(f"unknown template parameters: {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, spec in declared.items():
            if name in overrides:
                raw = overrides[name]
            elif "Default" in spec:
                raw = spec["Default"]
            else:
                continue  # required parameter without a value: only an error if something refers to it
            kind = spec.get("Type", "String")
            if kind == "Number":
                values[name] = int(raw) if re.fullmatch(r"-?\d+", str(raw)) else float(raw)
            elif kind == "CommaDelimitedList" and isinstance(raw, str):
                values[name] = [item.strip() for item in raw.split(",")]
            else:
                values[name] = raw
        return values

    def condition(self, name: str) -> bool:
        conditions: Mapping[str, Any] = self.template.get("Conditions", {})
        if name not in conditions:
            raise TemplateError(f"unknown condition {name!r}")
        return self._truth(conditions[name])

    def _truth(self, node: Any) -> bool:
        if isinstance(node, dict) and len(node) == 1:
            ((fn, arg),) = node.items()
            if fn == "Fn::Equals":
                left, right = (self.resolve(v) for v in arg)
                return str(left) == str(right)
            if fn == "Fn::Not":
                return not self._truth(arg[0])
            if fn == "Fn::And":
                return all(self._truth(v) for v in arg)
            if fn == "Fn::Or":
                return any(self._truth(v) for v in arg)
            if fn == "Condition":
                return self.condition(arg)
        raise TemplateError(f"unsupported condition expression: {node!r}")

    # -- values

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            items = [self.resolve(v) for v in node]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            handler = self._functions().get(key)
            if handler is not None:
                return handler(arg)
            if key.startswith("Fn::"):
                raise TemplateError(f"unsupported intrinsic function {key}")
        resolved = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _functions(self) -> dict[str, Callable[[Any], Any]]:
        return {
            "Ref": self._ref,
            "Fn::GetAtt": self._get_att,
            "Fn::Sub": self._sub,
            "Fn::Join": lambda arg: str(self.resolve(arg[0])).join(str(v) for v in self.resolve(arg[1])),
            "Fn::If": lambda arg: self.resolve(arg[1] if self.condition(arg[0]) else arg[2]),
            "Fn::Select": lambda arg: self.resolve(arg[1])[int(self.resolve(arg[0]))],
        }

    def _ref(self, name: Any) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": _ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.prefix,
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{_ACCOUNT_ID}:stack/{self.prefix}/local",
        }
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.template.get("Parameters", {}):
            raise TemplateError(f"parameter {name!r} has no default; pass it in `parameters`")
        return self.attribute(name, "Ref")

    def _get_att(self, arg: Any) -> Any:
        logical_id, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
        return self.attribute(logical_id, self.resolve(attribute))

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                return str(self._get_att(name))
            return str(self._ref(name))

        return _SUB_VAR_RE.sub(replace, text).replace("${!", "${")

    def attribute(self, logical_id: str, attribute: str) -> str:
        resource = self.resources.get(logical_id)
        if resource is None:
            raise TemplateError(f"reference to unknown resource {logical_id!r}")
        if resource.get("Type") not in SUPPORTED_TYPES:
            raise TemplateError(
                f"{logical_id} ({resource.get('Type')}) has no local counterpart; storage resources may only refer "
                "to parameters and to other buckets, queues and tables"
            )
        attributes = self.ensure(logical_id)
        if attribute not in attributes:
            raise TemplateError(f"{logical_id} has no attribute {attribute!r} locally")
        return attributes[attribute]

    # -- resources

    def ensure(self, logical_id: str) -> dict[str, str]:
        """Create (or reuse) one resource, after whatever it refers to; return its Ref and attributes."""
        if logical_id in self.created:
            return self.created[logical_id]
        if logical_id in self._creating:
            raise TemplateError(f"circular reference through {logical_id}")
        self._creating.add(logical_id)
        try:
            resource = self.resources[logical_id]
            if "Condition" in resource and not self.condition(resource["Condition"]):
                raise TemplateError(f"{logical_id} is disabled by condition {resource['Condition']!r}")
            properties = self.resolve(resource.get("Properties", {}))
            creator = {BUCKET_TYPE: _create_bucket, QUEUE_TYPE: _create_queue, TABLE_TYPE: _create_table}
            attributes = creator[resource["Type"]](self, logical_id, properties)
        finally:
            self._creating.discard(logical_id)
        self.created[logical_id] = attributes
        return attributes

    def physical_name(self, logical_id: str, properties: Mapping[str, Any], name_property: str) -> str:
        name = properties.get(name_property)
        return str(name) if name else local_name(self.prefix, logical_id)


def _check_properties(logical_id: str, properties: Mapping[str, Any], known: set[str], ignored: set[str]) -> None:
    unknown = sorted(set(properties) - known - ignored)
    if unknown:
        raise TemplateError(
            f"{logical_id}: no local translation for {', '.join(unknown)}; "
            "teach local_sandbox/standins/aws_resources.py"
        )


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


# ----------------------------------------------------------------------------------------------- DynamoDB

_TABLE_CREATE_KEYS = {
    "AttributeDefinitions",
    "KeySchema",
    "BillingMode",
    "ProvisionedThroughput",
    "LocalSecondaryIndexes",
    "GlobalSecondaryIndexes",
    "TableClass",
    "DeletionProtectionEnabled",
}
_TABLE_KNOWN = {
    *_TABLE_CREATE_KEYS,
    "TableName",
    "SSESpecification",
    "StreamSpecification",
    "TimeToLiveSpecification",
    "PointInTimeRecoverySpecification",
    "Tags",
}
# Accepted but without local meaning (monitoring, throughput hints, replication of data from elsewhere).
_TABLE_IGNORED = {"ContributorInsightsSpecification", "KinesisStreamSpecification", "WarmThroughput", "ResourcePolicy"}


def _create_table(stack: _Stack, logical_id: str, props: Mapping[str, Any]) -> dict[str, str]:
    _check_properties(logical_id, props, _TABLE_KNOWN, _TABLE_IGNORED)
    ddb = stack.clients.dynamodb
    name = stack.physical_name(logical_id, props, "TableName")
    request: dict[str, Any] = {"TableName": name, **{k: v for k, v in props.items() if k in _TABLE_CREATE_KEYS}}
    if "SSESpecification" in props:
        sse = props["SSESpecification"]
        request["SSESpecification"] = {"Enabled": bool(sse.get("SSEEnabled", False))}
        for key in ("SSEType", "KMSMasterKeyId"):
            if key in sse:
                request["SSESpecification"][key] = sse[key]
    if "StreamSpecification" in props:
        request["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": props["StreamSpecification"]["StreamViewType"],
        }
    if props.get("Tags"):
        request["Tags"] = props["Tags"]
    if request.get("BillingMode") == "PAY_PER_REQUEST":
        request.pop("ProvisionedThroughput", None)

    try:
        ddb.create_table(**request)
    except Exception as exc:
        if _error_code(exc) != "ResourceInUseException":
            raise
        _check_existing_table(ddb, name, request)
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})

    ttl = props.get("TimeToLiveSpecification")
    if ttl is not None:
        current = ddb.describe_time_to_live(TableName=name).get("TimeToLiveDescription", {})
        enabled = current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING")
        wanted = bool(ttl.get("Enabled", False))
        if enabled != wanted or (wanted and current.get("AttributeName") != ttl["AttributeName"]):
            ddb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": wanted},
            )
    pitr = props.get("PointInTimeRecoverySpecification")
    if pitr is not None:
        ddb.update_continuous_backups(
            TableName=name,
            PointInTimeRecoverySpecification={
                "PointInTimeRecoveryEnabled": bool(pitr.get("PointInTimeRecoveryEnabled", False))
            },
        )
    arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
    return {"Ref": name, "Arn": arn}


def _check_existing_table(ddb: Any, name: str, request: Mapping[str, Any]) -> None:
    """An existing table is reused only if its keys and indexes match the template (they cannot be changed)."""
    table = ddb.describe_table(TableName=name)["Table"]

    def indexes(items: Sequence[Mapping[str, Any]] | None) -> dict[str, Any]:
        return {i["IndexName"]: i["KeySchema"] for i in items or ()}

    same = (
        table["KeySchema"] == request["KeySchema"]
        and indexes(table.get("LocalSecondaryIndexes")) == indexes(request.get("LocalSecondaryIndexes"))
        and indexes(table.get("GlobalSecondaryIndexes")) == indexes(request.get("GlobalSecondaryIndexes"))
    )
    if not same:
        raise TemplateError(
            f"table {name} exists with keys or indexes that differ from template.yaml; delete it "
            "(or reset the emulator: POST /moto-api/reset) and try again"
        )


# ----------------------------------------------------------------------------------------------- SQS

_QUEUE_ATTRIBUTES = {
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "DelaySeconds",
    "FifoQueue",
    "FifoThroughputLimit",
    "KmsDataKeyReusePeriodSeconds",
    "KmsMasterKeyId",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "RedriveAllowPolicy",
    "RedrivePolicy",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
}
_QUEUE_KNOWN = {*_QUEUE_ATTRIBUTES, "QueueName", "Tags"}


def _queue_attribute(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _create_queue(stack: _Stack, logical_id: str, props: Mapping[str, Any]) -> dict[str, str]:
    _check_properties(logical_id, props, _QUEUE_KNOWN, set())
    sqs = stack.clients.sqs
    name = stack.physical_name(logical_id, props, "QueueName")
    if props.get("FifoQueue") and not name.endswith(".fifo"):
        name += ".fifo"
    attributes = {k: _queue_attribute(v) for k, v in props.items() if k in _QUEUE_ATTRIBUTES}
    try:
        url = str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
    except Exception as exc:
        if _error_code(exc) not in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            raise
        request: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
        if props.get("Tags"):
            request["tags"] = {t["Key"]: t["Value"] for t in props["Tags"]}
        url = str(sqs.create_queue(**request)["QueueUrl"])
    else:
        mutable = {k: v for k, v in attributes.items() if k != "FifoQueue"}
        if mutable:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=mutable)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {"Ref": url, "Arn": str(arn), "QueueName": name, "QueueUrl": url}


# ----------------------------------------------------------------------------------------------- S3

_BUCKET_KNOWN = {
    "BucketName",
    "BucketEncryption",
    "PublicAccessBlockConfiguration",
    "OwnershipControls",
    "VersioningConfiguration",
    "LifecycleConfiguration",
    "CorsConfiguration",
    "Tags",
}


def _create_bucket(stack: _Stack, logical_id: str, props: Mapping[str, Any]) -> dict[str, str]:
    _check_properties(logical_id, props, _BUCKET_KNOWN, set())
    s3 = stack.clients.s3
    name = stack.physical_name(logical_id, props, "BucketName")
    try:
        s3.head_bucket(Bucket=name)
    except Exception as exc:
        if _error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise
        request: dict[str, Any] = {"Bucket": name}
        if stack.region != "us-east-1":
            request["CreateBucketConfiguration"] = {"LocationConstraint": stack.region}
        try:
            s3.create_bucket(**request)
        except Exception as create_exc:
            if _error_code(create_exc) != "BucketAlreadyOwnedByYou":
                raise

    if "BucketEncryption" in props:
        rules = []
        for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]:
            translated: dict[str, Any] = {}
            if "ServerSideEncryptionByDefault" in rule:
                translated["ApplyServerSideEncryptionByDefault"] = rule["ServerSideEncryptionByDefault"]
            if "BucketKeyEnabled" in rule:
                translated["BucketKeyEnabled"] = bool(rule["BucketKeyEnabled"])
            rules.append(translated)
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(
            Bucket=name,
            PublicAccessBlockConfiguration={k: bool(v) for k, v in props["PublicAccessBlockConfiguration"].items()},
        )
    if "OwnershipControls" in props:
        s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls={"Rules": props["OwnershipControls"]["Rules"]})
    if "VersioningConfiguration" in props:
        s3.put_bucket_versioning(
            Bucket=name, VersioningConfiguration={"Status": props["VersioningConfiguration"]["Status"]}
        )
    if "LifecycleConfiguration" in props:
        rules = [_lifecycle_rule(logical_id, r) for r in props["LifecycleConfiguration"]["Rules"]]
        s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
    if "CorsConfiguration" in props:
        s3.put_bucket_cors(
            Bucket=name,
            CORSConfiguration={"CORSRules": [_cors_rule(r) for r in props["CorsConfiguration"]["CorsRules"]]},
        )
    if props.get("Tags"):
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": props["Tags"]})
    return {
        "Ref": name,
        "Arn": f"arn:aws:s3:::{name}",
        "DomainName": f"{name}.s3.amazonaws.com",
        "RegionalDomainName": f"{name}.s3.{stack.region}.amazonaws.com",
    }


def _lifecycle_rule(logical_id: str, rule: Mapping[str, Any]) -> dict[str, Any]:
    known = {
        "Id",
        "Status",
        "Prefix",
        "ExpirationInDays",
        "ExpirationDate",
        "ExpiredObjectDeleteMarker",
        "AbortIncompleteMultipartUpload",
        "NoncurrentVersionExpiration",
        "NoncurrentVersionExpirationInDays",
    }
    _check_properties(f"{logical_id} lifecycle rule {rule.get('Id', '?')}", rule, known, set())
    out: dict[str, Any] = {"Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
    if "Id" in rule:
        out["ID"] = rule["Id"]
    expiration: dict[str, Any] = {}
    if "ExpirationInDays" in rule:
        expiration["Days"] = int(rule["ExpirationInDays"])
    if "ExpirationDate" in rule:
        expiration["Date"] = rule["ExpirationDate"]
    if "ExpiredObjectDeleteMarker" in rule:
        expiration["ExpiredObjectDeleteMarker"] = bool(rule["ExpiredObjectDeleteMarker"])
    if expiration:
        out["Expiration"] = expiration
    if "AbortIncompleteMultipartUpload" in rule:
        days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    noncurrent = dict(rule.get("NoncurrentVersionExpiration", {}))
    if "NoncurrentVersionExpirationInDays" in rule:
        noncurrent["NoncurrentDays"] = rule["NoncurrentVersionExpirationInDays"]
    if noncurrent:
        out["NoncurrentVersionExpiration"] = {k: int(v) for k, v in noncurrent.items()}
    return out


def _cors_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    renamed = {"ExposedHeaders": "ExposeHeaders", "Id": "ID", "MaxAge": "MaxAgeSeconds"}
    return {renamed.get(k, k): (int(v) if k == "MaxAge" else v) for k, v in rule.items()}


# ----------------------------------------------------------------------------------------------- entry points


def iter_storage_resources(template: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(logical id, type) of every bucket, queue and table in the template, in template order."""
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") in SUPPORTED_TYPES:
            yield logical_id, resource["Type"]


def create_resources(
    aws: Any = None,
    *,
    prefix: str = "local",
    endpoint_url: str | None = None,
    region_name: str | None = None,
    template_path: Path | str | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> AwsNames:
    """Create (or reuse) every bucket, queue and table of template.yaml and return their local names.

    `aws` is an `AwsClients`, a boto3 `Session` (clients are made with `endpoint_url`/`region_name`), or None for
    a default session (botocore then honours `AWS_ENDPOINT_URL`). `parameters` override template parameter
    defaults (e.g. `{"ImageRetentionDays": 7}`); `AWS::StackName` resolves to `prefix`.
    """
    if not _PREFIX_RE.fullmatch(prefix):
        raise ValueError(f"prefix={prefix!r}: use 1-30 lower-case letters, digits and inner hyphens")
    clients = (
        aws
        if isinstance(aws, AwsClients)
        else AwsClients.from_session(aws, endpoint_url=endpoint_url, region_name=region_name)
    )
    template = load_template(template_path)
    stack = _Stack(template, clients, prefix, parameters or {})
    for logical_id, _ in iter_storage_resources(template):
        resource = template["Resources"][logical_id]
        if "Condition" in resource and not stack.condition(resource["Condition"]):
            continue
        stack.ensure(logical_id)
    missing = [lid for lid in LOGICAL_IDS.values() if lid not in stack.created]
    if missing:
        raise TemplateError(f"template.yaml lacks the resources the functions need: {', '.join(missing)}")
    return AwsNames(**{field: stack.created[lid]["Ref"] for field, lid in LOGICAL_IDS.items()})


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m local_sandbox.standins.aws_resources --endpoint-url URL`: print the names as env JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--endpoint-url", help="AWS emulator URL (default: AWS_ENDPOINT_URL)")
    parser.add_argument("--region", help="region (default: the session's, e.g. AWS_DEFAULT_REGION)")
    parser.add_argument("--prefix", default="local", help="name prefix (default: local)")
    parser.add_argument("--template", type=Path, default=None, help="template path (default: template.yaml)")
    args = parser.parse_args(argv)
    names = create_resources(
        prefix=args.prefix, endpoint_url=args.endpoint_url, region_name=args.region, template_path=args.template
    )
    print(json.dumps({**names.environment(), "JOBS_DLQ_URL": names.dlq_url}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
