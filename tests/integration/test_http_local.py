"""`gpt-image-mcp --transport http`: the SDK client over streamable HTTP on loopback, both eras."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client

from local_sandbox.standins.emulator import EmulatorServer

pytestmark = pytest.mark.anyio


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def http_server(tmp_path: Path, emulator: EmulatorServer) -> Iterator[str]:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": emulator.base_url,
        "OPENAI_IMAGE_OUTPUT_DIR": str(tmp_path / "out"),
        "HISTORY_DB_PATH": str(tmp_path / "history.db"),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "local_sandbox.cli", "--transport", "http", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start: {process.stderr.read()!r}") from None  # type: ignore[union-attr]
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_generate_over_local_http(http_server: str, tmp_path: Path, mode: str) -> None:
    async with Client(http_server, mode=mode) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        result = await client.call_tool("generate_image", {"prompt": "over http", "output_path": f"{mode}.png"})
        history = await client.call_tool("list_history", {"limit": 5})
    assert "generate_image" in names
    assert not result.is_error, result.content
    assert (tmp_path / "out" / f"{mode}.png").is_file()
    assert history.structured_content is not None and history.structured_content["total"] == 1
