"""Client ID Metadata Documents (CIMD): a `client_id` that is an https URL names a JSON document the client hosts.

The document is fetched safely, because its URL comes from whoever calls `/authorize`:

* https only, to a public address: the host is resolved first and every address must be global (no private,
  loopback, link-local, shared or reserved range), then the connection goes to that very address (no second lookup a
  DNS rebinding could change), with the certificate checked for the host. `allow_loopback` lets tests serve a
  document on 127.0.0.1; nothing else sets it.
* at most `max_bytes` and `timeout_seconds` in all; no redirects (the document's URL is the client's identity).
* validated: `client_id` equal to the URL, `redirect_uris` each allowed (`oauth.redirects`), a public client
  (`token_endpoint_auth_method` none, no secret).
* cached per container for as long as its `Cache-Control: max-age` (or `Expires`) says, within bounds.
"""

from __future__ import annotations

import email.utils
import http.client
import ipaddress
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mcp.shared.auth import DEFAULT_GRANT_TYPES, OAuthClientInformationFull

from gpt_image_mcp.oauth.redirects import redirect_uris_problem

MAX_DOCUMENT_BYTES = 5 * 1024  # the CIMD draft's recommended limit
FETCH_TIMEOUT_SECONDS = 5.0
DEFAULT_CACHE_SECONDS = 300.0  # when the document says nothing
MAX_CACHE_SECONDS = 86_400.0
_MAX_ENTRIES = 512
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)

Resolver = Callable[[str, int], list[str]]


