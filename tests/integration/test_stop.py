"""A clean stop: SIGINT (Ctrl-C) and SIGTERM end the real `gpt-image-mcp` process, stdio and HTTP, with no
traceback; a job running at that moment is handed back, and the next start resumes it at once.

The server runs as a subprocess speaking stdio (JSON-RPC lines, 2026-07-28 requests need no handshake) against the
session's emulator; the tests wait on events (the emulator holding the request) and on the process's exit.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stdio_support import emulator_params
from waiting import wait_until

from local_sandbox.local_server import LOCAL_USER
from local_sandbox.serving import warn_if_exposed
from local_sandbox.sqlite_jobs import SQLiteJobStore
from local_sandbox.standins.emulator import EmulatorServer

EXIT_WITHIN = 20.0  # a failure guard only: the stop itself takes a fraction of a second
META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "stop-tests", "version": "0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


@pytest.fixture
def launch(tmp_path: Path, emulator: EmulatorServer) -> Iterator[Any]:
    """Start `gpt-image-mcp` with the given arguments (stdin, stdout and stderr piped); every one is ended after."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> subprocess.Popen[bytes]:
        params = emulator_params(tmp_path, emulator)
        process = subprocess.Popen(
            [params.command, *params.args, *args],
            env=params.env,
            cwd=params.cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def request(process: subprocess.Popen[bytes], method: str, params: dict[str, Any]) -> dict[str, Any]:
    assert process.stdin is not None and process.stdout is not None
    message = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, "_meta": META}}
    process.stdin.write(json.dumps(message).encode() + b"\n")
    process.stdin.flush()
    answer: dict[str, Any] = json.loads(process.stdout.readline())
    assert "result" in answer, answer
    return answer["result"]  # type: ignore[no-any-return]


def stopped(process: subprocess.Popen[bytes], signum: signal.Signals, said: str) -> None:
    """Send `signum`, wait for the exit, and insist it was clean: status 0, `said` on stderr, no traceback."""
    process.send_signal(signum)
    assert process.wait(timeout=EXIT_WITHIN) == 0
    assert process.stderr is not None
    errors = process.stderr.read().decode(errors="replace")
    assert "Traceback" not in errors, errors
    assert said in errors, errors


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_stdio_server_and_the_next_start_resumes_its_job(
    launch: Any, emulator: EmulatorServer, tmp_path: Path, signum: signal.Signals
) -> None:
    gate = emulator.hold()
    first = launch()
    started = request(
        first,
        "tools/call",
        {"name": "start_generation_job", "arguments": {"tool_name": "generate_image", "prompt": "stop me"}},
    )
    job_id = started["structuredContent"]["job_id"]
    assert gate.arrived.wait(EXIT_WITHIN)  # the job is running: its request is at OpenAI

    stopped(first, signum, f"{signum.name}: stopping")
    gate.release()
    store = SQLiteJobStore(tmp_path / "state" / "history.db")
    try:
        handed_back = store.get(LOCAL_USER, job_id)
        assert handed_back is not None
        assert (handed_back.status, handed_back.lease_owner, handed_back.attempts) == ("pending", None, 0)

        second = launch()  # resumes the job at once, on start
        wait_until(lambda: (store.get(LOCAL_USER, job_id) or handed_back).status == "completed")
        stopped(second, signal.SIGTERM, "SIGTERM: stopping")
    finally:
        store.close()
    assert (tmp_path / "out").is_dir() and len(list((tmp_path / "out").iterdir())) == 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_http_server(launch: Any, signum: signal.Signals) -> None:
    port = free_port()
    server = launch("--transport", "http", "--port", str(port))
    assert server.stderr is not None
    while b"Uvicorn running" not in (line := server.stderr.readline()):  # the server says when it listens
        assert line, "the server ended before it listened"
    stopped(server, signum, "Application shutdown complete")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


@pytest.mark.parametrize(
    ("host", "warned"),
    [("0.0.0.0", True), ("192.168.1.20", True), ("my-laptop.local", True), ("127.0.0.1", False), ("127.0.0.2", False),
     ("localhost", False), ("::1", False), ("[::1]", False)],
)  # fmt: skip
def test_http_beyond_loopback_is_warned_about(host: str, warned: bool, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="local_sandbox.serving"):
        warn_if_exposed(host)
    expected = f"serving on {host}: the local HTTP server has no authentication; anyone who can reach this address"
    assert any(expected in record.getMessage() for record in caplog.records) is warned
