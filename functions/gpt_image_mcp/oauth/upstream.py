"""The façade's leg to Cognito: its hosted login (authorization code + PKCE, the façade's own confidential app client
and callback), the code exchange at Cognito's token endpoint, the ID token's `sub` and `cognito:username` (RS256,
checked against the user pool's key set: issuer, audience = the façade's client, `token_use` = id), and, at every
refresh, whether that user is still present and enabled in the pool (AdminGetUser)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt

from gpt_image_mcp.aws.auth import verified_claims

TIMEOUT_SECONDS = 10.0


class UpstreamError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class SignedIn:
    """Who signed in at Cognito: `subject` names them to this server, `username` to the user pool's admin API."""

    subject: str
    username: str


@dataclass(frozen=True, slots=True)
class CognitoUsers:
    """The user pool's view of a person who signed in earlier (AdminGetUser; IAM `cognito-idp:AdminGetUser`)."""

    idp: Any  # a boto3 cognito-idp client
    pool_id: str

    @classmethod
    def of_issuer(cls, idp: Any, issuer: str) -> CognitoUsers:
        """The pool of `issuer`, https://cognito-idp.<region>.amazonaws.com/<pool id>."""
        return cls(idp, issuer.rstrip("/").rsplit("/", 1)[-1])

    def refusal(self, username: str) -> str:
        """Blocking (network): why `username` may no longer use this server ("" when present and enabled)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            user = self.idp.admin_get_user(UserPoolId=self.pool_id, Username=username)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "UserNotFoundException":
                return f"The user {username!r} no longer exists in the user pool; this sign-in is revoked."
            raise UpstreamError(f"Cognito could not be asked about user {username!r} ({code}).") from None
        except BotoCoreError as error:
            raise UpstreamError(f"Cognito could not be reached ({type(error).__name__}).") from None
        if not user.get("Enabled", True):
            return f"The user {username!r} is disabled in the user pool; this sign-in is revoked."
        return ""


@dataclass(frozen=True, slots=True)
class CognitoLogin:
    domain: str  # the hosted login, https://<prefix>.auth.<region>.amazoncognito.com
    issuer: str  # https://cognito-idp.<region>.amazonaws.com/<pool id>
    client_id: str
    client_secret: str = field(repr=False)

    def authorize_url(self, *, redirect_uri: str, state: str, code_challenge: str) -> str:
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "scope": "openid",
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
        return f"{self.domain.rstrip('/')}/oauth2/authorize?{urlencode(query)}"

    def signed_in(self, *, code: str, redirect_uri: str, code_verifier: str) -> SignedIn:
        """Blocking (network): the person who signed in."""
        form = urlencode(
            {
                "grant_type": "authorization_code",
                "client_id": self.client_id,
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
            }
        ).encode()
        basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        request = urllib.request.Request(
            f"{self.domain.rstrip('/')}/oauth2/token",
            data=form,
            headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                answer: dict[str, Any] = json.loads(response.read(64 * 1024))
        except urllib.error.HTTPError as error:
            raise UpstreamError(f"Cognito refused the sign-in code (HTTP {error.code}).") from None
        except (OSError, ValueError) as error:
            raise UpstreamError(f"Cognito's token endpoint could not be reached ({type(error).__name__}).") from None
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            raise UpstreamError("Cognito's answer carries no ID token.")
        try:
            claims = verified_claims(
                id_token, self.issuer, require=["exp", "iss", "aud", "sub"], audience=self.client_id
            )
        except jwt.PyJWTError as error:
            raise UpstreamError(f"Cognito's ID token did not verify ({type(error).__name__}).") from None
        subject, username = claims.get("sub"), claims.get("cognito:username")
        named = isinstance(subject, str) and subject and isinstance(username, str) and username
        if claims.get("token_use") != "id" or not named:
            raise UpstreamError("Cognito's ID token names no user.")
        return SignedIn(str(subject), str(username))