class ClientMetadataError(Exception):
    """The document cannot identify a client; `message` says why, for the person or client that sent it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def system_resolver(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def is_metadata_url(client_id: str) -> bool:
    """A URL-shaped client id names a metadata document; anything else is a registered client."""
    return client_id.startswith("https://")


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    allow_loopback: bool = False  # tests only
    ca_file: str = ""  # tests only: trust this CA instead of the system's
    max_bytes: int = MAX_DOCUMENT_BYTES
    timeout_seconds: float = FETCH_TIMEOUT_SECONDS


class ClientMetadataResolver:
    """CIMD URL -> the client it describes, fetched at most once per cache lifetime per container."""

    def __init__(
        self,
        scope: str,
        policy: FetchPolicy | None = None,
        *,
        clock: Callable[[], float] = time.time,
        resolver: Resolver = system_resolver,
    ) -> None:
        self._scope = scope
        self._policy = policy or FetchPolicy()
        self._clock = clock
        self._resolver = resolver
        self._cache: dict[str, tuple[OAuthClientInformationFull, float]] = {}
        self._lock = threading.Lock()

    def resolve(self, url: str) -> OAuthClientInformationFull:
        """Blocking (network): run in a worker thread. Raises `ClientMetadataError` naming the problem."""
        now = self._clock()
        with self._lock:
            cached = self._cache.get(url)
        if cached is not None and now < cached[1]:
            return cached[0]
        body, headers = self._fetch(url)
        client = self._client(url, body)
        ttl = cache_seconds(headers)
        if ttl > 0:
            with self._lock:
                if len(self._cache) >= _MAX_ENTRIES:
                    self._cache.clear()
                self._cache[url] = (client, now + ttl)
        return client

    def _address(self, url: str, host: str, port: int) -> str:
        try:
            addresses = self._resolver(host, port)
        except OSError:
            raise ClientMetadataError(f"client_id {url}: its host {host!r} does not resolve.") from None
        if not addresses:
            raise ClientMetadataError(f"client_id {url}: its host {host!r} does not resolve.")
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%")[0])
            if not (ip.is_global or (self._policy.allow_loopback and ip.is_loopback)):
                raise ClientMetadataError(
                    f"client_id {url}: its host {host!r} resolves to {ip}, a private, loopback or link-local "
                    "address; client metadata documents are fetched from public addresses only."
                )
        return addresses[0]

    def _fetch(self, url: str) -> tuple[bytes, Mapping[str, str]]:
        parts = urlsplit(url)
        if (
            parts.scheme != "https"
            or not parts.hostname
            or parts.username is not None
            or parts.fragment
            or parts.path in ("", "/")
            or "/./" in f"{parts.path}/"
            or "/../" in f"{parts.path}/"
        ):
            raise ClientMetadataError(
                f"client_id {url!r} is not a client metadata document URL: use https, a path, and no fragment, "
                "credentials or dot segments."
            )
        port = parts.port or 443
        address = self._address(url, parts.hostname, port)
        context = ssl.create_default_context(cafile=self._policy.ca_file or None)
        deadline = time.monotonic() + self._policy.timeout_seconds
        connection = _PinnedHttps(parts.hostname, port, address, context, self._policy.timeout_seconds)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request("GET", target, headers={"Accept": "application/json", "User-Agent": "gpt-image-mcp"})
            response = connection.getresponse()
            if response.status != 200:
                raise ClientMetadataError(
                    f"client_id {url}: fetching it answered HTTP {response.status}; expected 200 with the JSON "
                    "document (redirects are not followed)."
                )
            body = b""
            while len(body) <= self._policy.max_bytes:
                if time.monotonic() > deadline:
                    raise TimeoutError
                chunk = response.read1(self._policy.max_bytes + 1 - len(body))
                if not chunk:
                    break
                body += chunk
            if len(body) > self._policy.max_bytes:
                raise ClientMetadataError(
                    f"client_id {url}: the document is larger than {self._policy.max_bytes:,} bytes."
                )
            return body, {name.lower(): value for name, value in response.getheaders()}
        except TimeoutError:
            raise ClientMetadataError(
                f"client_id {url}: the document did not arrive within {self._policy.timeout_seconds:g} s."
            ) from None
        except (OSError, http.client.HTTPException) as error:
            raise ClientMetadataError(f"client_id {url}: it could not be fetched ({type(error).__name__}).") from None
        finally:
            connection.close()

    def _client(self, url: str, body: bytes) -> OAuthClientInformationFull:
        try:
            document = json.loads(body)
        except ValueError:
            raise ClientMetadataError(f"client_id {url}: the document is not JSON.") from None
        if not isinstance(document, dict):
            raise ClientMetadataError(f"client_id {url}: the document is not a JSON object.")
        if document.get("client_id") != url:
            raise ClientMetadataError(
                f"client_id {url}: the document's client_id is {document.get('client_id')!r}; it must equal the "
                "document's URL."
            )
        uris = document.get("redirect_uris")
        if not isinstance(uris, list) or not all(isinstance(uri, str) for uri in uris):
            raise ClientMetadataError(f"client_id {url}: redirect_uris must be a list of URLs.")
        problem = redirect_uris_problem(uris)
        if problem:
            raise ClientMetadataError(f"client_id {url}: {problem}.")
        method = document.get("token_endpoint_auth_method", "none")
        if method != "none" or "client_secret" in document:
            raise ClientMetadataError(
                f"client_id {url}: token_endpoint_auth_method is {method!r}; a metadata document describes a public "
                "client ('none') and carries no secret."
            )
        name = document.get("client_name")
        grant_types = document.get("grant_types", DEFAULT_GRANT_TYPES)
        fields: dict[str, Any] = {
            "client_id": url,
            "redirect_uris": uris,
            "client_name": name if isinstance(name, str) and name.strip() else None,
            "token_endpoint_auth_method": "none",
            "grant_types": grant_types if isinstance(grant_types, list) else DEFAULT_GRANT_TYPES,
            "scope": self._scope or None,
        }
        try:
            return OAuthClientInformationFull.model_validate(fields)
        except ValueError as error:
            raise ClientMetadataError(f"client_id {url}: {error}") from None


def cache_seconds(headers: Mapping[str, str]) -> float:
    """How long a document may be reused: its `Cache-Control` (no-store/no-cache: not at all; max-age), else its
    `Expires`, else `DEFAULT_CACHE_SECONDS`; never more than `MAX_CACHE_SECONDS`."""
    control = headers.get("cache-control", "")
    if re.search(r"no-store|no-cache", control, re.IGNORECASE):
        return 0.0
    match = _MAX_AGE.search(control)
    if match:
        return min(float(match.group(1)), MAX_CACHE_SECONDS)
    expires = headers.get("expires")
    if expires:
        try:
            when = email.utils.parsedate_to_datetime(expires).timestamp()
            date = headers.get("date")
            now = email.utils.parsedate_to_datetime(date).timestamp() if date else time.time()
        except (TypeError, ValueError):
            return 0.0
        return max(0.0, min(when - now, MAX_CACHE_SECONDS))
    return DEFAULT_CACHE_SECONDS


class _PinnedHttps(http.client.HTTPSConnection):
    """HTTPS to `address`, with SNI and certificate checks for `host`."""

    def __init__(self, host: str, port: int, address: str, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(host, port, context=context, timeout=timeout)
        self._address = address
        self._tls = context

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)
