"""Running the real server as a subprocess over stdio, and the disks it can be given: full, read-only, forbidden.

Full and read-only disks are small tmpfs mounts, which need root (CI runs as root); elsewhere those tests skip with
the reason. A folder the server may not write is owned by another user; as root the server then runs without the
capabilities that let root write anywhere (`setpriv`), so the kernel refuses it as it would refuse anyone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from mcp import StdioServerParameters

from local_sandbox.standins.emulator import EmulatorServer

NOBODY = 65534
ROOT_POWERS = "-dac_override,-dac_read_search"  # what lets root read and write files regardless of their modes


def server_params(tmp_path: Path, *args: str, **env: str) -> StdioServerParameters:
    """Run `gpt-image-mcp` with a clean environment confined to tmp_path (no .env, no real key)."""
    base = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path / "home"),
        "OPENAI_IMAGE_OUTPUT_DIR": str(tmp_path / "out"),
        "HISTORY_DB_PATH": str(tmp_path / "state" / "history.db"),
    }
    return StdioServerParameters(
        command=sys.executable, args=["-m", "local_sandbox.cli", *args], env={**base, **env}, cwd=str(tmp_path)
    )


def emulator_params(tmp_path: Path, emulator: EmulatorServer, **env: str) -> StdioServerParameters:
    """`server_params` pointed at the emulator, with a test key."""
    return server_params(tmp_path, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=emulator.base_url, **env)


def as_ordinary_user(params: StdioServerParameters) -> StdioServerParameters:
    """The same server, bound by file permissions even when the tests run as root."""
    if os.geteuid() != 0:
        return params
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv (util-linux): cannot make the server obey file permissions")
    command = [setpriv, "--bounding-set", ROOT_POWERS, "--", params.command, *params.args]
    return params.model_copy(update={"command": command[0], "args": command[1:]})


def forbidden_folder(path: Path) -> Path:
    """A folder that exists but belongs to someone else, readable and not writable for the server."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(path, NOBODY, NOBODY)
    path.chmod(0o555)
    return path


@contextmanager
def small_disk(path: Path, megabytes: int) -> Iterator[Path]:
    """A tmpfs of `megabytes` mounted at `path` for the block; skips when this process cannot mount one."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a full or read-only disk is a small tmpfs mount, which needs root (CI runs as root)")
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m,mode=0755", "tmpfs", str(path)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount(path: Path, mode: str) -> None:
    """Make a `small_disk` read-only ("ro") or writable again ("rw")."""
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True)


def fill(disk: Path) -> Path:
    """Take every free byte of `disk` with one file; returns it (delete it to free the space)."""
    filler = disk / "filler.bin"
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * (256 * 1024))
                handle.flush()
        except OSError:
            pass
    return filler
