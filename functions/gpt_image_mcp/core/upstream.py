"""The OpenAI Images API through the official SDK, with our own retry policy and user-facing errors.

The retry rule (README "Errors" says the same): an image call is billed and not idempotent, so a request is
sent again only when it provably never reached OpenAI, or OpenAI refused it for now without making images:

- retried, with bounded backoff that honours `Retry-After`: a connection that could not be made (refused,
  DNS, TLS, connect timeout, no free pooled connection); HTTP 429 rate limits; 5xx, 408 and 409 answers;
- never retried: a read timeout or a connection dropped after the request was sent (OpenAI may be making, and
  billing, the images: the message says so and how to retry knowingly); a 200 that is not an images answer
  (`core.answers`); an exhausted quota, a moderation refusal, a rejected key or parameter.

The SDK's own retries are off (`max_retries=0`), and its parsing too: the raw answer is checked and decoded
here (`core.answers`), off the event loop. The SDK is imported on first use, which keeps start-up fast.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import anyio.to_thread

from gpt_image_mcp.core.answers import Received, UpstreamResult, images_answer
from gpt_image_mcp.core.errors import ConfigurationError, UpstreamError
from gpt_image_mcp.core.events import EventReader, Partial, StreamedAnswer, StreamedError

if TYPE_CHECKING:
    import httpx2
    from openai import AsyncOpenAI

    from gpt_image_mcp.core.config import Settings
    from gpt_image_mcp.core.planning import ImagePlan

log = logging.getLogger(__name__)

MAX_RETRY_AFTER = 60.0
NO_RETRY_CODES = {"insufficient_quota", "credit_balance_exhausted", "billing_hard_limit_reached"}
DEFAULT_BASE_URL = "https://api.openai.com/v1"
MAY_HAVE_RUN = (
    "The request had been sent, so OpenAI may still make (and bill) the images; it was not sent again. Before "
    "you try again, https://platform.openai.com/usage shows whether this one was charged"
)
MISSING_KEY = (
    "OPENAI_API_KEY is not set, so no image can be made. Add it to the MCP client's env block, or to "
    "~/.openai-gpt-image/.env (read wherever the server starts; a .env in its working directory is read too), or "
    "start the server with --emulator to try every tool offline with the bundled stand-in for the OpenAI API."
)


__all__ = ["CallBudget", "ImagesClient", "PartialSink", "RetryPolicy", "UpstreamResult", "translate"]
PartialSink = Callable[[Partial], Awaitable[None]]


def _request_id(http: httpx2.Response) -> str | None:
    return http.headers.get("x-request-id")


async def read_body(http: httpx2.Response) -> bytes | bytearray:
    """The whole body, in one buffer of the announced length when there is one: an answer of ten images is some
    17 MB, which reading in chunks and joining them would hold twice."""
    declared = http.headers.get("content-length", "")
    if not declared.isdigit() or http.headers.get("content-encoding"):
        return await http.aread()
    body, filled = bytearray(int(declared)), 0
    view = memoryview(body)
    async for chunk in http.aiter_raw():  # HTTP/1.1 framing ends a body at its length: it never runs over
        view[filled : filled + len(chunk)] = chunk
        filled += len(chunk)
    view.release()
    return body


class CallBudget(Protocol):
    """A caller's time limit, such as the SQS worker's Lambda timeout (`entry.lambda_worker.Deadline`)."""

    def attempt_timeout(self) -> float | None:
        """Seconds the next attempt may take, or None for no limit beyond the client's own timeout."""
        ...

    def can_retry_after(self, delay: float) -> bool:
        """Whether a retry after `delay` seconds can still finish in time."""
        ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER)
        backoff = min(self.base_delay * 2**attempt, self.max_delay)
        return float(backoff * (1 - 0.25 * random.random()))


