"""API keys in DynamoDB (moto over HTTP) and the bearer verifier: API keys, and Cognito-style RS256 access tokens
checked against a key set served on a loopback HTTP server."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from aws_support import Names
from clock import Clock
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from gpt_image_mcp.aws import clients, keys_cli
from gpt_image_mcp.aws.api_keys import REVOCATION_BOUND_SECONDS, TOUCH_INTERVAL_SECONDS, ApiKeyStore, hash_key
from gpt_image_mcp.aws.auth import BearerTokenVerifier, safety_identifier, user_from_subject
from gpt_image_mcp.aws.config import McpSettings
from gpt_image_mcp.core.errors import InvalidArgumentError, NotFoundError

RESOURCE = "https://mcp.example.com/mcp"
CLIENT_ID = "app-client-1"
SCOPE = "https://mcp.example.com/mcp/images"
SUB = "5f0c8a4e-8d0b-4c55-9a66-1b2c3d4e5f60"


@pytest.fixture
def keys(dynamodb: Any, aws: Names) -> ApiKeyStore:
    return ApiKeyStore(dynamodb, aws.api_keys_table)


# API keys


def test_create_stores_only_a_hash(keys: ApiKeyStore, dynamodb: Any, aws: Names) -> None:
    plaintext, record = keys.create("alice", ["images"], expires_days=30)
    assert plaintext.startswith(f"gim_{record.key_id}_") and len(plaintext) == 4 + 12 + 1 + 43
    assert record.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert (record.user_id, record.scopes, record.revoked) == ("alice", ["images"], False)
    assert record.expires_at is not None and abs(record.expires_at - (time.time() + 30 * 86400)) < 60
    items = dynamodb.scan(TableName=aws.api_keys_table)["Items"]
    assert len(items) == 1
    assert plaintext not in json.dumps(items)
    assert set(items[0]) == {"key_hash", "key_id", "user_id", "scopes", "created_at", "expires_at", "revoked"}


def test_lookup_finds_active_keys_only(keys: ApiKeyStore) -> None:
    plaintext, record = keys.create("alice")
    assert keys.lookup(plaintext) == record
    assert keys.lookup(plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")) is None  # unknown
    assert keys.lookup("gim_nothex_x") is None
    assert keys.lookup("") is None
    assert keys.lookup(plaintext + "x") is None


def test_lookup_stamps_last_use(keys: ApiKeyStore, dynamodb: Any, aws: Names) -> None:
    plaintext, record = keys.create("alice")
    keys.lookup(plaintext)
    item = dynamodb.get_item(TableName=aws.api_keys_table, Key={"key_hash": {"S": record.key_hash}})["Item"]
    assert "last_used_at" in item


def test_expired_key_is_refused_even_before_ttl_deletes_it(keys: ApiKeyStore, dynamodb: Any, aws: Names) -> None:
    plaintext, record = keys.create("alice", expires_days=1)
    dynamodb.update_item(
        TableName=aws.api_keys_table,
        Key={"key_hash": {"S": record.key_hash}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 5)}},
    )
    assert keys.lookup(plaintext) is None


def test_cached_lookup_notices_expiry(dynamodb: Any, aws: Names) -> None:
    keys = ApiKeyStore(dynamodb, aws.api_keys_table, cache_seconds=3600)
    plaintext, record = keys.create("alice", expires_days=1)
    assert keys.lookup(plaintext) is not None
    # The cached copy says it expired a moment ago: no DynamoDB read is needed to refuse it.
    cached = keys._cache.get(record.key_hash)
    assert cached is not None
    keys._cache.put(record.key_hash, dataclasses.replace(cached, expires_at=int(time.time()) - 1))
    assert keys.lookup(plaintext) is None


def test_revoke_by_id_prefix_or_key(keys: ApiKeyStore) -> None:
    made = [keys.create("alice") for _ in range(3)]
    forms = [made[0][1].key_id, f"gim_{made[1][1].key_id}", made[2][0]]
    for (plaintext, _record), form in zip(made, forms, strict=True):
        assert keys.lookup(plaintext) is not None  # cached now
        assert keys.revoke(form, "alice").revoked
        assert keys.lookup(plaintext) is None


def test_revoke_reaches_other_containers_when_their_cache_expires(dynamodb: Any, aws: Names) -> None:
    clock = Clock(time.time())
    admin = ApiKeyStore(dynamodb, aws.api_keys_table)
    container = ApiKeyStore(dynamodb, aws.api_keys_table, cache_seconds=0.2, clock=clock)
    plaintext, record = admin.create("alice")
    assert container.lookup(plaintext) is not None
    admin.revoke(record.key_id, "alice")
    assert container.lookup(plaintext) is not None  # served from the container's cache (at most cache_seconds)
    clock.now += 0.25
    assert container.lookup(plaintext) is None


def test_a_revoked_key_stops_working_within_the_bound_on_every_container(dynamodb: Any, aws: Names) -> None:
    """The documented bound (README, infra/README): 5 s after revocation no warm container accepts the key."""
    clock = Clock(time.time())
    admin = ApiKeyStore(dynamodb, aws.api_keys_table)
    containers = [ApiKeyStore(dynamodb, aws.api_keys_table, clock=clock) for _ in range(3)]
    plaintext, record = admin.create("alice")
    for index, container in enumerate(containers):
        assert container.lookup(plaintext) is not None  # read at different moments, each cached
        clock.now += 1.0 if index < 2 else 0.0
    admin.revoke(record.key_id, "alice")
    revoked_at = clock.now
    clock.now = revoked_at + REVOCATION_BOUND_SECONDS - 2.001  # the first container's copy is 4.999 s old
    assert containers[0].lookup(plaintext) is not None
    clock.now = revoked_at + REVOCATION_BOUND_SECONDS
    assert [container.lookup(plaintext) for container in containers] == [None, None, None]
    clock.now += 3600  # and no copy of a refused key comes back from the cache
    assert [container.lookup(plaintext) for container in containers] == [None, None, None]


def test_last_use_is_stamped_at_most_once_a_minute(dynamodb: Any, aws: Names) -> None:
    clock = Clock(time.time())
    container = ApiKeyStore(dynamodb, aws.api_keys_table, clock=clock)
    plaintext, record = container.create("alice")

    def last_used() -> str:
        key = {"key_hash": {"S": record.key_hash}}
        return str(dynamodb.get_item(TableName=aws.api_keys_table, Key=key)["Item"]["last_used_at"]["S"])

    container.lookup(plaintext)
    first = last_used()
    clock.now += REVOCATION_BOUND_SECONDS + 1  # read again from DynamoDB, but not stamped again yet
    container.lookup(plaintext)
    assert last_used() == first
    clock.now += TOUCH_INTERVAL_SECONDS
    container.lookup(plaintext)
    assert last_used() > first


def test_revoke_refuses_another_users_or_an_unknown_key(keys: ApiKeyStore) -> None:
    plaintext, record = keys.create("alice")
    with pytest.raises(NotFoundError) as caught:
        keys.revoke(record.key_id, "bob")
    assert caught.value.message == f"No API key {record.key_id!r} belongs to user 'bob'."
    with pytest.raises(NotFoundError):
        keys.revoke("0123456789ab", "alice")
    with pytest.raises(NotFoundError):
        keys.revoke("not a key", "alice")
    assert keys.lookup(plaintext) is not None


def test_list_is_per_user_newest_first(keys: ApiKeyStore) -> None:
    first = keys.create("alice")[1]
    second = keys.create("alice", ["images", "admin"])[1]
    keys.create("bob")
    keys.revoke(first.key_id, "alice")
    listed = keys.list("alice")
    assert [item.key_id for item in listed] == [second.key_id, first.key_id]
    assert [item.revoked for item in listed] == [False, True]
    assert listed[0].scopes == ["images", "admin"]
    assert keys.list("carol") == []


@pytest.mark.parametrize(
    ("user", "scopes", "days", "message"),
    [
        ("", ["images"], None, "user_id must be 1-256 characters."),
        ("alice", [" "], None, "give at least one scope, for example 'images'."),
        ("alice", ["images"], 0, "expires_days must be 1-3650, not 0."),
    ],
)
def test_create_refuses_bad_input(
    keys: ApiKeyStore, user: str, scopes: list[str], days: int | None, message: str
) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        keys.create(user, scopes, days)
    assert caught.value.message == message


def test_cli_without_a_region_or_credentials_says_what_to_set(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance metadata lookup (no network here)
    clients.reset_clients()
    try:
        assert keys_cli.main(["--table", "keys", "list", "--user", "alice"]) == 1
        assert capsys.readouterr().err == f"gpt-image-mcp-keys: {keys_cli.NO_REGION}\n"
        monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
        clients.reset_clients()
        assert keys_cli.main(["--table", "keys", "list", "--user", "alice"]) == 1
        assert capsys.readouterr().err == f"gpt-image-mcp-keys: {keys_cli.NO_CREDENTIALS}\n"
    finally:
        clients.reset_clients()


def test_cli_create_list_revoke(aws: Names, capsys: pytest.CaptureFixture[str]) -> None:
    table = ["--table", aws.api_keys_table]
    assert keys_cli.main([*table, "create", "--user", "alice", "--expires-days", "7"]) == 0
    out, err = capsys.readouterr()
    plaintext = out.strip()
    assert plaintext.startswith("gim_") and "cannot be shown again" in err
    key_id = plaintext.split("_")[1]
    assert keys_cli.main([*table, "--json", "list", "--user", "alice"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(item["key_id"], item["status"], item["scopes"]) for item in listed] == [(key_id, "active", ["images"])]
    assert keys_cli.main([*table, "revoke", "--user", "bob", key_id]) == 1
    assert "No API key" in capsys.readouterr().err
    assert keys_cli.main([*table, "revoke", "--user", "alice", key_id]) == 0
    assert capsys.readouterr().out.strip() == f"revoked {key_id} of user alice"
    assert keys_cli.main([*table, "list", "--user", "alice"]) == 0
    assert " revoked " in capsys.readouterr().out


def test_cli_needs_a_table(aws: Names, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("API_KEYS_TABLE", raising=False)
    assert keys_cli.main(["list", "--user", "alice"]) == 2
    assert "API_KEYS_TABLE" in capsys.readouterr().err
    monkeypatch.setenv("API_KEYS_TABLE", aws.api_keys_table)
    assert keys_cli.main(["list", "--user", "alice"]) == 0


# identities


def test_user_from_subject_keeps_cognito_subs_and_hashes_the_rest() -> None:
    assert user_from_subject(SUB) == SUB
    hashed = user_from_subject("alice@example.com")
    assert hashed == "h-" + hashlib.sha256(b"alice@example.com").hexdigest()
    assert user_from_subject("../x") == "h-" + hashlib.sha256(b"../x").hexdigest()
    assert user_from_subject(SUB.upper()) != SUB.upper()  # not the canonical form: hashed, never trusted as a path
    assert safety_identifier("alice") == hashlib.sha256(b"alice").hexdigest()


# the verifier: API keys


@pytest.mark.anyio
async def test_api_key_becomes_an_access_token(keys: ApiKeyStore) -> None:
    plaintext, record = keys.create("alice", ["images", "other"], expires_days=2)
    verifier = BearerTokenVerifier(resource_url=RESOURCE, api_keys=keys, api_key_scope_map={"images": SCOPE})
    token = await verifier.verify_token(plaintext)
    assert token is not None
    assert (token.subject, token.client_id, token.scopes) == ("alice", f"api-key:{record.key_id}", [SCOPE, "other"])
    assert (token.resource, token.expires_at, token.token) == (RESOURCE, record.expires_at, plaintext)
    keys.revoke(record.key_id, "alice")
    assert await verifier.verify_token(plaintext) is None
    assert await BearerTokenVerifier(resource_url=RESOURCE).verify_token(keys.create("alice")[0]) is None


# the verifier: Cognito access tokens


class KeySet:
    """A loopback HTTP server publishing a JWKS, like Cognito's `{issuer}/.well-known/jwks.json`."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-key-1"
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        self.body = json.dumps({"keys": [{**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}]}).encode()
        self.requests = 0
        key_set = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                key_set.requests += 1
                if self.path != "/us-east-1_TEST/.well-known/jwks.json":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(key_set.body)))
                self.end_headers()
                self.wfile.write(key_set.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}/us-east-1_TEST"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def token(self, key: Any = None, headers: dict[str, Any] | None = None, **overrides: Any) -> str:
        now = int(time.time())
        claims = {
            "sub": SUB,
            "iss": self.issuer,
            "client_id": CLIENT_ID,
            "token_use": "access",
            "scope": f"openid {SCOPE}",
            "username": "alice",
            "auth_time": now,
            "iat": now,
            "exp": now + 3600,
            "jti": "j1",
        }
        claims.update(overrides)
        claims = {name: value for name, value in claims.items() if value is not None}
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": self.kid, **(headers or {})})


