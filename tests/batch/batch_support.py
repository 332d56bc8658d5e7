"""Running `gpt-image-mcp batch` as a user does: a subprocess with its own environment, confined to a temp folder,
talking to the test's emulator; its stderr read line by line, so a test waits for what the command says, not for time.
"""

from __future__ import annotations

import io
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from local_sandbox.standins.emulator import EmulatorServer

WAIT_SECONDS = 60.0  # a safety net for a command that never says what the test waits for; never a latency bound


def batch_env(tmp_path: Path, emulator: EmulatorServer | None, **extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path / "home"),
        "OPENAI_IMAGE_OUTPUT_DIR": str(tmp_path / "out"),
        "HISTORY_DB_PATH": str(tmp_path / "state" / "history.db"),
    }
    if emulator is not None:
        env |= {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": emulator.base_url}
    return env | extra


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "local_sandbox.cli", "batch", *args]


def run_batch(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the command to its end (stdin closed, stderr not a terminal: counted lines)."""
    return subprocess.run(
        command(*args), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=WAIT_SECONDS * 3
    )


class RunningBatch:
    """The command in the background; `wait_for` blocks until its stderr says something."""

    def __init__(self, tmp_path: Path, env: dict[str, str], *args: str) -> None:
        self.process = subprocess.Popen(
            command(*args),
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._fresh: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
            self._fresh.put(line.rstrip("\n"))
        self._fresh.put(None)

    def wait_for(self, pattern: str) -> str:
        """The first stderr line (from now on) matching `pattern`; fails if the command ends without one."""
        while True:
            line = self._fresh.get(timeout=WAIT_SECONDS)
            if line is None:
                raise AssertionError(
                    f"the command ended without a line matching {pattern!r}:\n" + "\n".join(self.lines)
                )
            if re.search(pattern, line):
                return line

    def interrupt(self) -> None:
        self.process.send_signal(signal.SIGINT)

    def finish(self) -> tuple[int, str, str]:
        """Wait for the end: exit status, stdout, all of stderr."""
        assert self.process.stdout is not None
        self.process.wait(timeout=WAIT_SECONDS)  # the table on stdout is far smaller than a pipe's buffer
        stdout = self.process.stdout.read()  # not communicate(): it would read stderr too, racing the reader
        self._reader.join(timeout=WAIT_SECONDS)
        return self.process.returncode, stdout, "\n".join(self.lines)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=WAIT_SECONDS)


def write_batch(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return path


def png(path: Path, width: int = 1024, height: int = 1024, *, transparent: bool = False) -> Path:
    """A PNG input (a transparent one serves as a mask: every pixel may change)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    mode, colour = ("RGBA", (0, 0, 0, 0)) if transparent else ("RGB", (40, 90, 160))
    Image.new(mode, (width, height), colour).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return path


def images_in(folder: Path, *, leave_out: Sequence[str] = ()) -> list[str]:
    """The files under `folder`, relative, sorted (inputs left out)."""
    if not folder.exists():
        return []
    names = [path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()]
    return sorted(name for name in names if name not in leave_out)