class ImagesClient:
    """Calls /images/generations and /images/edits for a plan."""

    def __init__(
        self,
        *,
        api_key: str | None,
        organization: str | None,
        base_url: str | None,
        timeout: float,
        retry: RetryPolicy,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        budget: CallBudget | None = None,
    ) -> None:
        self._api_key = api_key
        self._organization = organization
        self._base_url = base_url
        self._timeout = timeout
        self._retry = retry
        self._sleep = sleep
        self._budget = budget
        self._client: AsyncOpenAI | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, budget: CallBudget | None = None) -> ImagesClient:
        """The client as `settings` describe it (key, organization, base URL, timeout, retries)."""
        return cls(
            api_key=settings.openai_api_key,
            organization=settings.openai_organization,
            base_url=settings.openai_base_url,
            timeout=settings.request_timeout,
            retry=RetryPolicy(max_retries=settings.max_retries),
            budget=budget,
        )

    def _sdk(self) -> AsyncOpenAI:
        """The SDK client, made on first use; a new one per event loop (its connection pool is loop-bound)."""
        if self._api_key is None:
            raise ConfigurationError(MISSING_KEY)
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            from openai import AsyncOpenAI

            self._loop = loop

            self._client = AsyncOpenAI(
                api_key=self._api_key,
                organization=self._organization,
                base_url=self._base_url,
                timeout=self._timeout,
                max_retries=0,
            )
        return self._client

    async def aclose(self) -> None:
        """Close the connection pool (tests and orderly shutdown)."""
        if self._client is not None and self._loop is asyncio.get_running_loop():
            await self._client.close()
        self._client = None

    async def run(
        self, plan: ImagePlan, *, safety_identifier: str | None = None, on_partial: PartialSink | None = None
    ) -> UpstreamResult:
        """Call OpenAI for `plan`, retrying only what the rule above allows; `on_partial` gets each partial image
        of a streamed answer as it arrives."""
        client = self._sdk()
        params = dict(plan.params)
        if safety_identifier:
            params["safety_identifier"] = safety_identifier
        attempt = 0
        while True:
            timeout, options = self._attempt_options()
            try:
                return await self._attempt(client, plan, params | options, attempt + 1, on_partial)
            except Exception as exc:
                error = translate(exc, plan.spec.name, self._base_url, timeout)
                if error is None:
                    raise
                if error.category == "timeout" and options:  # the caller's time budget, not OPENAI_IMAGE_TIMEOUT
                    error.message = (
                        f"OpenAI did not answer within the {timeout:.1f} s left before this run's time limit, so the "
                        f"request was stopped. {MAY_HAVE_RUN}; a lower quality or size finishes sooner."
                    )
                    error.args = (error.message,)
                delay = self._retry.delay(attempt, error.retry_after)
                out_of_time = self._budget is not None and not self._budget.can_retry_after(delay)
                if not error.retryable or attempt >= self._retry.max_retries or out_of_time:
                    if attempt:
                        error.message = f"{error.message} (gave up after {attempt + 1} attempts)"
                        error.args = (error.message,)
                    raise error from exc
                log.warning("upstream %s, retry %d in %.1fs", error.category, attempt + 1, delay)
                await self._sleep(delay)
                attempt += 1

    async def _attempt(
        self, client: AsyncOpenAI, plan: ImagePlan, params: dict[str, Any], attempts: int, sink: PartialSink | None
    ) -> UpstreamResult:
        """One request: a plain answer is read whole; a streamed one (`params["stream"]`) event by event."""
        if plan.endpoint == "edit":
            files = [(image.filename, image.data, f"image/{image.info.format}") for image in plan.images]
            params = params | {"image": files if len(files) > 1 else files[0]}
            if plan.mask is not None:
                params["mask"] = ("mask.png", plan.mask.data, "image/png")
        method = "generate" if plan.endpoint == "generate" else "edit"
        async with getattr(client.images.with_streaming_response, method)(**params) as response:
            http = response.http_response
            if params.get("stream") and http.headers.get("content-type", "").lower().startswith("text/event-stream"):
                return await self._streamed(http, attempts, sink)
            return await self._plain(http, await read_body(http), attempts)

    async def _plain(self, http: httpx2.Response, body: bytes | bytearray, attempts: int) -> UpstreamResult:
        received = Received(http.status_code, http.headers.get("content-type", ""), body, _request_id(http))
        return await anyio.to_thread.run_sync(images_answer, received, self._where, attempts)

    async def _streamed(self, http: httpx2.Response, attempts: int, sink: PartialSink | None) -> UpstreamResult:
        """Events as they arrive."""
        answer = StreamedAnswer(http.status_code, http.headers.get("content-type", ""), _request_id(http), self._where)
        reader = EventReader()
        async for chunk in http.aiter_bytes():
            answer.received(chunk)
            for name, data in reader.feed(chunk):
                partial = await anyio.to_thread.run_sync(answer.take, name, data)
                if partial is not None and sink is not None:
                    await sink(partial)
        return answer.result(attempts)

    @property
    def _where(self) -> str:
        return self._base_url or DEFAULT_BASE_URL

    def _attempt_options(self) -> tuple[float, dict[str, Any]]:
        """This attempt's timeout, and the per-request option that sets it when the budget is tighter."""
        limit = self._budget.attempt_timeout() if self._budget is not None else None
        if limit is None or limit >= self._timeout:
            return self._timeout, {}
        limit = max(limit, 0.1)
        return limit, {"timeout": limit}


