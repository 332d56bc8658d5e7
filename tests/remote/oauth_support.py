"""What the OAuth tests need besides the remote shape: a person's browser (consent page, the Cognito stand-in's login
form), a token store for the SDK's OAuth client, an HTTPS server on loopback for client metadata documents (with its
own throwaway CA), and a second API Gateway front whose MCP function fetches such documents from loopback."""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import json
import re
import secrets
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from mcp.client.auth import AuthorizationCodeResult
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

from gpt_image_mcp.entry.lambda_mcp import McpFunction
from local_sandbox.standins.api_gateway import ApiGatewayFront, LambdaContainer
from local_sandbox.standins.remote_shape import RemoteShape

REDIRECT_URI = "http://127.0.0.1:33418/callback"  # a desktop client's loopback listener (never contacted)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


@dataclass
class Browser:
    """A person at a browser: answers our consent page, then signs in at the Cognito stand-in."""

    username: str
    password: str
    decision: str = "allow"
    consent_pages: list[str] = field(default_factory=list)
    http: httpx2.Client = field(default_factory=lambda: httpx2.Client(follow_redirects=False, timeout=30))

    def sign_in(self, authorization_url: str) -> str:
        """Follow the flow from the client's authorization URL to the redirect back to the client; its URL."""
        response = self.http.get(authorization_url)
        if response.status_code != 302 or "/consent?" not in response.headers["location"]:
            return str(response.headers.get("location") or response.text)
        consent_url = response.headers["location"]
        page = self.http.get(consent_url)
        assert page.status_code == 200, page.text
        self.consent_pages.append(page.text)
        fields = dict(re.findall(r'name="(request|csrf)" value="([^"]*)"', page.text))
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(consent_url))
        answer = self.http.post(f"{origin}/consent", data={**fields, "decision": self.decision})
        location = answer.headers.get("location", "")
        if self.decision != "allow":
            return str(location)
        assert answer.status_code == 303, answer.text
        login = self.http.get(location)
        assert login.status_code == 200 and "STAND-IN" in login.text, login.text
        hidden = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', login.text))
        login_origin = "{0.scheme}://{0.netloc}".format(urlsplit(location))
        signed_in = self.http.post(
            f"{login_origin}/login", data={**hidden, "username": self.username, "password": self.password}
        )
        assert signed_in.status_code == 302, signed_in.text
        back = self.http.get(signed_in.headers["location"])  # our /oauth/callback
        assert back.status_code == 302, back.text
        return str(back.headers["location"])


class SdkCallbacks:
    """The SDK OAuth client's redirect and callback handlers, played by `browser`."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.final_url = ""

    async def redirect(self, authorization_url: str) -> None:
        import anyio.to_thread

        self.final_url = await anyio.to_thread.run_sync(self.browser.sign_in, authorization_url)

    async def callback(self) -> AuthorizationCodeResult:
        params = query_of(self.final_url)
        return AuthorizationCodeResult(code=params.get("code", ""), state=params.get("state"), iss=params.get("iss"))


class MemoryTokenStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key (the certificate is its own CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gpt-image-mcp test documents")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class DocumentServer(ThreadingHTTPServer):
    """HTTPS on loopback serving client metadata documents by path; counts requests per path."""

    daemon_threads = True

    def __init__(self, cert: Path, key: Path) -> None:
        super().__init__(("127.0.0.1", 0), _DocumentHandler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.base_url = f"https://127.0.0.1:{self.server_address[1]}"
        self.documents: dict[str, tuple[dict[str, Any], dict[str, str]]] = {}
        self.hits: dict[str, int] = {}
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def publish(self, path: str, document: dict[str, Any], headers: dict[str, str] | None = None) -> str:
        self.documents[path] = (document, headers or {"Cache-Control": "max-age=300"})
        return f"{self.base_url}{path}"

    def client_document(self, path: str, name: str, **overrides: Any) -> str:
        """Publish a typical MCP client's document at `path`; its URL (the client id)."""
        url = f"{self.base_url}{path}"
        document = {
            "client_id": url,
            "client_name": name,
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            **overrides,
        }
        return self.publish(path, document)

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _DocumentHandler(BaseHTTPRequestHandler):
    server: DocumentServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.hits[self.path] = self.server.hits.get(self.path, 0) + 1
        found = self.server.documents.get(self.path)
        body = json.dumps(found[0]).encode() if found else b"{}"
        self.send_response(200 if found else 404)
        self.send_header("content-type", "application/json")
        for name, value in (found[1] if found else {}).items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@dataclass
class Front:
    """A second API Gateway front with its own MCP function (another deployment's URL), sharing the shape's AWS."""

    url: str
    issuer: str
    env: dict[str, str]
    front: ApiGatewayFront

    def stop(self) -> None:
        self.front.stop()
        self.front.container.close()


def start_front(shape: RemoteShape, **extra_env: str) -> Front:
    front = ApiGatewayFront(("127.0.0.1", 0))
    env = {**shape.lambda_env(front.port), **extra_env}
    front.container = LambdaContainer(McpFunction(env))
    front.start()
    issuer = f"http://127.0.0.1:{front.port}"
    return Front(f"{issuer}/mcp", issuer, env, front)


def authorize_url(issuer: str, client_id: str, challenge: str, **overrides: str | None) -> str:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": secrets.token_urlsafe(8),
        "resource": f"{issuer}/mcp",
        **overrides,
    }
    return f"{issuer}/authorize?{urlencode({k: v for k, v in params.items() if v is not None})}"


def register_client(front: Front) -> str:
    """A DCR public client of `front`; its client id."""
    answer = httpx2.post(
        f"{front.issuer}/register",
        json={"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none", "client_name": "Raw client"},
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["client_id"])


def code_for(front: Front, person: Browser, client_id: str, challenge: str, **overrides: str | None) -> dict[str, str]:
    """The query of the final redirect back to the client (a code, or an error)."""
    return query_of(person.sign_in(authorize_url(front.issuer, client_id, challenge, **overrides)))


def token(front: Front, **form: str) -> httpx2.Response:
    return httpx2.post(f"{front.issuer}/token", data=form)
