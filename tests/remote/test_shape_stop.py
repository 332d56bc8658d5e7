"""`gpt-image-mcp-remote` as a person runs it: what it prints is enough to connect a client and to manage API keys
from another terminal, --token keeps a client's line valid across restarts, it says what to install when the extras
are missing, and Ctrl-C (or SIGTERM) stops all its parts: the MCP front, the OpenAI emulator and moto stop listening,
the process exits 0, and nothing is printed as a traceback."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

EXIT_WITHIN = 60.0  # a failure guard only
TOKEN = "gim_0123456789ab_" + "k" * 43


@contextmanager
def running(*args: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """The command, once it printed everything (its last line names the emulator); killed if still alive after."""
    process = subprocess.Popen(
        [sys.executable, "-m", "local_sandbox.standins.remote_shape", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        printed = ""
        while "OpenAI emulator:" not in printed:
            line = process.stdout.readline().decode()
            assert line, f"the shape ended before it ran: {process.stderr.read().decode()}"
            printed += line
        yield process, printed
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_every_part_of_the_remote_shape(signum: signal.Signals) -> None:
    with running() as (process, printed):
        ports = [int(port) for port in re.findall(r"http://127\.0\.0\.1:(\d+)", printed)]
        assert len(set(ports)) >= 3, printed  # the MCP front, moto, the emulator (and the Cognito stand-in)

        process.send_signal(signum)
        assert process.wait(timeout=EXIT_WITHIN) == 0
        assert process.stderr is not None
        errors = process.stderr.read().decode(errors="replace")
        assert "Traceback" not in errors, errors
        for port in set(ports):
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_the_printed_lines_connect_a_client_and_manage_keys(tmp_path: Path) -> None:
    with running("--token", TOKEN, "--user", "ada") as (process, printed):
        assert f"Bearer token: {TOKEN}  (user 'ada')" in printed
        assert f'--header "Authorization: Bearer {TOKEN}"' in printed
        exported = dict(re.findall(r"^  export ([A-Z_]+)=(\S+)$", printed, re.MULTILINE))
        assert {"AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "API_KEYS_TABLE"} <= set(exported)
        keys = subprocess.run(
            [sys.executable, "-m", "gpt_image_mcp.aws.keys_cli", "list", "--user", "ada"],
            env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), **exported},
            capture_output=True,
            text=True,
            timeout=EXIT_WITHIN,
        )
        assert keys.returncode == 0, keys.stderr
        assert keys.stdout.startswith("0123456789ab  active"), keys.stdout
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=EXIT_WITHIN) == 0


def test_a_malformed_token_is_refused_with_its_shape() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "local_sandbox.standins.remote_shape", "--token", "secret"],
        capture_output=True,
        text=True,
        timeout=EXIT_WITHIN,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("gpt-image-mcp-remote: --token: an API key is gim_, 12 lowercase hex digits")


def test_without_the_extras_it_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['moto'] = None; sys.modules['mangum'] = None\n"
        "from local_sandbox.standins.remote_shape import main\n"
        "sys.exit(main([]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=EXIT_WITHIN)
    assert done.returncode == 2
    assert done.stderr == (
        "gpt-image-mcp-remote: moto, mangum are not installed: the remote shape needs the aws and dev extras. "
        "In the checkout: .venv/bin/pip install -e '.[aws,dev]'\n"
    )


async def call(url: str, token: str, tool: str, arguments: dict[str, object]) -> dict[str, object]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def test_a_state_dir_keeps_images_history_and_the_client_line_across_restarts(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with running("--state-dir", str(state)) as (process, first):
        url = re.search(r"MCP URL:\s+(\S+)", first)[1]  # type: ignore[index]
        token = re.search(r"Bearer token: (\S+)", first)[1]  # type: ignore[index]
        made = anyio.run(
            call, url, token, "generate_image", {"prompt": "kept", "quality": "low", "output_path": "k.png"}
        )
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=EXIT_WITHIN) == 0

    with running("--state-dir", str(state)) as (process, second):
        client_line = next(line for line in first.splitlines() if line.startswith("Claude Code:"))
        assert client_line in second  # same URL, same key
        record = anyio.run(call, url, token, "get_history_by_uuid", {"uuid": made["history_id"]})
        [image] = record["images"]  # type: ignore[misc]
        assert image["key"] == "k.png"
        assert urllib.request.urlopen(image["link"], timeout=30).read().startswith(b"\x89PNG")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=EXIT_WITHIN) == 0