def _retry_after(headers: Any) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name) if headers is not None else None
        if value:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue
    return None


def translate(exc: BaseException, model: str, base_url: str | None, timeout: float) -> UpstreamError | None:
    """Map an SDK (or transport) exception to a specific, actionable message; None if it is neither."""
    import httpx2
    import openai

    where = base_url or DEFAULT_BASE_URL
    if isinstance(exc, openai.APIConnectionError | httpx2.TransportError):
        return _transport_error(exc, where, timeout)
    if isinstance(exc, StreamedError):
        return _streamed_error(exc)
    if not isinstance(exc, openai.APIStatusError):
        if isinstance(exc, openai.APIError):
            return UpstreamError(f"OpenAI reported an error: {exc.message}", category="api_error")
        return None
    body = exc.body if isinstance(exc.body, dict) else {}
    code = exc.code or body.get("code")
    message = str(body.get("message") or exc.message)
    request_id = exc.request_id
    ref = f" (request id {request_id})" if request_id else ""
    status = exc.status_code
    if status == 401:
        text = (
            "OpenAI rejected the API key (401). Check OPENAI_API_KEY: it must be a current secret key from "
            "https://platform.openai.com/api-keys"
            + (
                " and OPENAI_ORGANIZATION must be an organization the key belongs to."
                if "organization" in message.lower()
                else "."
            )
        )
        return UpstreamError(text, category="auth", status=status, request_id=request_id)
    if status == 403:
        if "verif" in message.lower():
            text = (
                f"Your OpenAI organization must be verified to use {model}. Verify it at "
                "https://platform.openai.com/settings/organization/general (Verify Organization); access can take "
                "up to 15 minutes to appear after approval."
            )
            return UpstreamError(text, category="unverified_organization", status=status, request_id=request_id)
        return UpstreamError(
            f"OpenAI refused access (403): {message}{ref}", category="forbidden", status=status, request_id=request_id
        )
    if status == 404 or code == "model_not_found":
        return UpstreamError(
            f"OpenAI does not know the model '{model}' or this key has no access to it: {message}",
            category="model_not_found",
            status=status,
            request_id=request_id,
        )
    if status == 400 and _is_moderation(code, message):
        return _content_policy(body, status, request_id)
    if status in (400, 422):
        param = exc.param or body.get("param")
        about = f" parameter '{param}'" if param else " request"
        return UpstreamError(
            f"OpenAI rejected the{about}: {message}{ref}", category="bad_request", status=status, request_id=request_id
        )
    if status == 429:
        if code in NO_RETRY_CODES or body.get("type") in NO_RETRY_CODES:
            return UpstreamError(
                "Your OpenAI account has no credit left (insufficient_quota). Add credit or raise the limit at "
                "https://platform.openai.com/settings/organization/billing; this is not retried.",
                category="quota",
                status=status,
                request_id=request_id,
            )
        retry_after = _retry_after(exc.response.headers)
        wait = f"; OpenAI asked to wait {retry_after:.3g} s" if retry_after is not None else ""
        return UpstreamError(
            f"OpenAI rate limit reached (429){wait}. Try again shortly, lower sample_count, or queue the work "
            f"with start_generation_job. OpenAI said: {message}",
            category="rate_limit",
            status=status,
            retryable=True,
            retry_after=retry_after,
            request_id=request_id,
        )
    if status >= 500 or status in (408, 409):
        return UpstreamError(
            f"OpenAI had a server error (HTTP {status}){ref}. It is usually brief: try again in a minute.",
            category="server_error",
            status=status,
            retryable=True,
            retry_after=_retry_after(exc.response.headers),
            request_id=request_id,
        )
    return UpstreamError(
        f"OpenAI answered HTTP {status}: {message}{ref}", category="http_error", status=status, request_id=request_id
    )


