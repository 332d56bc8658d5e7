"""The official MCP conformance suite (npm `@modelcontextprotocol/conformance`) against this server, as CI runs it.

    .venv/bin/python .ci/conformance.py --node DIR --suite stable=DIR --suite next=DIR

`.ci/run` installs the suite's latest stable release and its newest pre-release, and a Node new enough for them,
with npm (paths given here). Two servers are checked, both on loopback and both started and stopped here by pid or
in process: `gpt-image-mcp --transport http --emulator`, and the remote shape (the Lambda handler behind the API
Gateway stand-in, moto, the emulator) reached through a small proxy that adds its bearer token, since the suite
sends no Authorization header of its own.

Each suite runs its active scenarios, and a pre-release also the scenarios the 2026-07-28 revision requires. The
scenarios that do not apply to this server are listed below with their reasons (most call the fixture tools,
prompts and resources of the suite's own reference server); they become the suite's expected-failures baseline, so
every other scenario must pass, and a listed one that starts to pass fails the run too: the list stays true.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

START_WITHIN = 60.0
REVISION = "2026-07-28"
FIXTURE_TOOL = "calls a fixture tool of the suite's reference server, which this server does not have"
NOT_APPLICABLE = {
    "logging-set-level": "no logging capability: logs go to stderr or CloudWatch (MCP logging is deprecated)",
    "completion-complete": "no completions capability (no prompt or template argument to complete)",
    "tools-call-image": FIXTURE_TOOL,
    "tools-call-audio": FIXTURE_TOOL,
    "tools-call-embedded-resource": FIXTURE_TOOL,
    "tools-call-mixed-content": FIXTURE_TOOL,
    "tools-call-with-logging": FIXTURE_TOOL,
    "tools-call-with-progress": FIXTURE_TOOL,
    "tools-call-sampling": FIXTURE_TOOL,
    "tools-call-elicitation": FIXTURE_TOOL,
    "elicitation-sep1034-defaults": FIXTURE_TOOL,
    "elicitation-sep1330-enums": FIXTURE_TOOL,
    "json-schema-2020-12": FIXTURE_TOOL,
    "server-stateless": f"two of its checks need test_missing_capability; {FIXTURE_TOOL}",
    "http-custom-header-server-validation": "no tool takes x-mcp-header parameters",
    "resources-read-text": "reads the reference server's fixture resources (test://...); this server's images are "
    "read in tests/integration/test_resources.py and tests/remote/test_remote_resources.py",
    "resources-read-binary": "reads a fixture resource (see resources-read-text)",
    "resources-templates-read": "reads a fixture template (see resources-read-text)",
    "resources-subscribe": "no resource subscriptions (the remote deployment cannot hold a stream open)",
    "resources-unsubscribe": "no resource subscriptions",
    "prompts-get-simple": "no prompts",
    "prompts-get-with-args": "no prompts",
    "prompts-get-embedded-resource": "no prompts",
    "prompts-get-with-image": "no prompts",
    **{
        f"input-required-result-{name}": "fixture tools and prompts that ask for input; this server asks for none"
        for name in (
            "basic-elicitation",
            "basic-sampling",
            "basic-list-roots",
            "request-state",
            "multiple-input-requests",
            "multi-round",
            "non-tool-request",
            "result-type",
            "tampered-state",
            "capability-check",
            "missing-input-response",
            "validate-input",
        )
    },
    **{
        f"tasks-{name}": "drives the reference server's fixture task tools (slow_compute, failing_job, ...); this "
        "server runs its image tools as tasks, tested in tests/tasks"
        for name in (
            "lifecycle",
            "capability-negotiation",
            "wire-fields",
            "request-state-removal",
            "mrtr-input",
            "request-headers",
            "dispatch-and-envelope",
            "required-task-error",
            "mrtr-composition",
        )
    },
}
# The remote deployment is stateless: a 2025-era client gets no session id (2026-07-28 has no sessions at all).
REMOTE_2025_NOT_APPLICABLE = {"server-sse-multiple-streams": "stateless deployment: no session to open streams in"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_listening(port: int, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + START_WITHIN
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if process is not None and process.poll() is not None:
                raise SystemExit(f"the server ended before it listened (status {process.returncode})") from None
            if time.monotonic() > deadline:
                raise SystemExit(f"nothing listens on port {port} after {START_WITHIN:.0f} s") from None
            time.sleep(0.1)


@contextlib.contextmanager
def local_server(home: Path) -> Iterator[str]:
    """`gpt-image-mcp --transport http --emulator` in a folder of its own; stopped by its pid."""
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "OPENAI_IMAGE_OUTPUT_DIR": str(home / "images"),
        "HISTORY_DB_PATH": str(home / "history.db"),
    }
    command = [str(Path(sys.executable).parent / "gpt-image-mcp"), "--transport", "http", "--emulator"]
    process = subprocess.Popen([*command, "--port", str(port)], env=env, cwd=home, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, process)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class BearerProxy(ThreadingHTTPServer):
    """Forwards every request to `target` with `Authorization: Bearer <token>` added; the rest is passed as sent
    (the Host header too, so the DNS-rebinding checks still reach the server)."""

    daemon_threads = True

    def __init__(self, port: int, target: str, token: str) -> None:
        super().__init__(("127.0.0.1", port), _Forward)
        self.target = urlsplit(target)
        self.token = token


class _Forward(BaseHTTPRequestHandler):
    server: BearerProxy
    protocol_version = "HTTP/1.1"

    def _forward(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {name: value for name, value in self.headers.items() if name.lower() != "authorization"}
        headers["Authorization"] = f"Bearer {self.server.token}"
        target = self.server.target
        connection = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=120)
        try:
            connection.request(self.command, self.path, body=body, headers=headers)
            answer = connection.getresponse()
            data = answer.read()
        finally:
            connection.close()
        self.send_response_only(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = do_OPTIONS = _forward

    def log_message(self, format: str, *args: object) -> None:
        return None


@contextlib.contextmanager
def remote_shape() -> Iterator[str]:
    """The remote shape, with the proxy's address among its allowed hosts; the proxy's MCP URL."""
    from local_sandbox.standins.remote_shape import RemoteShape

    port = free_port()
    with RemoteShape(extra_env={"MCP_ALLOWED_HOSTS": f"127.0.0.1:{port},localhost:{port}"}) as shape:
        proxy = BearerProxy(port, shape.mcp_url, shape.token)
        thread = threading.Thread(target=proxy.serve_forever, name="bearer-proxy", daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{port}{urlsplit(shape.mcp_url).path}"
        finally:
            proxy.shutdown()
            proxy.server_close()
            thread.join()


def baseline(path: Path, scenarios: dict[str, str]) -> Path:
    """The suite's expected-failures file: one scenario per line (reasons stay here, in NOT_APPLICABLE)."""
    path.write_text("server:\n" + "".join(f"  - {name}\n" for name in sorted(scenarios)), encoding="utf-8")
    return path


