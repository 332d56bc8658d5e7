"""Local-mode benchmark: the real server over stdio against the bundled emulator's real-size answers, beside the floor
and the bare SDK, all measured in the same run on this machine.

- The floor: the least work any server must do with these answers, in-process over the same answer bodies: parse
  the JSON, base64-decode each image, write it to a new file. Beside it, the same with each image decoded to its
  last pixel (Pillow) before it is written, which a server that never saves a broken image must also do. Measured
  between the server's calls, so both meet the same disk state (run back to back, n=10's 13 MB per run of writes
  filled the page cache and throttled the floor: 62 ms in one run, 197 ms in the next).
- This server's overhead per generate_image call (1024x1024 png, quality medium; n=1 and n=10): the MCP call's
  time minus the same request sent straight to the emulator with the openai SDK (its raw answer read whole, no
  parsing), so it is what the server adds: validation, decoding, checks, keeping the answer, metadata, saving,
  history, the job record, the MCP round trip; as configured by default (a 256 px preview per image, made from the
  decoded pixels), and with include_thumbnail=false.
- Spawn → tools/list of this server, and of a bare `MCPServer` with 12 trivial tools (`bench/bare_server.py`).
- The server process's peak RSS through the n=10 calls.
- With `--before DIR`, the same for another checkout (a git worktree of an earlier commit), calls interleaved with
  this server's, so before and after come from the same run.

Each figure is printed with its ratio and the target (issue 11): n=1 overhead p50 ≤ 1.5× the floor, n=10 ≤ 1.3×,
spawn ≤ 1.1× the bare SDK, peak RSS ≤ 150 MB. Targets are printed, never asserted.

    .venv/bin/python bench/local_bench.py [--calls 30] [--spawns 8] [--before /path/to/older/checkout]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from openai import AsyncOpenAI
from PIL import Image

from local_sandbox.standins.emulator import EmulatorServer

BENCH = Path(__file__).resolve().parent
REQUEST: dict[str, Any] = {"model": "gpt-image-2", "prompt": "bench", "size": "1024x1024", "quality": "medium"}
TARGETS = {"n1": 1.5, "n10": 1.3, "spawn": 1.1, "rss": 150.0}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def server_rss_peak_mb(parent: int, marker: str) -> float:
    """Peak RSS (VmHWM) of the child process running a server: the one whose environment holds `marker`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if f"PPid:\t{parent}\n" in status and marker.encode() in environ:
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Server:
    """A server under test: this checkout, or another one (`--before`) for figures from the same run."""

    label: str
    params: StdioServerParameters
    marker: str  # its history database: in its environment, so its process can be found
    spawn: list[float] = field(default_factory=list)
    overheads: dict[tuple[int, bool], list[float]] = field(default_factory=dict)
    rss: float = float("nan")


def server(label: str, folder: Path, base_url: str, checkout: Path | None) -> Server:
    folder.mkdir()
    database = f"{folder}/state/history.db"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(folder),
        "OPENAI_API_KEY": "sk-bench",
        "OPENAI_BASE_URL": base_url,
        "OPENAI_IMAGE_OUTPUT_DIR": f"{folder}/out",
        "HISTORY_DB_PATH": database,
    }
    if checkout is not None:  # its packages before this checkout's editable install
        env["PYTHONPATH"] = f"{checkout / 'functions'}{os.pathsep}{checkout}"
    params = StdioServerParameters(command=sys.executable, args=["-m", "local_sandbox.cli"], env=env, cwd=str(folder))
    return Server(label, params, database)


async def upstream_ms(client: AsyncOpenAI, n: int) -> float:
    """The request as this server sends it (a single image streamed), its answer read whole and not parsed."""
    started = time.perf_counter()
    if n == 1:
        async with client.images.with_streaming_response.generate(**REQUEST, n=1, stream=True) as response:
            await response.read()
    else:
        await client.images.with_raw_response.generate(**REQUEST, n=n)
    return ms_since(started)


def floor_ms(body: bytes, folder: Path, *, decode: bool) -> float:
    """Parse the JSON, base64-decode each image (and decode its pixels), write it to a new file: in-process."""
    started = time.perf_counter()
    for data in (base64.b64decode(item["b64_json"]) for item in json.loads(body)["data"]):
        if decode:
            Image.open(io.BytesIO(data)).load()
        with (folder / f"floor-{uuid.uuid4().hex}.png").open("xb") as handle:
            handle.write(data)
    return ms_since(started)


