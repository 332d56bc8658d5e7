"""A STAND-IN for Cognito's hosted login on loopback, so the OAuth façade's whole flow runs offline. Not Cognito.

It speaks the parts of Cognito's wire protocol the façade uses, nothing more:

* `GET /oauth2/authorize` (response_type=code, a known client, one of its callback URLs exactly, PKCE S256): a login
  form, marked as a stand-in on the page;
* `POST /login`: a test user's name and password -> a redirect to the callback with a single-use code (and `state`);
  a user disabled or deleted in the pool cannot sign in;
* `POST /oauth2/token` (authorization_code; the client's secret by HTTP Basic; the PKCE verifier): an ID token and an
  access token, RS256-signed, with the user's `sub`, Cognito's claims (`token_use`, `client_id`, `aud`,
  `cognito:username`, ...);
* `GET /<pool id>/.well-known/jwks.json`: the key set. The issuer is `http://<host>:<port>/<pool id>`.

The users themselves live in a user pool of moto's cognito-idp (made at start, through the boto3 client given), so
that the façade's admin calls (AdminGetUser at every refresh) and a test's AdminDisableUser or AdminDeleteUser go
over moto's real wire protocol; the stand-in keeps only the passwords. It shares no code with the server, so a flow
that passes against it exercises the façade's own client code.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Self
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from local_sandbox.standins.http_server import StandInHTTPServer
from local_sandbox.standins.lifetime import StartStop

POOL_NAME = "gpt-image-mcp-standin"
CODE_SECONDS = 300
TOKEN_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class AppClient:
    client_id: str
    secret: str = field(repr=False)
    callback_urls: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class User:
    username: str
    password: str = field(repr=False)
    sub: str


class CognitoStandIn(StartStop, StandInHTTPServer):
    """Hosted login + token endpoint + key set on loopback; `start()`/`stop()` or a `with` block."""

    def __init__(self, idp: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        """`idp`: a boto3 cognito-idp client (moto's); the stand-in's user pool is made there."""
        super().__init__((host, port), _Handler)
        self.idp = idp
        self.pool_id: str = idp.create_user_pool(PoolName=POOL_NAME)["UserPool"]["Id"]
        self.base_url = f"http://{host}:{self.server_address[1]}"
        self.issuer = f"{self.base_url}/{self.pool_id}"
        self.clients: dict[str, AppClient] = {}
        self.users: dict[str, User] = {}
        self.kid = secrets.token_hex(8)
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._codes: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add_client(self, callback_urls: list[str]) -> AppClient:
        client = AppClient(secrets.token_hex(13), secrets.token_urlsafe(32), tuple(callback_urls))
        self.clients[client.client_id] = client
        return client

    def add_user(self, username: str, password: str) -> User:
        made = self.idp.admin_create_user(UserPoolId=self.pool_id, Username=username, MessageAction="SUPPRESS")
        attributes = {item["Name"]: item["Value"] for item in made["User"]["Attributes"]}
        user = User(username, password, attributes["sub"])
        self.users[username] = user
        return user

    def refusal(self, user: User) -> str:
        """Why the pool refuses `user` now ("" when present and enabled), as Cognito checks at every sign-in."""
        try:
            enabled = self.idp.admin_get_user(UserPoolId=self.pool_id, Username=user.username)["Enabled"]
        except self.idp.exceptions.UserNotFoundException:
            return "Incorrect username or password."
        return "" if enabled else "User is disabled."

    def jwks(self) -> dict[str, Any]:
        public = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        return {"keys": [{**public, "kid": self.kid, "alg": "RS256", "use": "sig"}]}

    def issue_code(self, client_id: str, user: User, redirect_uri: str, challenge: str) -> str:
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = {
                "client_id": client_id,
                "sub": user.sub,
                "username": user.username,
                "redirect_uri": redirect_uri,
                "challenge": challenge,
                "expires": time.time() + CODE_SECONDS,
            }
        return code

    def redeem(self, code: str) -> dict[str, Any] | None:
        with self._lock:
            grant = self._codes.pop(code, None)
        return grant if grant is not None and grant["expires"] > time.time() else None

    def tokens(self, grant: dict[str, Any]) -> dict[str, Any]:
        now = int(time.time())
        common = {"sub": grant["sub"], "iss": self.issuer, "iat": now, "auth_time": now, "exp": now + TOKEN_SECONDS}
        id_claims = {**common, "aud": grant["client_id"], "token_use": "id", "cognito:username": grant["username"]}
        access_claims = {**common, "client_id": grant["client_id"], "token_use": "access", "scope": "openid",
                         "username": grant["username"], "jti": secrets.token_hex(8)}  # fmt: skip
        headers = {"kid": self.kid}
        return {
            "id_token": jwt.encode(id_claims, self._key, algorithm="RS256", headers=headers),
            "access_token": jwt.encode(access_claims, self._key, algorithm="RS256", headers=headers),
            "token_type": "Bearer",
            "expires_in": TOKEN_SECONDS,
        }

    def start(self) -> Self:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


_BANNER = (
    '<p style="background:#fe0;padding:.5em"><strong>Cognito hosted login STAND-IN</strong> (gpt-image-mcp, local '
    "testing only). This is not Amazon Cognito.</p>"
)


class _Handler(BaseHTTPRequestHandler):
    server: CognitoStandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == f"/{self.server.pool_id}/.well-known/jwks.json":
            self._json(200, self.server.jwks())
        elif url.path == "/oauth2/authorize":
            self._authorize({k: v[0] for k, v in parse_qs(url.query).items()})
        else:
            self._json(404, {"error": "not_found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        path = urlsplit(self.path).path
        if path == "/login":
            self._login(form)
        elif path == "/oauth2/token":
            self._token(form)
        else:
            self._json(404, {"error": "not_found"})

    def _request_problem(self, params: dict[str, str]) -> str | None:
        client = self.server.clients.get(params.get("client_id", ""))
        if client is None:
            return "unknown client_id"
        if params.get("redirect_uri") not in client.callback_urls:
            return "redirect_mismatch"
        if params.get("response_type") != "code" or params.get("code_challenge_method") != "S256":
            return "this stand-in serves response_type=code with PKCE S256 only"
        return None

    def _authorize(self, params: dict[str, str]) -> None:
        problem = self._request_problem(params)
        if problem:
            self._page(400, f"<p>Sign-in error: {html.escape(problem)}</p>")
            return
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in params.items()
        )
        self._page(
            200,
            '<form method="post" action="/login">'
            f'{hidden}<label>Username <input name="username"></label> '
            '<label>Password <input name="password" type="password"></label> <button type="submit">Sign in</button>'
            "</form>",
        )

    def _login(self, form: dict[str, str]) -> None:
        problem = self._request_problem(form)
        user = self.server.users.get(form.get("username", ""))
        if problem or user is None or not secrets.compare_digest(user.password, form.get("password", "")):
            self._page(400 if problem else 401, f"<p>{html.escape(problem or 'Incorrect username or password.')}</p>")
            return
        refusal = self.server.refusal(user)
        if refusal:
            self._page(401, f"<p>{html.escape(refusal)}</p>")
            return
        code = self.server.issue_code(form["client_id"], user, form["redirect_uri"], form["code_challenge"])
        query = {"code": code, **({"state": form["state"]} if "state" in form else {})}
        self.send_response(302)
        self.send_header("location", f"{form['redirect_uri']}?{urlencode(query)}")
        self.send_header("content-length", "0")
        self.end_headers()

    def _token(self, form: dict[str, str]) -> None:
        scheme, _, encoded = self.headers.get("authorization", "").partition(" ")
        basic = base64.b64decode(encoded).decode() if scheme == "Basic" else ":"
        client_id, _, secret = basic.partition(":")
        client = self.server.clients.get(client_id)
        if client is None or not secrets.compare_digest(client.secret, secret):
            self._json(400, {"error": "invalid_client"})
            return
        grant = self.server.redeem(form.get("code", "")) if form.get("grant_type") == "authorization_code" else None
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        if (
            grant is None
            or grant["client_id"] != client_id
            or grant["redirect_uri"] != form.get("redirect_uri")
            or grant["challenge"] != challenge
        ):
            self._json(400, {"error": "invalid_grant"})
            return
        self._json(200, self.server.tokens(grant))

    def _page(self, status: int, body: str) -> None:
        data = f"<!doctype html><title>Sign in (stand-in)</title>{_BANNER}{body}".encode()
        self._send(status, "text/html; charset=utf-8", data)

    def _json(self, status: int, body: dict[str, Any]) -> None:
        self._send(status, "application/json", json.dumps(body).encode())

    def _send(self, status: int, content_type: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.send_header("cache-control", "no-store")
        self.end_headers()
        self.wfile.write(data)