def run_suite(node: Path, package: Path, url: str, out: Path, expected: Path, *extra: str) -> bool:
    """One run of the suite; True when every scenario passed, or failed as the baseline expects."""
    cli = package / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
    command = [str(node / "node"), str(cli), "server", "--url", url, "--expected-failures", str(expected)]
    print(f"\n$ conformance ({package.name}) server --url {url} {' '.join(extra)}", flush=True)
    done = subprocess.run([*command, "-o", str(out), *extra], check=False)
    return done.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--node", type=Path, required=True, help="folder holding the node binary")
    parser.add_argument("--suite", action="append", required=True, help="NAME=FOLDER of an installed suite")
    args = parser.parse_args()
    suites = [(name, Path(folder)) for name, _, folder in (item.partition("=") for item in args.suite)]
    results: list[tuple[str, bool]] = []
    with tempfile.TemporaryDirectory(prefix="conformance-") as scratch:
        work = Path(scratch)
        (work / "local").mkdir()
        servers = [("local", local_server(work / "local"), {}), ("remote", remote_shape(), REMOTE_2025_NOT_APPLICABLE)]
        for label, server, legacy_only in servers:
            with server as url:
                for name, package in suites:
                    runs = [()] if name == "stable" else [(), ("--requirements", REVISION)]
                    for extra in runs:
                        what = f"{label} server, {name} suite {' '.join(extra)}".strip()
                        skipped = NOT_APPLICABLE if extra else NOT_APPLICABLE | legacy_only
                        expected = baseline(work / f"expected-{len(results)}.yaml", skipped)
                        out = work / f"run-{len(results)}"
                        results.append((what, run_suite(args.node, package, url, out, expected, *extra)))
    print("\nMCP conformance:")
    for what, passed in results:
        print(f"  {'passed' if passed else 'FAILED'}: {what}")
    return 0 if all(passed for _, passed in results) else 1


if __name__ == "__main__":
    sys.exit(main())