@pytest.fixture(scope="module")
def key_set() -> Iterator[KeySet]:
    server = KeySet()
    yield server
    server.close()


@pytest.fixture
def verifier(key_set: KeySet) -> BearerTokenVerifier:
    return BearerTokenVerifier(resource_url=RESOURCE, cognito_issuer=key_set.issuer, cognito_client_ids=[CLIENT_ID])


@pytest.mark.anyio
async def test_valid_access_token(verifier: BearerTokenVerifier, key_set: KeySet) -> None:
    raw = key_set.token()
    token = await verifier.verify_token(raw)
    assert token is not None
    assert (token.subject, token.client_id, token.scopes) == (SUB, CLIENT_ID, ["openid", SCOPE])
    assert (token.resource, token.token) == (RESOURCE, raw)
    assert token.expires_at == jwt.decode(raw, options={"verify_signature": False})["exp"]
    assert token.claims == {"iss": key_set.issuer, "username": "alice"}


@pytest.mark.anyio
async def test_key_set_is_fetched_once_per_container(verifier: BearerTokenVerifier, key_set: KeySet) -> None:
    await verifier.verify_token(key_set.token())
    before = key_set.requests
    for _ in range(3):
        assert await verifier.verify_token(key_set.token(jti="again")) is not None
    assert key_set.requests == before


