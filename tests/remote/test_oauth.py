"""The OAuth façade in front of Cognito, driven as MCP hosts drive it: the MCP SDK's own OAuth client registers by a
client metadata document (CIMD) or by dynamic registration (DCR), a person consents and signs in at the Cognito
stand-in, and the tokens call tools. Then every refusal the specs name, each with its error code."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx2
import jwt
import pytest
from clock import Clock
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientMetadata
from oauth_support import (
    REDIRECT_URI,
    Browser,
    DocumentServer,
    Front,
    MemoryTokenStorage,
    SdkCallbacks,
    authorize_url,
    code_for,
    pkce,
    query_of,
    register_client,
    self_signed,
    start_front,
    token,
)
from remote_support import Events, body_of, refused, succeeds

from gpt_image_mcp.entry.lambda_mcp import McpFunction
from local_sandbox.standins.api_gateway import LambdaContainer, http_api_event
from local_sandbox.standins.emulator import EmulatorServer
from local_sandbox.standins.remote_shape import RemoteShape

SCOPE = "gpt-image-mcp/images"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def documents(tls: tuple[Path, Path]) -> Iterator[DocumentServer]:
    server = DocumentServer(*tls)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def front(shape: RemoteShape, tls: tuple[Path, Path]) -> Iterator[Front]:
    """A deployment whose façade may fetch client metadata documents from loopback (tests only)."""
    running = start_front(shape, OAUTH_CIMD_ALLOW_LOOPBACK="true", OAUTH_CIMD_CA_FILE=str(tls[0]))
    yield running
    running.stop()


@pytest.fixture
def person(shape: RemoteShape) -> Browser:
    return Browser(shape.demo_user, shape.login_password)


def sdk_auth(front: Front, browser: Browser, metadata_url: str | None = None) -> OAuthClientProvider:
    callbacks = SdkCallbacks(browser)
    return OAuthClientProvider(
        server_url=front.url,
        client_metadata=OAuthClientMetadata(
            client_name="Test MCP host", redirect_uris=[REDIRECT_URI], token_endpoint_auth_method="none"
        ),
        storage=MemoryTokenStorage(),
        redirect_handler=callbacks.redirect,
        callback_handler=callbacks.callback,
        client_metadata_url=metadata_url,
    )


@contextlib.asynccontextmanager
async def connected(front: Front, auth: OAuthClientProvider, mode: str = "auto") -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(auth=auth, timeout=30) as http,
        Client(streamable_http_client(front.url, http_client=http), mode=mode) as client,
    ):
        yield client


def subject_of(auth: OAuthClientProvider) -> str:
    assert auth.context.current_tokens is not None
    claims = jwt.decode(auth.context.current_tokens.access_token, options={"verify_signature": False})
    return str(claims["sub"])


# ------------------------------------------------------------------------------------------------ metadata


def test_authorization_server_metadata_at_both_paths(shape: RemoteShape, events: Events, container: Any) -> None:
    issuer = shape.mcp_url.removesuffix("/mcp")
    for path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
        metadata = body_of(container.invoke(events.http(method="GET", path=path, token=None)))
        assert metadata["issuer"] == issuer
        assert (metadata["authorization_endpoint"], metadata["token_endpoint"], metadata["registration_endpoint"]) == (
            f"{issuer}/authorize",
            f"{issuer}/token",
            f"{issuer}/register",
        )
        assert metadata["code_challenge_methods_supported"] == ["S256"]
        assert metadata["client_id_metadata_document_supported"] is True
        assert "none" in metadata["token_endpoint_auth_methods_supported"]
        assert metadata["grant_types_supported"] == ["authorization_code", "refresh_token"]
        assert metadata["scopes_supported"] == [SCOPE]
    resource = body_of(container.invoke(events.http(method="GET", path="/.well-known/oauth-protected-resource/mcp")))
    assert resource["authorization_servers"] == [issuer]


# ------------------------------------------------------------------------------------------------ whole flows


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_cimd_client_connects_by_url_alone(
    front: Front, documents: DocumentServer, person: Browser, shape: RemoteShape, emulator: EmulatorServer, mode: str
) -> None:
    client_id = documents.client_document(f"/{mode}/client.json", "Test MCP host (CIMD)")
    auth = sdk_auth(front, person, client_id)
    async with connected(front, auth, mode) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"generate_image", "list_history", "start_generation_job"} <= names
        made = await succeeds(client, "generate_image", {"prompt": "a fox, by OAuth", "quality": "low"})
        assert (made.structured_content or {})["images"]
        listed = await succeeds(client, "list_history", {})
        assert (listed.structured_content or {})["total"] >= 1
    assert auth.context.client_info is not None and auth.context.client_info.client_id == client_id
    assert subject_of(auth) == shape.cognito.users[shape.demo_user].sub  # the Cognito sub is the user
    (page,) = person.consent_pages
    assert "Test MCP host (CIMD)" in page and client_id in page and "127.0.0.1:33418" in page
    assert documents.hits[f"/{mode}/client.json"] == 1  # fetched once (max-age=300): /authorize and /token share it


@pytest.mark.anyio
async def test_a_dcr_client_connects_by_url_alone(
    front: Front, person: Browser, shape: RemoteShape, emulator: EmulatorServer
) -> None:
    auth = sdk_auth(front, person)
    async with connected(front, auth) as client:
        made = await succeeds(client, "generate_image", {"prompt": "a heron, by DCR", "quality": "low"})
        assert (made.structured_content or {})["images"]
    info = auth.context.client_info
    assert info is not None and not info.client_id.startswith("https://")  # registered, not a document
    assert subject_of(auth) == shape.cognito.users[shape.demo_user].sub
    assert (
        "Test MCP host" in person.consent_pages[0] and f"registered client {info.client_id}" in person.consent_pages[0]
    )


@pytest.mark.anyio
async def test_oauth_users_are_isolated_like_key_users(
    front: Front, documents: DocumentServer, shape: RemoteShape, emulator: EmulatorServer
) -> None:
    shape.cognito.add_user("alice-oauth", "alice-password")
    shape.cognito.add_user("bob-oauth", "bob-password")
    client_id = documents.client_document("/isolation/client.json", "Isolation host")
    async with connected(front, sdk_auth(front, Browser("alice-oauth", "alice-password"), client_id)) as alice:
        made = await succeeds(alice, "generate_image", {"prompt": "alice's own", "quality": "low"})
        history_id = (made.structured_content or {})["history_id"]
    async with connected(front, sdk_auth(front, Browser("bob-oauth", "bob-password"), client_id)) as bob:
        assert "No history record" in await refused(bob, "get_history_by_uuid", {"uuid": history_id})
        assert ((await succeeds(bob, "list_history", {})).structured_content or {})["total"] == 0
        assert ((await succeeds(bob, "list_generated_images", {})).structured_content or {})["images"] == []


# ------------------------------------------------------------------------------------------------ refusals


@pytest.fixture
def registered(front: Front) -> str:
    return register_client(front)


def test_the_code_is_bound_to_the_pkce_verifier_and_used_once(front: Front, person: Browser, registered: str) -> None:
    verifier, challenge = pkce()
    back = code_for(front, person, registered, challenge)
    assert back["iss"] == front.issuer
    grant = {"grant_type": "authorization_code", "code": back["code"], "client_id": registered,
             "redirect_uri": REDIRECT_URI}  # fmt: skip
    wrong = token(front, **grant, code_verifier=pkce()[0])
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    assert wrong.json()["error_description"] == "incorrect code_verifier"
    elsewhere = token(front, **{**grant, "redirect_uri": "http://127.0.0.1:9/other"}, code_verifier=verifier)
    assert (elsewhere.status_code, elsewhere.json()["error"]) == (400, "invalid_request")
    foreign = token(front, **grant, code_verifier=verifier, resource="https://other.example/mcp")
    assert (foreign.status_code, foreign.json()["error"]) == (400, "invalid_target")
    good = token(front, **grant, code_verifier=verifier, resource=front.url)
    assert good.status_code == 200, good.text
    issued = good.json()
    assert issued["token_type"] == "Bearer" and issued["scope"] == SCOPE and issued["refresh_token"]
    again = token(front, **grant, code_verifier=verifier)
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")  # and more: test_oauth_revocation


def test_an_expired_code_is_refused_by_any_container(front: Front, person: Browser, registered: str) -> None:
    """Codes live 60 s; the exchange happens on another container, whose clock has moved on."""
    verifier, challenge = pkce()
    code = code_for(front, person, registered, challenge)["code"]
    clock = Clock(time.time() + 61)
    other = LambdaContainer(McpFunction(front.env, clock=clock))
    form = {"grant_type": "authorization_code", "code": code, "client_id": registered, "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier}  # fmt: skip
    headers = [("host", front.issuer.removeprefix("http://")), ("content-type", "application/x-www-form-urlencoded")]
    exchange = http_api_event("POST", "/token", headers, urlencode(form).encode())
    try:
        response = other.invoke(exchange)
        assert response["statusCode"] == 400
        assert body_of(response) == {"error": "invalid_grant", "error_description": "authorization code does not exist"}
        clock.now -= 61  # the same code, in time, on that other container: the flow's state is in DynamoDB
        assert other.invoke(exchange)["statusCode"] == 200
    finally:
        other.close()


@pytest.mark.parametrize(
    ("resource", "why"),
    [(None, "got no resource"), ("https://other.example/mcp", "got resource 'https://other.example/mcp'")],
)
def test_a_missing_or_foreign_resource_is_invalid_target(
    front: Front, person: Browser, registered: str, resource: str | None, why: str
) -> None:
    back = code_for(front, person, registered, pkce()[1], resource=resource)
    assert back["error"] == "invalid_target" and "code" not in back
    assert back["error_description"].endswith(why + ".")
    assert person.consent_pages == []  # refused before anyone is asked


def test_pkce_s256_is_required(front: Front, person: Browser, registered: str) -> None:
    missing = code_for(front, person, registered, "", code_challenge=None)
    assert missing["error"] == "invalid_request" and "code_challenge" in missing["error_description"]
    plain = code_for(front, person, registered, "x" * 43, code_challenge_method="plain")
    assert plain["error"] == "invalid_request" and "code_challenge_method" in plain["error_description"]


def test_a_redirect_uri_not_registered_is_refused_without_redirecting(front: Front, registered: str) -> None:
    url = authorize_url(front.issuer, registered, pkce()[1], redirect_uri="https://attacker.example/cb")
    answer = httpx2.get(url)
    assert answer.status_code == 400  # never sent to an unregistered URI
    assert answer.json()["error"] == "invalid_request"
    assert "https://attacker.example/cb" in answer.json()["error_description"]


def test_a_document_whose_client_id_differs_is_invalid_client(front: Front, documents: DocumentServer) -> None:
    url = documents.publish(
        "/liar/client.json", {"client_id": "https://someone-else.example/client.json", "redirect_uris": [REDIRECT_URI]}
    )
    answer = httpx2.get(authorize_url(front.issuer, url, pkce()[1]))
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "invalid_client",
        "error_description": f"client_id {url}: the document's client_id is 'https://someone-else.example/client.json'"
        "; it must equal the document's URL.",
    }


@pytest.mark.parametrize("address", ["10.0.0.7", "169.254.169.254", "192.168.1.1"])
def test_a_document_on_a_private_address_is_never_fetched(front: Front, address: str) -> None:
    url = f"https://{address}/client.json"
    answer = httpx2.get(authorize_url(front.issuer, url, pkce()[1]))
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_client"
    assert answer.json()["error_description"] == (
        f"client_id {url}: its host {address!r} resolves to {address}, a private, loopback or link-local address; "
        "client metadata documents are fetched from public addresses only."
    )


def test_loopback_documents_need_the_test_setting(shape: RemoteShape, documents: DocumentServer) -> None:
    url = documents.client_document("/default/client.json", "Loopback host")
    issuer = shape.mcp_url.removesuffix("/mcp")
    answer = httpx2.get(authorize_url(issuer, url, pkce()[1]))
    assert answer.status_code == 400 and "resolves to 127.0.0.1" in answer.json()["error_description"]
    assert documents.hits.get("/default/client.json") is None


def test_registration_refuses_redirects_outside_https_or_loopback(front: Front) -> None:
    answer = httpx2.post(f"{front.issuer}/register", json={"redirect_uris": ["http://evil.example/cb"]})
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "invalid_redirect_uri",
        "error_description": "redirect URI 'http://evil.example/cb' must use https, or http on a loopback address "
        "(127.0.0.1, [::1], localhost)",
    }


def test_registration_is_rate_limited_per_source(shape: RemoteShape) -> None:
    limited = start_front(shape, OAUTH_REGISTRATIONS_PER_HOUR="2")
    host = limited.issuer.removeprefix("http://")
    body = json.dumps({"redirect_uris": [REDIRECT_URI]}).encode()

    def register(source: str) -> dict[str, Any]:
        headers = [("host", host), ("content-type", "application/json")]
        return limited.front.container.invoke(http_api_event("POST", "/register", headers, body, source_ip=source))

    try:
        answers = [register("203.0.113.9") for _ in range(3)]
        elsewhere = register("198.51.100.4")
    finally:
        limited.stop()
    assert [answer["statusCode"] for answer in answers] == [201, 201, 429]
    refusal = body_of(answers[2])
    assert refusal["error"] == "temporarily_unavailable"
    assert answers[2]["headers"]["retry-after"] == "3600"
    assert refusal["error_description"] == (
        "Too many client registrations from 203.0.113.9: at most 2 an hour. Reuse your registration, or try again "
        "later."
    )
    assert elsewhere["statusCode"] == 201


def test_declining_consent_answers_access_denied(front: Front, shape: RemoteShape, registered: str) -> None:
    person = Browser(shape.demo_user, shape.login_password, decision="deny")
    back = code_for(front, person, registered, pkce()[1], state="s-123")
    assert (back["error"], back["state"], back["iss"]) == ("access_denied", "s-123", front.issuer)


def test_consent_needs_the_pages_own_cookie(front: Front, person: Browser, registered: str) -> None:
    """Another site cannot post the consent form for the person: the double-submit cookie is missing."""
    started = person.http.get(authorize_url(front.issuer, registered, pkce()[1]))
    page = person.http.get(started.headers["location"])
    assert (
        page.headers["x-frame-options"] == "DENY"
        and "frame-ancestors 'none'" in page.headers["content-security-policy"]
    )
    request_id = query_of(started.headers["location"])["request"]
    forged = httpx2.post(f"{front.issuer}/consent", data={"request": request_id, "csrf": "guess", "decision": "allow"})
    assert forged.status_code == 403 and "did not come from the consent page" in forged.text


def test_every_route_of_the_template_is_served(container: Any, events: Events) -> None:
    """The API routes only what template.yaml declares, and the function answers each (none falls through to 404)."""
    from local_sandbox.standins.aws_resources import TEMPLATE_PATH, load_template

    declared = load_template(TEMPLATE_PATH)["Resources"]["McpFunction"]["Properties"]["Events"].values()
    routes = sorted((event["Properties"]["Method"], event["Properties"]["Path"]) for event in declared)
    assert len(routes) == 13
    for method, path in routes:
        event = events.http(method=method, path=path, raw=b"" if method == "GET" else b"{}")
        assert container.invoke(event)["statusCode"] != 404, (method, path)