async def spawn_ms(params: StdioServerParameters) -> float:
    started = time.perf_counter()
    async with Client(params) as client:
        await client.list_tools()
        return ms_since(started)


def verdict(ratio: float, target: float) -> str:
    return "met" if ratio <= target else "MISSED"


async def run(calls: int, spawns: int, before: Path | None) -> None:
    with EmulatorServer() as emulator, tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        servers = [server("this server", folder / "this", emulator.base_url, None)]
        if before is not None:
            servers.append(server(f"before ({before.name})", folder / "before", emulator.base_url, before))
        env = servers[0].params.env
        bare = StdioServerParameters(command=sys.executable, args=[str(BENCH / "bare_server.py")], env=env, cwd=temp)
        bare_spawn: list[float] = []
        for _ in range(spawns):  # interleaved, so all see the same machine load
            bare_spawn.append(await spawn_ms(bare))
            for each in servers:
                each.spawn.append(await spawn_ms(each.params))

        sdk = AsyncOpenAI(api_key="sk-bench", base_url=emulator.base_url, max_retries=0)
        (folder / "floor").mkdir()
        floors: dict[tuple[int, bool], list[float]] = {}
        sizes: dict[int, int] = {}
        async with contextlib.AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(Client(each.params)) for each in servers]
            for n in (1, 10):
                body = (await sdk.images.with_raw_response.generate(**REQUEST, n=n)).http_response.content
                sizes[n] = len(body)
                floors[n, False], floors[n, True] = [], []
                for previews in (True, False):
                    args = {"prompt": "bench", "sample_count": n, "size": "1024x1024", "quality": "medium"}
                    args["include_thumbnail"] = previews
                    for each, client in zip(servers, clients, strict=True):
                        assert not (await client.call_tool("generate_image", args)).is_error  # warm-up: imports
                        each.overheads[n, previews] = []
                    await upstream_ms(sdk, n)
                    for _ in range(calls):
                        for decode in (False, True):  # between the calls, so the floor meets the same disk state
                            floors[n, decode].append(floor_ms(body, folder / "floor", decode=decode))
                        for each, client in zip(servers, clients, strict=True):
                            started = time.perf_counter()
                            result = await client.call_tool("generate_image", args)
                            call = ms_since(started)
                            assert not result.is_error, result.content
                            each.overheads[n, previews].append(call - await upstream_ms(sdk, n))
            for each in servers:
                each.rss = server_rss_peak_mb(os.getpid(), each.marker)
        await sdk.close()

    print(f"real-size answers: n=1 {sizes[1] / 1e6:.2f} MB of JSON, n=10 {sizes[10] / 1e6:.2f} MB ({calls} calls each)")
    for n in (1, 10):
        floor, decoded = statistics.median(floors[n, False]), statistics.median(floors[n, True])
        target = TARGETS[f"n{n}"]
        print(
            f"n={n:<2} floor p50 {floor:6.1f} ms; with every pixel decoded {decoded:6.1f} ms ({decoded / floor:4.2f}x)"
        )
        for each in servers:
            for previews, label in ((True, "previews (default)"), (False, "no previews")):
                times = each.overheads[n, previews]
                overhead = statistics.median(times)
                print(
                    f"     {each.label}, {label:18} overhead p50 {overhead:6.1f} ms (p95 "
                    f"{percentile(times, 0.95):6.1f}) = {overhead / floor:5.2f}x the floor (target <= {target}x: "
                    f"{verdict(overhead / floor, target)}), {overhead / decoded:4.2f}x the decoding floor"
                )
    bare_ms = statistics.median(bare_spawn)
    print(f"spawn -> tools/list p50: bare MCPServer with 12 tools {bare_ms:6.1f} ms")
    for each in servers:
        ours_ms = statistics.median(each.spawn)
        ratio, target = ours_ms / bare_ms, TARGETS["spawn"]
        print(f"     {each.label} {ours_ms:6.1f} ms = {ratio:4.2f}x (target <= {target}x: {verdict(ratio, target)})")
    for each in servers:
        target = TARGETS["rss"]
        ok = verdict(each.rss, target)
        print(f"peak RSS through n=10, {each.label}: {each.rss:6.1f} MB (target <= {target:.0f}: {ok})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--spawns", type=int, default=8)
    parser.add_argument(
        "--before",
        type=Path,
        help="another checkout (e.g. a git worktree of an earlier commit) measured in the same run",
    )
    arguments = parser.parse_args()
    anyio.run(run, arguments.calls, arguments.spawns, arguments.before)


if __name__ == "__main__":
    main()
