"""moto's server on loopback, as strict as DynamoDB about concurrent writes.

moto serves each request on a thread of its own and its DynamoDB backend takes no lock, so two conditional
`UpdateItem`s on one item can both pass their condition (seen: two winners among four concurrent claims of one job,
in 1 of 60 trials). DynamoDB itself never allows that. Here every DynamoDB request is served whole under one lock;
the other services (S3, SQS, the /moto-api admin paths) keep moto's concurrency. The lock is per process because
moto's state is: every server started in one process serves the same backends.

Every test fixture, the remote shape and the jobs bench start moto through `MotoServer`;
`python -m local_sandbox.standins.moto_server --port N` runs it as a process of its own.
"""

from __future__ import annotations

import argparse
import logging
import threading
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Self

WsgiApp = Callable[[dict[str, Any], Any], Iterable[bytes]]

_DYNAMODB_TARGET = "DynamoDB"  # X-Amz-Target of every DynamoDB (and DynamoDB Streams) request: "DynamoDB_20120810.*"
_dynamodb_lock = threading.Lock()


class AtomicDynamoDB:
    """WSGI middleware: one DynamoDB request at a time, its response made in full before the next one starts."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith(_DYNAMODB_TARGET):
            return self.app(environ, start_response)
        with _dynamodb_lock:
            response = self.app(environ, start_response)
            try:
                return [b"".join(response)]
            finally:
                close = getattr(response, "close", None)
                if callable(close):
                    close()


class MotoServer:
    """moto's server in a thread of this process, on `host` and `port` (0: a free one); `start()`, then `stop()`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("start() the server first")
        return f"http://{self.host}:{self._server.server_port}"

    def start(self) -> Self:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # an access-log line per AWS call otherwise
        app = AtomicDynamoDB(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self.host, self.port, app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)
        self._thread.start()
        return self

    def reset(self) -> None:
        """Drop all of moto's state (every server in this process shares it)."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="moto's server, with DynamoDB requests served one at a time.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args(argv)
    server = MotoServer(args.host, args.port).start()
    try:
        threading.Event().wait()  # until the process is stopped
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