def _transport_error(exc: BaseException, where: str, timeout: float) -> UpstreamError:
    """Whether the request can have reached OpenAI decides: only a connection never made is retried."""
    import httpx2
    import openai

    cause = exc.__cause__ if isinstance(exc, openai.APIConnectionError) else exc
    if isinstance(cause, httpx2.ConnectError | httpx2.ConnectTimeout | httpx2.PoolTimeout):
        return UpstreamError(
            f"Could not connect to the OpenAI API at {where} ({cause or exc}). Check the network, a proxy, "
            "or OPENAI_BASE_URL. Nothing reached OpenAI.",
            category="connection",
            retryable=True,
        )
    if isinstance(exc, openai.APITimeoutError) or isinstance(cause, httpx2.TimeoutException):
        return UpstreamError(
            f"OpenAI did not answer within {timeout:.0f} s. High quality and large sizes can take over two minutes: "
            "raise OPENAI_IMAGE_TIMEOUT, lower quality, or run it as a job with start_generation_job. "
            f"{MAY_HAVE_RUN}.",
            category="timeout",
        )
    return UpstreamError(
        f"The connection to the OpenAI API at {where} dropped after the request was sent "
        f"({type(cause).__name__}: {str(cause or exc).rstrip('.')}). {MAY_HAVE_RUN}; then call the tool again.",
        category="dropped",
    )


def _is_moderation(code: object, message: str) -> bool:
    return code in ("moderation_blocked", "content_policy_violation") or "safety" in message.lower()


def _content_policy(body: dict[str, Any], status: int | None, request_id: str | None) -> UpstreamError:
    details = body.get("moderation_details") or {}
    categories = ", ".join(details.get("categories") or []) or "not stated"
    ref = f" (request id {request_id})" if request_id else ""
    stage = " the images it made" if details.get("moderation_stage") == "output" else " this request"
    return UpstreamError(
        f"OpenAI's safety system rejected{stage} (categories: {categories}){ref}. Rephrase the prompt; "
        "for generate_image, moderation='low' is less strict. Not retried: the verdict would be the same.",
        category="content_policy",
        status=status,
        request_id=request_id,
    )


def _streamed_error(exc: StreamedError) -> UpstreamError:
    """An `error` event after the 200: OpenAI had taken the request, so nothing is retried."""
    body, request_id = exc.body, exc.request_id
    message = str(body.get("message") or exc)
    if _is_moderation(body.get("code"), message):
        return _content_policy(body, None, request_id)
    ref = f" (request id {request_id})" if request_id else ""
    code = body.get("code") or body.get("type") or "no code"
    return UpstreamError(
        f"OpenAI stopped while making the images ({code}): {message}{ref}. {MAY_HAVE_RUN}.",
        category="stream_error",
        request_id=request_id,
    )
