"""Our own consent step, then Cognito's hosted login, then the way back to the client.

The façade signs every client in through one Cognito app client, so Cognito's own consent (if any) cannot tell
clients apart; the MCP security guidance asks such a proxy to get the person's consent for each client itself. The
page names the client (its metadata document's `client_name` and URL, or its registration) and where the answer
goes. The form is protected by a double-submit token (a cookie this page sets, `SameSite=Strict`, which a cross-site
form cannot send) and the page by `frame-ancestors 'none'`, so no other site can approve on the person's behalf.

`GET /consent` shows the page; `POST /consent` approves (on to Cognito, with our own PKCE pair) or denies (back to
the client with `access_denied`); `GET /oauth/callback` takes Cognito's code, learns the `sub`, and hands the client
an authorization code of ours.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import secrets
from urllib.parse import urlsplit

import anyio.to_thread
from mcp.server.auth.provider import construct_redirect_uri
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gpt_image_mcp.oauth.provider import CALLBACK_PATH, CONSENT_PATH, FacadeProvider
from gpt_image_mcp.oauth.store import PENDING
from gpt_image_mcp.oauth.upstream import CognitoLogin, UpstreamError

CSRF_COOKIE = "gim_consent"
_NO_STORE = {"Cache-Control": "no-store"}
_PAGE_HEADERS = {
    **_NO_STORE,
    "Content-Security-Policy": ("default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def _page(title: str, body: str, status: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    document = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        '<meta name="viewport" content="width=device-width"><style>body{font:16px system-ui;max-width:36em;'
        "margin:3em auto;padding:0 1em}button{font:inherit;padding:.5em 1.2em;margin-right:1em}</style></head>"
        f"<body>{body}</body></html>"
    )
    return HTMLResponse(document, status_code=status, headers={**_PAGE_HEADERS, **(headers or {})})


def _problem(message: str, status: int = 400) -> HTMLResponse:
    return _page("Sign-in cannot continue", f"<h1>Sign-in cannot continue</h1><p>{html.escape(message)}</p>", status)


def _client_label(client_id: str, client_name: str) -> str:
    where = f"the application at {client_id}" if client_id.startswith("https://") else f"registered client {client_id}"
    return f"{client_name} ({where})" if client_name else where


class ConsentFlow:
    def __init__(self, provider: FacadeProvider, login: CognitoLogin) -> None:
        self.provider = provider
        self.login = login
        self.callback_url = f"{provider.issuer}{CALLBACK_PATH}"
        self._secure = provider.issuer.startswith("https://")

    async def show(self, request: Request) -> Response:
        request_id = request.query_params.get("request", "")
        pending = await anyio.to_thread.run_sync(lambda: self.provider.store.get(PENDING, request_id, status="pending"))
        if pending is None:
            return _problem(
                "This sign-in request is unknown, was already answered, or expired. Start again from your app."
            )
        token = secrets.token_urlsafe(24)
        label = html.escape(_client_label(pending["client_id"], pending["client_name"]))
        target = html.escape(urlsplit(pending["redirect_uri"]).netloc or pending["redirect_uri"])
        body = (
            "<h1>Allow access to gpt-image-mcp?</h1>"
            f"<p><strong>{label}</strong> asks to use this image server as you: to create and edit images (which "
            "costs money), and to list your images, history and jobs.</p>"
            f"<p>Your answer is sent to <strong>{target}</strong>. Allow only if you started this from that app.</p>"
            f'<form method="post" action="{CONSENT_PATH}">'
            f'<input type="hidden" name="request" value="{html.escape(request_id)}">'
            f'<input type="hidden" name="csrf" value="{token}">'
            '<button name="decision" value="allow" type="submit">Allow</button>'
            '<button name="decision" value="deny" type="submit">Deny</button></form>'
            "<p>Next you sign in with your account of this deployment.</p>"
        )
        response = _page("Allow access to gpt-image-mcp?", body)
        response.set_cookie(
            CSRF_COOKIE, token, max_age=600, path=CONSENT_PATH, secure=self._secure, httponly=True, samesite="strict"
        )
        return response

    async def answer(self, request: Request) -> Response:
        form = await request.form()
        request_id, sent, decision = (str(form.get(name, "")) for name in ("request", "csrf", "decision"))
        cookie = request.cookies.get(CSRF_COOKIE, "")
        if not sent or not hmac.compare_digest(sent.encode(), cookie.encode()):
            return _problem(
                "This answer did not come from the consent page in this browser. Start again from your app.", 403
            )
        verifier = secrets.token_urlsafe(48)
        after = "approved" if decision == "allow" else "denied"
        pending = await anyio.to_thread.run_sync(
            lambda: self.provider.store.claim(PENDING, request_id, "pending", after, upstream_verifier=verifier)
        )
        if pending is None:
            return _problem(
                "This sign-in request is unknown, was already answered, or expired. Start again from your app."
            )
        if after == "denied":
            await anyio.to_thread.run_sync(self.provider.store.take, PENDING, request_id)
            return self._back(pending, error="access_denied", error_description="The person declined the request.")
        url = self.login.authorize_url(
            redirect_uri=self.callback_url, state=request_id, code_challenge=_challenge(verifier)
        )
        return RedirectResponse(url, status_code=303, headers=_NO_STORE)

    async def callback(self, request: Request) -> Response:
        params = request.query_params
        request_id = params.get("state", "")
        pending = await anyio.to_thread.run_sync(
            lambda: self.provider.store.get(PENDING, request_id, status="approved")
        )
        if pending is None or await anyio.to_thread.run_sync(self.provider.store.take, PENDING, request_id) is None:
            return _problem("This sign-in was already completed, or it expired. Start again from your app.")
        if "code" not in params:
            error = params.get("error", "access_denied")
            return self._back(pending, error="access_denied" if error == "access_denied" else "server_error",
                              error_description=f"Sign-in did not complete ({error}).")  # fmt: skip
        try:
            person = await anyio.to_thread.run_sync(
                lambda: self.login.signed_in(
                    code=params["code"], redirect_uri=self.callback_url, code_verifier=pending["upstream_verifier"]
                )
            )
        except UpstreamError as failure:
            return self._back(pending, error="server_error", error_description=failure.message)
        code = await anyio.to_thread.run_sync(self.provider.issue_code, pending, person)
        return self._back(pending, code=code)

    def _back(self, pending: dict[str, str], **answer: str) -> RedirectResponse:
        """To the client's redirect URI with `answer`, its `state`, and our issuer (RFC 9207)."""
        url = construct_redirect_uri(
            pending["redirect_uri"], **answer, state=pending.get("state"), iss=self.provider.issuer
        )
        return RedirectResponse(url, status_code=302, headers=_NO_STORE)
