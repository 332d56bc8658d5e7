"""The emulator's HTTP side: routing, auth, fault injection, latency and the request log.

A stand-in for the OpenAI Images API on loopback (stdlib `ThreadingHTTPServer`, HTTP/1.1 keep-alive),
not the real service: every answer carries `x-emulator: gpt-image-mcp`. It never needs or sees a real
API key: any non-empty bearer key is accepted, except `sk-invalid` (401 invalid_api_key) and
`sk-unverified` (403, organization not verified), which exist so clients can test those paths.
Tests drive it in process (`inject`, `requests`, `reset`); a separate process can do the same through
the `/_emulator/*` admin endpoints.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import os
import select
import socket
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Self, cast
from urllib.parse import urlsplit

from local_sandbox.standins.emulator import faults, images
from local_sandbox.standins.emulator.faults import BROKEN_ANSWERS, Gate
from local_sandbox.standins.emulator.images import ApiError
from local_sandbox.standins.emulator.multipart import MultipartError, Part, boundary_of, parse
from local_sandbox.standins.http_server import StandInHTTPServer
from local_sandbox.standins.lifetime import StartStop

INVALID_KEY = "sk-invalid"
UNVERIFIED_KEY = "sk-unverified"
MAX_LOGGED_REQUESTS = 1000
MAX_BODY_BYTES = images.MAX_INPUT_IMAGES * images.MAX_IMAGE_BYTES + 16 * 1024 * 1024
HANG, CLOSE = 0, -1  # pseudo statuses for faults: answer late, or drop the connection without answering

_ROUTES: dict[str, images.Endpoint] = {"/v1/images/generations": "generations", "/v1/images/edits": "edits"}
_ADMIN_ROUTES = {
    "/_emulator/requests": "GET",
    "/_emulator/reset": "POST",
    "/_emulator/faults": "POST",
    "/_emulator/latency": "POST",
}
_LOGGED_HEADERS = (
    "content-type",
    "user-agent",
    "openai-organization",
    "openai-project",
    "x-stainless-retry-count",
    "x-stainless-timeout",
)
_QUOTA_CODES = ("insufficient_quota", "credit_balance_exhausted")
_JSON_PARSE_ERROR = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library "
    "correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
)


def _mask(key: str) -> str:
    return key[:3] + "*" * max(3, len(key) - 7) + key[-4:]


def _missing_key() -> ApiError:
    return ApiError(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer "
        "auth (i.e. Authorization: Bearer YOUR_KEY). You can obtain an API key from "
        "https://platform.openai.com/account/api-keys.",
    )


def _invalid_key(key: str) -> ApiError:
    return ApiError(
        401,
        f"Incorrect API key provided: {_mask(key)}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        code="invalid_api_key",
    )


def _unverified(model: str) -> ApiError:
    return ApiError(
        403,
        f"Your organization must be verified to use the model `{model}`. Please go to: "
        "https://platform.openai.com/settings/organization/general and click on Verify Organization. "
        "If you just verified, it can take up to 15 minutes for access to propagate.",
    )


def default_fault(status: int, code: str | None = None) -> tuple[dict[str, object], dict[str, str]]:
    """The body and headers OpenAI sends for `status` (notes §8.3); `code` picks a variant or overrides it."""
    headers: dict[str, str] = {}
    if status == 429 and code in _QUOTA_CODES:
        error = ApiError(
            429,
            "You exceeded your current quota, please check your plan and billing details. For more information on "
            "this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
            type_="insufficient_quota",
            code=code,
        )
        headers["x-should-retry"] = "false"
    elif status == 429:
        error = ApiError(
            429,
            "Rate limit reached for images per min (IPM) in organization org-emulator: Limit 5, Used 5, Requested 1. "
            "Please try again in 12s. Visit https://platform.openai.com/account/rate-limits to learn more.",
            type_="requests",
            code="rate_limit_exceeded",
        )
    elif status == 401:
        error = _invalid_key("sk-emulator-key")
    elif status == 403:
        error = _unverified("gpt-image-2")
    elif status == 404:
        error = ApiError(404, "The model `gpt-image-2` does not exist or you do not have access to it.")
        error.code = "model_not_found"
    elif status == 503:
        error = ApiError(
            503,
            "The server is overloaded or not ready yet.",
            type_="service_unavailable_error",
            code="server_is_overloaded",
        )
    elif status >= 500:
        error = ApiError(
            status,
            "The server had an error while processing your request. Sorry about that!",
            type_="server_error",
        )
    else:
        error = ApiError(status, f"The emulator was told to fail this request with status {status}.")
    if code is not None and code not in _QUOTA_CODES:
        error.code = code
    return error.body(), headers


@dataclass(slots=True)
class Fault:
    """A queued answer that replaces the normal one for the next `times` matching requests.

    Status 0 (HANG) answers normally after `hang_ms`, or once `gate` is released; with `broken` (one of
    `faults.BROKEN_ANSWERS`) that normal answer is then spoiled."""

    status: int
    body: object
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    path: str | None = None
    hang_ms: int = 0
    broken: str | None = None
    images: tuple[int, ...] | None = None
    gate: Gate | None = None


def _normalise_path(path: str | None) -> str | None:
    if path is None:
        return None
    path = "/" + path.lstrip("/")
    return path if path.startswith("/v1/") else "/v1" + path


@dataclass(frozen=True, slots=True)
class _Body:
    """The request body, parsed once for both the log and the handler."""

    raw: bytes
    content_type: str
    json: object = None
    parts: tuple[Part, ...] | None = None
    problem: str | None = None


class EmulatorServer(StartStop):
    """An OpenAI-compatible images emulator on a daemon thread; `base_url` goes to `OpenAI(base_url=...)`."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, latency_ms: int = 0, detail: images.Detail = "photo"
    ) -> None:
        self._address = (host, port)
        self._latency_ms = latency_ms
        self.detail = detail  # "photo": answers as large as OpenAI's; "flat": tiny pictures, for quick tests
        self.reports_usage = True  # False: answers without `usage`, as some proxies and gateways pass them on
        self._lock = threading.Lock()
        self._log: deque[dict[str, object]] = deque(maxlen=MAX_LOGGED_REQUESTS)
        self._faults: list[Fault] = []
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        if self._httpd is not None or self._stopping.is_set():
            raise RuntimeError("an EmulatorServer can be started once")
        self._httpd = _HTTPServer(self._address, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="openai-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake any hanging or slow answer, and close kept-alive connections."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join()

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the emulator is not running; call start() first")
        host, port = self._httpd.server_address[:2]
        host = "127.0.0.1" if host in ("0.0.0.0", "") else str(host)
        return f"http://{host}:{port}/v1"

    @property
    def requests(self) -> list[dict[str, object]]:
        """The last 1000 requests, oldest first, without file bytes; admin calls are not logged."""
        with self._lock:
            return copy.deepcopy(list(self._log))

    def reset(self) -> None:
        """Forget logged requests and queued faults; report usage again."""
        with self._lock:
            self._log.clear()
            self._faults.clear()
        self.reports_usage = True

    def set_latency(self, ms: int) -> None:
        """Delay every image answer by `ms`, as a stand-in for generation time."""
        if ms < 0:
            raise ValueError("latency must be >= 0 ms")
        self._latency_ms = ms

    def inject(
        self,
        status: int,
        body: object = None,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
        path: str | None = None,
        *,
        code: str | None = None,
        hang_ms: int = 0,
    ) -> None:
        """Answer the next `times` requests (to `path`, or any) with `status` instead of the normal answer.

        `body` defaults to OpenAI's error for `status`; `code` picks a variant (429 + "insufficient_quota"
        gives the quota error with `x-should-retry: false`). Status 0 waits `hang_ms` and then answers
        normally (for client timeouts); status -1 closes the connection without answering.
        """
        if not (status in (HANG, CLOSE) or 100 <= status <= 599):
            raise ValueError(f"status must be 100-599, 0 (hang) or -1 (close), not {status}")
        if times < 1:
            raise ValueError("times must be >= 1")
        if hang_ms < 0 or (hang_ms and status != HANG):
            raise ValueError("hang_ms must be >= 0 and is only used with status 0")
        extra: dict[str, str] = {}
        if body is None and status >= 100:
            body, extra = default_fault(status, code)
        fault_headers = extra | {name.lower(): str(value) for name, value in (headers or {}).items()}
        self._queue(Fault(status, body, fault_headers, times, _normalise_path(path), hang_ms))

    def break_answer(
        self, kind: str, *, images: Sequence[int] | None = None, times: int = 1, path: str | None = None
    ) -> None:
        """Answer the next `times` requests with a 200 that is not a sound images answer.

        `kind` is one of `faults.BROKEN_ANSWERS`: "truncated_image" / "corrupt_image" spoil the images at
        `images` (0-based; all when None) under valid base64; "malformed_json" cuts the JSON in half;
        "html_page" is a proxy's HTML page; "empty_data" has `data: []`; "stalled_body" sends the headers and
        half the body, then nothing until the client gives up.
        """
        if kind not in BROKEN_ANSWERS:
            raise ValueError(f"kind must be one of {', '.join(BROKEN_ANSWERS)}, not {kind!r}")
        if times < 1:
            raise ValueError("times must be >= 1")
        if images is not None and kind not in faults.IMAGE_FAULTS:
            raise ValueError(f"images is only used with {' or '.join(faults.IMAGE_FAULTS)}")
        chosen = None if images is None else tuple(images)
        self._queue(Fault(HANG, None, {}, times, _normalise_path(path), broken=kind, images=chosen))

    def hold(self, path: str | None = None, *, after_events: int = 0) -> Gate:
        """Hold the next matching request once it is read: `gate.arrived` is set, and the normal answer goes out
        when the test calls `gate.release()` (or the emulator stops). With `after_events`, a streamed answer is
        held after that many events instead (a plain answer is held before it, as without)."""
        gate = Gate(after_events=after_events)
        self._queue(Fault(HANG, None, {}, 1, _normalise_path(path), gate=gate))
        return gate

    def _queue(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.path is None or fault.path == path:
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _record(self, entry: dict[str, object]) -> None:
        with self._lock:
            self._log.append(entry)

    def _wait(self, ms: int) -> None:
        """Sleep, but wake at once when the server stops."""
        if ms > 0:
            self._stopping.wait(ms / 1000)

    def _wait_for(self, event: threading.Event) -> None:
        """Wait until `event` is set or the server stops."""
        while not (event.wait(0.05) or self._stopping.is_set()):
            pass

    def _track(self, connection: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)


class _HTTPServer(StandInHTTPServer):
    request_queue_size = 128  # socketserver's default backlog of 5 drops concurrent connects for a second

    def __init__(self, address: tuple[str, int], emulator: EmulatorServer) -> None:
        self.emulator = emulator
        super().__init__(address, _Handler)


_Answer = tuple[int, object, dict[str, str]]


@dataclass(frozen=True, slots=True)
class EventStream:
    """A `stream=true` answer: server-sent events, written one by one with the latency spread between them."""

    events: list[tuple[str, dict[str, object]]]
    latency_ms: int
    gate: Gate | None = None  # held after gate.after_events events


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gpt-image-mcp-emulator"
    disable_nagle_algorithm = True  # small error answers would otherwise wait ~40 ms for a delayed ACK

    @property
    def emulator(self) -> EmulatorServer:
        return cast(_HTTPServer, self.server).emulator

    def setup(self) -> None:
        super().setup()
        self.emulator._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.emulator._track(self.connection, False)

    def log_message(self, format: str, *args: object) -> None:
        if os.environ.get("EMULATOR_LOG") == "1":
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        started = time.monotonic()
        path = urlsplit(self.path).path
        try:
            body = self._read_body()
        except ApiError as error:
            self.close_connection = True  # the unread body would corrupt the next request on this connection
            self._send(started, (error.status, error.body(), {}))
            return
        if path.startswith("/_emulator/"):
            self._send(started, self._admin(path, body))
            return
        entry = self._entry(path, body)
        self.emulator._record(entry)
        fault = self.emulator._take_fault(path)
        if fault is not None and fault.status == CLOSE:
            self.close_connection = True
            return
        if fault is not None and fault.status != HANG:
            answer: _Answer = (fault.status, fault.body, fault.headers)
        else:
            gate = fault.gate if fault is not None else None
            self.emulator._wait(fault.hang_ms if fault else 0)
            answer = self._answer(path, body)
            stream = answer[1]
            if gate is not None and gate.after_events and isinstance(stream, EventStream):
                answer = (answer[0], dataclasses.replace(stream, gate=gate), answer[2])
            elif gate is not None:
                self._wait_at(gate)
        entry["status"] = answer[0]
        if fault is not None and fault.broken is not None and answer[0] == 200:
            self._send_broken(started, answer, fault.broken, fault.images)
            return
        self._send(started, answer)

    def _wait_at(self, gate: Gate) -> None:
        gate.arrived.set()
        self.emulator._wait_for(gate.released)

    def _send_broken(self, started: float, answer: _Answer, kind: str, indexes: tuple[int, ...] | None) -> None:
        body = answer[1]
        if isinstance(body, EventStream) and kind != "html_page":
            self._send_broken_stream(started, body, kind, indexes)
            return
        if isinstance(body, EventStream):
            body = {}
        assert isinstance(body, dict)
        if kind == "stream_error":  # a plain answer cannot end with an error event: OpenAI would answer 400
            self._send(started, (400, {"error": faults.OUTPUT_MODERATION}, {}))
            return
        if kind in faults.IMAGE_FAULTS:
            self._send(started, (200, faults.damage_images(body, kind, indexes), answer[2]))
            return
        data, content_type = faults.broken_body(body, kind)
        if kind != "stalled_body":
            self._send(started, (200, data, {"content-type": content_type}))
            return
        self.close_connection = True
        self._send(started, (200, data, {"content-type": content_type}), stop_after=len(data) // 2)
        self._await_hang_up()

    def _send_broken_stream(
        self, started: float, stream: EventStream, kind: str, indexes: tuple[int, ...] | None
    ) -> None:
        if kind != "stalled_body":
            self._send_events(started, faults.spoil_events(stream.events, kind, indexes), stream.latency_ms)
            return
        self.close_connection = True
        half = faults.encode_events(stream.events[: max(1, len(stream.events) // 2)])
        self._send_events(started, half, stream.latency_ms, end=False)
        self._await_hang_up()

    def _await_hang_up(self) -> None:
        """Send nothing more until the client closes the connection (its read timeout) or the emulator stops."""
        while not self.emulator._stopping.is_set():
            try:
                readable, _, _ = select.select([self.connection], [], [], 0.05)
                if readable and not self.connection.recv(1024):
                    return
            except OSError:
                return

    def _read_body(self) -> _Body:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            raise ApiError(411, "Chunked request bodies are not supported by this emulator; send Content-Length.")
        declared = self.headers.get("content-length", "0").strip() or "0"
        if not declared.isdigit():
            raise ApiError(400, f"Invalid Content-Length header '{declared}'.")
        length = int(declared)
        if length > MAX_BODY_BYTES:
            raise ApiError(413, f"Request body of {length} bytes is larger than the emulator's {MAX_BODY_BYTES}.")
        raw = self.rfile.read(length) if length else b""
        content_type = self.headers.get("content-type", "")
        if content_type.lower().startswith("multipart/"):
            try:
                return _Body(raw, content_type, parts=tuple(parse(raw, boundary_of(content_type))))
            except MultipartError as exc:
                return _Body(raw, content_type, problem=f"Could not parse the multipart form: {exc}.")
        if not raw:
            return _Body(raw, content_type)
        try:
            return _Body(raw, content_type, json=json.loads(raw))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return _Body(raw, content_type, problem=_JSON_PARSE_ERROR)

    def _entry(self, path: str, body: _Body) -> dict[str, object]:
        headers: dict[str, object] = {"authorization": "authorization" in self.headers}
        headers |= {name: self.headers[name] for name in _LOGGED_HEADERS if name in self.headers}
        parts = body.parts or ()
        return {
            "method": self.command,
            "path": path,
            "timestamp": time.time(),
            "headers": headers,
            "json": body.json,
            "fields": {part.name: part.data.decode("utf-8", "replace") for part in parts if not part.is_file},
            "files": [
                {
                    "name": part.name,
                    "filename": part.filename,
                    "content_type": part.content_type,
                    "size": len(part.data),
                }
                for part in parts
                if part.is_file
            ],
            "status": None,
        }

    def _bearer(self) -> str | None:
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return token.strip() or None if scheme.lower() == "bearer" else None

    def _answer(self, path: str, body: _Body) -> _Answer:
        endpoint = _ROUTES.get(path)
        try:
            if endpoint is None:
                raise ApiError(404, f"Invalid URL ({self.command} {path})")
            if self.command != "POST":
                error = ApiError(405, f"Invalid method for URL ({self.command} {path}); use POST.")
                return 405, error.body(), {"allow": "POST"}
            key = self._bearer()
            if key is None:
                raise _missing_key()
            if key == INVALID_KEY:
                raise _invalid_key(key)
            if endpoint == "generations":
                if body.problem is not None or body.parts is not None or not body.raw:
                    raise ApiError(400, _JSON_PARSE_ERROR)
                job = images.parse_generation(body.json)
            else:
                if body.parts is None:
                    found = body.content_type or "none"
                    raise ApiError(
                        400, body.problem or f"Invalid Content-Type ({found}), expected multipart/form-data."
                    )
                job = images.parse_edit(body.parts)
            if key == UNVERIFIED_KEY:  # after validation, as observed on the real API (notes §8.3)
                raise _unverified(job.model)
            images.moderate(job)
            if job.stream:
                events = [(name, self._usage(data)) for name, data in images.stream_events(job, self.emulator.detail)]
                return 200, EventStream(events, self.emulator._latency_ms), {}
            self.emulator._wait(self.emulator._latency_ms)
            return 200, self._usage(images.respond(job, self.emulator.detail)), {}
        except ApiError as error:
            return error.status, error.body(), {}
        except Exception as exc:  # a bug in the emulator: answer like OpenAI's 500 and show the traceback
            traceback.print_exc()
            return 500, ApiError(500, f"The emulator failed: {type(exc).__name__}.", type_="server_error").body(), {}

    def _usage(self, data: dict[str, object]) -> dict[str, object]:
        """`data` as sent: without its `usage` when the emulator plays a proxy that drops it."""
        if self.emulator.reports_usage:
            return data
        return {name: value for name, value in data.items() if name != "usage"}

    def _send_events(
        self, started: float, events: list[faults.Event], latency_ms: int, *, end: bool = True, gate: Gate | None = None
    ) -> None:
        """Chunked `text/event-stream`: each event after its share of the latency, so arrival can be watched;
        without `end` the stream is left open after the events."""
        headers = {
            "content-type": "text/event-stream; charset=utf-8",
            "transfer-encoding": "chunked",
            "cache-control": "no-cache",
            "x-request-id": f"req_{uuid.uuid4().hex}",
            "openai-processing-ms": str(round((time.monotonic() - started) * 1000)),
            "x-emulator": "gpt-image-mcp",
        }
        spacing = latency_ms // max(1, len(events))
        try:
            self.send_response(200)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            for sent, (name, data) in enumerate(events):
                if gate is not None and sent == gate.after_events:
                    self._wait_at(gate)
                self.emulator._wait(spacing)
                event = b"event: " + name.encode() + b"\ndata: " + data + b"\n\n"
                self.wfile.write(b"%x\r\n%b\r\n" % (len(event), event))
                self.wfile.flush()
            if end:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
        except ConnectionError:
            self.close_connection = True

    def _admin(self, path: str, body: _Body) -> _Answer:
        method = _ADMIN_ROUTES.get(path)
        if method is None:
            return 404, ApiError(404, f"Unknown admin endpoint {path}.").body(), {}
        if self.command != method:
            return 405, ApiError(405, f"Use {method} for {path}.").body(), {"allow": method}
        emulator = self.emulator
        payload = body.json if isinstance(body.json, dict) else {}
        try:
            if path == "/_emulator/requests":
                return 200, {"requests": emulator.requests}, {}
            if path == "/_emulator/reset":
                emulator.reset()
                return 200, {"reset": True}, {}
            if path == "/_emulator/latency":
                ms = payload.get("ms")
                if not isinstance(ms, int) or isinstance(ms, bool):
                    raise ValueError('send {"ms": <integer>}')
                emulator.set_latency(ms)
                return 200, {"latency_ms": ms}, {}
            if "broken" in payload:
                unknown = set(payload) - {"broken", "images", "times", "path"}
                if unknown:
                    raise ValueError(f'send {{"broken": <kind>, "images", "times", "path"}}; not {sorted(unknown)}')
                emulator.break_answer(payload["broken"], **{k: v for k, v in payload.items() if k != "broken"})
                return 200, {"queued": payload}, {}
            unknown = set(payload) - {"status", "body", "headers", "times", "path", "code", "hang_ms"}
            if unknown or not isinstance(payload.get("status"), int):
                raise ValueError(f'send {{"status": <integer>, ...}}; unknown keys: {sorted(unknown)}')
            emulator.inject(**payload)
            return 200, {"queued": payload}, {}
        except (TypeError, ValueError) as exc:
            return 400, ApiError(400, f"Bad admin request: {exc}").body(), {}

    def _send(self, started: float, answer: _Answer, *, stop_after: int | None = None) -> None:
        """Send `answer`; with `stop_after`, only that many bytes of the body (the headers promise all of it)."""
        status, payload, extra = answer
        if isinstance(payload, EventStream):
            self._send_events(started, faults.encode_events(payload.events), payload.latency_ms, gate=payload.gate)
            return
        if isinstance(payload, str | bytes):
            data = payload.encode("utf-8") if isinstance(payload, str) else payload
            content_type = "text/plain; charset=utf-8"
        else:
            data = json.dumps(payload).encode("utf-8")
            content_type = "application/json"
        headers = {
            "content-type": content_type,
            "content-length": str(len(data)),
            "x-request-id": f"req_{uuid.uuid4().hex}",
            "openai-processing-ms": str(round((time.monotonic() - started) * 1000)),
            "x-emulator": "gpt-image-mcp",
        } | extra
        if self.close_connection:
            headers["connection"] = "close"
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data if stop_after is None else data[:stop_after])
            self.wfile.flush()
        except ConnectionError:
            self.close_connection = True
