"""The stand-ins' HTTP servers: threaded, and quiet about clients that hang up."""

from __future__ import annotations

import socket
import sys
from http.server import ThreadingHTTPServer
from typing import Any


class StandInHTTPServer(ThreadingHTTPServer):
    """A client that hangs up (after its own timeout, or resetting an idle keep-alive connection as it exits, as
    Node's fetch does) is normal here, not worth a traceback; any other error in a handler still prints one."""

    daemon_threads = True

    def handle_error(self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any) -> None:
        if isinstance(sys.exception(), ConnectionError):
            return
        super().handle_error(request, client_address)