@pytest.mark.anyio
@pytest.mark.parametrize(
    "overrides",
    [
        {"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_OTHER"},
        {"exp": int(time.time()) - 60},
        {"client_id": "someone-elses-client"},
        {"client_id": None},
        {"token_use": "id"},
        {"token_use": None},
        {"sub": None},
        {"sub": ""},
    ],
    ids=["wrong-issuer", "expired", "wrong-client", "no-client", "id-token", "no-token-use", "no-sub", "empty-sub"],
)
async def test_refused_claims(verifier: BearerTokenVerifier, key_set: KeySet, overrides: dict[str, Any]) -> None:
    assert await verifier.verify_token(key_set.token(**overrides)) is None


@pytest.mark.anyio
async def test_wrong_issuer_costs_no_key_set_fetch(verifier: BearerTokenVerifier, key_set: KeySet) -> None:
    before = key_set.requests
    assert await verifier.verify_token(key_set.token(iss="https://elsewhere.example/pool")) is None
    assert key_set.requests == before


@pytest.mark.anyio
async def test_refused_signatures(verifier: BearerTokenVerifier, key_set: KeySet) -> None:
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert await verifier.verify_token(key_set.token(key=other_key)) is None  # bad signature, same kid
    assert await verifier.verify_token(key_set.token(headers={"kid": "unknown"})) is None
    good = key_set.token()
    header, _payload, signature = good.split(".")
    tampered_claims = {**jwt.decode(good, options={"verify_signature": False}), "sub": "someone-else"}
    tampered = base64.urlsafe_b64encode(json.dumps(tampered_claims).encode()).rstrip(b"=").decode()
    assert await verifier.verify_token(f"{header}.{tampered}.{signature}") is None
    unsigned = jwt.encode(jwt.decode(good, options={"verify_signature": False}), "", algorithm="none")
    assert await verifier.verify_token(unsigned) is None
    hmac_signed = jwt.encode(tampered_claims, "s" * 32, algorithm="HS256", headers={"kid": key_set.kid})
    assert await verifier.verify_token(hmac_signed) is None  # only RS256 is accepted
    for garbage in ("", "not-a-jwt", "a.b.c", "x" * 10_000):
        assert await verifier.verify_token(garbage) is None


@pytest.mark.anyio
async def test_no_cognito_configured_refuses_every_jwt(key_set: KeySet) -> None:
    assert await BearerTokenVerifier(resource_url=RESOURCE).verify_token(key_set.token()) is None


def test_from_settings_maps_the_images_scope(keys: ApiKeyStore) -> None:
    settings = McpSettings(
        bucket="b",
        history_table="h",
        jobs_table="j",
        api_keys_table="k",
        queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/jobs",
        allowed_hosts=["mcp.example.com"],
        resource_url=RESOURCE,
        cognito_issuer="https://issuer.example/pool",
        cognito_client_ids=[CLIENT_ID],
        required_scope=SCOPE,
    )
    verifier = BearerTokenVerifier.from_settings(settings, keys)
    assert verifier.resource_url == RESOURCE
    assert verifier._scope_map == {"images": SCOPE}
    assert hash_key("x") == hashlib.sha256(b"x").hexdigest()
