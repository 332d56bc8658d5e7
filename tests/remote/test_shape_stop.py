"""`gpt-image-mcp-remote` stops all its parts on Ctrl-C (or SIGTERM): the MCP front, the OpenAI emulator and moto
all stop listening, the process exits 0, and nothing is printed as a traceback."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys

import pytest

EXIT_WITHIN = 60.0  # a failure guard only


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_every_part_of_the_remote_shape(signum: signal.Signals) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "local_sandbox.standins.remote_shape"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        printed = ""
        while "OpenAI emulator:" not in printed:  # the last line of what it prints once everything runs
            line = process.stdout.readline().decode()
            assert line, f"the shape ended before it ran: {process.stderr.read().decode()}"
            printed += line
        ports = [int(port) for port in re.findall(r"http://127\.0\.0\.1:(\d+)", printed)]
        assert len(set(ports)) == 3, printed  # the MCP front, moto, the emulator

        process.send_signal(signum)
        assert process.wait(timeout=EXIT_WITHIN) == 0
        errors = process.stderr.read().decode(errors="replace")
        assert "Traceback" not in errors, errors
        for port in set(ports):
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
