"""What the OAuth façade revokes, and how fast: a reused authorization code or refresh token revokes everything
issued from that sign-in (the grant), and a refresh asks Cognito (moto's cognito-idp, over HTTP) whether the user is
still present and enabled. Refresh tokens stop at once; access tokens within the 5 s the API keys have, shown on a
second container whose clock the test moves."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
from clock import Clock
from oauth_support import REDIRECT_URI, Browser, Front, code_for, pkce, register_client, start_front, token
from remote_support import Events, body_of

from gpt_image_mcp.aws import clients
from gpt_image_mcp.aws.api_keys import REVOCATION_BOUND_SECONDS
from gpt_image_mcp.entry.lambda_mcp import McpFunction
from gpt_image_mcp.oauth.grants import Grants
from gpt_image_mcp.oauth.provider import CODE_REUSED, GRANT_REVOKED, REFRESH_REUSED
from gpt_image_mcp.oauth.store import OAuthStore
from local_sandbox.standins.api_gateway import LambdaContainer, http_api_event
from local_sandbox.standins.remote_shape import RemoteShape


@pytest.fixture(scope="module")
def front(shape: RemoteShape) -> Iterator[Front]:
    running = start_front(shape)
    yield running
    running.stop()


@pytest.fixture
def client_id(front: Front) -> str:
    return register_client(front)


@pytest.fixture
def clock() -> Clock:
    return Clock(time.time())


@pytest.fixture
def other(front: Front, clock: Clock) -> Iterator[LambdaContainer]:
    """Another container of the same deployment, whose clock the test moves."""
    running = LambdaContainer(McpFunction(front.env, clock=clock))
    yield running
    running.close()


def signed_in(front: Front, person: Browser, client_id: str) -> tuple[dict[str, str], dict[str, Any]]:
    """A code exchanged once: the exchange's form (to present the code again) and the tokens it gave."""
    verifier, challenge = pkce()
    code = code_for(front, person, client_id, challenge)["code"]
    form = {"grant_type": "authorization_code", "code": code, "client_id": client_id, "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier}  # fmt: skip
    issued = token(front, **form)
    assert issued.status_code == 200, issued.text
    return form, issued.json()


def form_headers(front: Front) -> list[tuple[str, str]]:
    return [("host", front.issuer.removeprefix("http://")), ("content-type", "application/x-www-form-urlencoded")]


def refresh(front: Front, client_id: str, refresh_token: str) -> Any:
    return token(front, grant_type="refresh_token", refresh_token=refresh_token, client_id=client_id)


def refused(answer: Any, description: str) -> None:
    assert answer.status_code == 400, answer.text
    assert answer.json() == {"error": "invalid_grant", "error_description": description}


def tools_list_status(container: LambdaContainer, front: Front, access_token: str) -> int:
    event = Events(front.issuer.removeprefix("http://"), access_token).legacy("tools/list")
    return int(container.invoke(event)["statusCode"])


def stops_within_the_bound(other: LambdaContainer, clock: Clock, front: Front, access_token: str) -> None:
    """`other` read the grant as active just before it was revoked: it trusts that answer for just under the bound,
    then asks again and refuses; a container that had not read it refuses at once."""
    revoked_at = clock.now
    clock.now = revoked_at + REVOCATION_BOUND_SECONDS - 0.001
    assert tools_list_status(other, front, access_token) == 200
    clock.now = revoked_at + REVOCATION_BOUND_SECONDS
    assert tools_list_status(other, front, access_token) == 401
    assert tools_list_status(front.front.container, front, access_token) == 401


@pytest.fixture
def person(shape: RemoteShape) -> Browser:
    return Browser(shape.demo_user, shape.login_password)


def test_a_reused_code_revokes_every_token_issued_from_it(
    front: Front, person: Browser, client_id: str, other: LambdaContainer, clock: Clock
) -> None:
    form, issued = signed_in(front, person, client_id)
    assert tools_list_status(other, front, issued["access_token"]) == 200
    refused(token(front, **form), CODE_REUSED)
    refused(token(front, **form), CODE_REUSED)  # and again: still refused, still revoked
    refused(refresh(front, client_id, issued["refresh_token"]), GRANT_REVOKED)
    stops_within_the_bound(other, clock, front, issued["access_token"])


def test_a_code_presented_after_its_60_s_still_revokes_its_grant(
    front: Front, person: Browser, client_id: str, other: LambdaContainer, clock: Clock
) -> None:
    """A redeemed code is remembered for a day (an unredeemed one is gone after its 60 s: test_oauth), so presenting
    it again on a container whose clock has moved on still revokes what it gave."""
    form, issued = signed_in(front, person, client_id)
    clock.now += 61
    answer = other.invoke(http_api_event("POST", "/token", form_headers(front), urlencode(form).encode()))
    assert answer["statusCode"] == 400
    assert body_of(answer) == {"error": "invalid_grant", "error_description": CODE_REUSED}
    refused(refresh(front, client_id, issued["refresh_token"]), GRANT_REVOKED)


def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_family(
    front: Front, person: Browser, client_id: str, other: LambdaContainer, clock: Clock
) -> None:
    _, first = signed_in(front, person, client_id)
    second = refresh(front, client_id, first["refresh_token"])
    assert second.status_code == 200, second.text
    second_tokens = second.json()
    assert second_tokens["refresh_token"] != first["refresh_token"]
    claims = jwt.decode(second_tokens["access_token"], options={"verify_signature": False})
    assert (claims["aud"], claims["iss"], claims["client_id"]) == (front.url, front.issuer, client_id)
    third = refresh(front, client_id, second_tokens["refresh_token"])
    assert third.status_code == 200, third.text
    newest = third.json()
    assert tools_list_status(other, front, newest["access_token"]) == 200
    refused(refresh(front, client_id, first["refresh_token"]), REFRESH_REUSED)  # spent two rotations ago
    refused(refresh(front, client_id, newest["refresh_token"]), GRANT_REVOKED)  # the whole family
    stops_within_the_bound(other, clock, front, newest["access_token"])


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ("admin_disable_user", "The user {!r} is disabled in the user pool; this sign-in is revoked."),
        ("admin_delete_user", "The user {!r} no longer exists in the user pool; this sign-in is revoked."),
    ],
)
def test_a_disabled_or_deleted_cognito_user_cannot_refresh(
    front: Front, shape: RemoteShape, client_id: str, other: LambdaContainer, clock: Clock, change: str, why: str
) -> None:
    username = f"leaver-{change}"
    shape.cognito.add_user(username, "leaver-password")
    person = Browser(username, "leaver-password")
    _, issued = signed_in(front, person, client_id)
    renewed = refresh(front, client_id, issued["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    tokens = renewed.json()
    assert tools_list_status(other, front, tokens["access_token"]) == 200

    idp = clients.client("cognito-idp")
    getattr(idp, change)(UserPoolId=shape.cognito.pool_id, Username=username)
    refused(refresh(front, client_id, tokens["refresh_token"]), why.format(username))
    stops_within_the_bound(other, clock, front, tokens["access_token"])
    if change == "admin_disable_user":  # enabled again, the revoked sign-in stays revoked; a new one works
        idp.admin_enable_user(UserPoolId=shape.cognito.pool_id, Username=username)
        refused(refresh(front, client_id, tokens["refresh_token"]), GRANT_REVOKED)
        assert signed_in(front, person, client_id)[1]["access_token"]


def test_a_refresh_cognito_cannot_answer_for_keeps_the_refresh_token(
    front: Front, shape: RemoteShape, person: Browser, client_id: str
) -> None:
    """A container pointed at a user pool Cognito (moto) does not know cannot check the user: 503, nothing spent."""
    _, issued = signed_in(front, person, client_id)
    unknown_pool = f"{shape.cognito.base_url}/us-east-1_NOPOOL"
    lost = LambdaContainer(McpFunction({**front.env, "COGNITO_ISSUER": unknown_pool}))
    form = {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"], "client_id": client_id}
    try:
        answer = lost.invoke(http_api_event("POST", "/token", form_headers(front), urlencode(form).encode()))
    finally:
        lost.close()
    assert answer["statusCode"] == 503
    assert body_of(answer) == {
        "error": "temporarily_unavailable",
        "error_description": f"Cognito could not be asked about user {shape.demo_user!r} (ResourceNotFoundException). "
        "The refresh token still holds; try again later.",
    }
    assert refresh(front, client_id, issued["refresh_token"]).status_code == 200


def test_the_cognito_stand_in_refuses_a_disabled_user_at_sign_in(
    front: Front, shape: RemoteShape, client_id: str
) -> None:
    shape.cognito.add_user("disabled-at-login", "its-password")
    clients.client("cognito-idp").admin_disable_user(UserPoolId=shape.cognito.pool_id, Username="disabled-at-login")
    with pytest.raises(AssertionError, match="User is disabled"):
        signed_in(front, Browser("disabled-at-login", "its-password"), client_id)


def test_a_grant_revoked_before_it_opens_never_opens(shape: RemoteShape, clock: Clock) -> None:
    """Two redemptions of one code at once: the loser revokes the grant, maybe before the winner opens it."""
    assert shape.names is not None
    grants = Grants(OAuthStore(clients.dynamodb_client(), shape.names.oauth_table, clock), clock)
    grants.revoke("raced-grant")
    assert not grants.open("raced-grant", {"client_id": "c", "subject": "s", "username": "u"})
    assert (grants.is_active("raced-grant"), grants.renew("raced-grant")) == (False, None)
    assert grants.open("another-grant", {"client_id": "c", "subject": "s", "username": "u"})
    assert grants.is_active("another-grant") and grants.renew("another-grant") is not None
