"""Local-mode benchmark: the real server over stdio against the bundled emulator's real-size answers, beside the floor
and the bare SDK, all measured in the same run on this machine.

- The floor: the least work any server must do with these answers, in-process over the same answer bodies: parse
  the JSON, base64-decode each image, write it to a new file. Beside it, the same with each image decoded to its
  last pixel (Pillow) before it is written, which a server that never saves a broken image must also do.
- This server's overhead per generate_image call (1024x1024 png, quality medium; n=1 and n=10): the MCP call's
  time minus the same request sent straight to the emulator with the openai SDK (its raw answer read whole, no
  parsing), so it is what the server adds: validation, decoding, checks, keeping the answer, metadata, saving,
  history, the job record, the MCP round trip; as configured by default (a 256 px preview per image, made from the
  decoded pixels), and with include_thumbnail=false.
- Spawn → tools/list of this server, and of a bare `MCPServer` with 12 trivial tools (`bench/bare_server.py`).
- The server process's peak RSS through the n=10 calls.

Each figure is printed with its ratio and the target (issue 11): n=1 overhead p50 ≤ 1.5× the floor, n=10 ≤ 1.3×,
spawn ≤ 1.1× the bare SDK, peak RSS ≤ 150 MB. Targets are printed, never asserted.

    .venv/bin/python bench/local_bench.py [--calls 30] [--spawns 8]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import statistics
import sys
import tempfile
import time
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


def server_rss_peak_mb(parent: int) -> float:
    """Peak RSS (VmHWM) of the child process running the server."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if f"PPid:\t{parent}\n" in status and b"local_sandbox.cli" in cmdline:
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    return float("nan")


async def upstream_ms(client: AsyncOpenAI, n: int) -> float:
    """The request as this server sends it (a single image streamed), its answer read whole and not parsed."""
    started = time.perf_counter()
    if n == 1:
        async with client.images.with_streaming_response.generate(**REQUEST, n=1, stream=True) as response:
            await response.read()
    else:
        await client.images.with_raw_response.generate(**REQUEST, n=n)
    return ms_since(started)


def floor_ms(body: bytes, folder: Path, runs: int, *, decode: bool) -> list[float]:
    """Parse the JSON, base64-decode each image (and decode its pixels), write it to a new file: in-process."""
    times = []
    for run in range(runs):
        started = time.perf_counter()
        for index, item in enumerate(json.loads(body)["data"]):
            data = base64.b64decode(item["b64_json"])
            if decode:
                Image.open(io.BytesIO(data)).load()
            with (folder / f"floor-{decode}-{len(body)}-{run}-{index}.png").open("xb") as handle:
                handle.write(data)
        times.append(ms_since(started))
    return times


async def spawn_ms(params: StdioServerParameters) -> float:
    started = time.perf_counter()
    async with Client(params) as client:
        await client.list_tools()
        return ms_since(started)


def verdict(ratio: float, target: float) -> str:
    return "met" if ratio <= target else "MISSED"


async def run(calls: int, spawns: int) -> None:
    with EmulatorServer() as emulator, tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": temp,
            "OPENAI_API_KEY": "sk-bench",
            "OPENAI_BASE_URL": emulator.base_url,
            "OPENAI_IMAGE_OUTPUT_DIR": f"{temp}/out",
            "HISTORY_DB_PATH": f"{temp}/state/history.db",
        }
        ours = StdioServerParameters(command=sys.executable, args=["-m", "local_sandbox.cli"], env=env, cwd=temp)
        bare = StdioServerParameters(command=sys.executable, args=[str(BENCH / "bare_server.py")], env=env, cwd=temp)
        spawn: dict[str, list[float]] = {"ours": [], "bare": []}
        for _ in range(spawns):  # interleaved, so both see the same machine load
            spawn["bare"].append(await spawn_ms(bare))
            spawn["ours"].append(await spawn_ms(ours))

        sdk = AsyncOpenAI(api_key="sk-bench", base_url=emulator.base_url, max_retries=0)
        (folder / "floor").mkdir()
        floors: dict[tuple[int, bool], list[float]] = {}
        overheads: dict[tuple[int, bool], list[float]] = {}
        sizes: dict[int, int] = {}
        async with Client(ours) as client:
            for n in (1, 10):
                body = (await sdk.images.with_raw_response.generate(**REQUEST, n=n)).http_response.content
                sizes[n] = len(body)
                for decode in (False, True):
                    floors[n, decode] = floor_ms(body, folder / "floor", calls, decode=decode)
                for previews in (True, False):
                    args = {"prompt": "bench", "sample_count": n, "size": "1024x1024", "quality": "medium"}
                    args["include_thumbnail"] = previews
                    assert not (await client.call_tool("generate_image", args)).is_error  # warm-up: first imports
                    await upstream_ms(sdk, n)
                    overheads[n, previews] = []
                    for _ in range(calls):
                        started = time.perf_counter()
                        result = await client.call_tool("generate_image", args)
                        call = ms_since(started)
                        assert not result.is_error, result.content
                        overheads[n, previews].append(call - await upstream_ms(sdk, n))
            rss = server_rss_peak_mb(os.getpid())
        await sdk.close()

    print(f"real-size answers: n=1 {sizes[1] / 1e6:.2f} MB of JSON, n=10 {sizes[10] / 1e6:.2f} MB ({calls} calls each)")
    for n in (1, 10):
        floor, decoded = statistics.median(floors[n, False]), statistics.median(floors[n, True])
        target = TARGETS[f"n{n}"]
        print(
            f"n={n:<2} floor p50 {floor:6.1f} ms; with every pixel decoded {decoded:6.1f} ms ({decoded / floor:4.2f}x)"
        )
        for previews, label in ((True, "previews (default)"), (False, "no previews")):
            times = overheads[n, previews]
            overhead = statistics.median(times)
            print(
                f"     overhead, {label:18} p50 {overhead:6.1f} ms (p95 {percentile(times, 0.95):6.1f}) = "
                f"{overhead / floor:4.2f}x the floor (target <= {target}x: {verdict(overhead / floor, target)}), "
                f"{overhead / decoded:4.2f}x the decoding floor"
            )
    ours_ms, bare_ms = statistics.median(spawn["ours"]), statistics.median(spawn["bare"])
    ratio = ours_ms / bare_ms
    print(
        f"spawn -> tools/list p50: this server {ours_ms:6.1f} ms, bare MCPServer with 12 tools {bare_ms:6.1f} ms = "
        f"{ratio:4.2f}x (target <= {TARGETS['spawn']}x: {verdict(ratio, TARGETS['spawn'])})"
    )
    print(
        f"server peak RSS through n=10: {rss:6.1f} MB (target <= {TARGETS['rss']:.0f}: {verdict(rss, TARGETS['rss'])})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--spawns", type=int, default=8)
    arguments = parser.parse_args()
    anyio.run(run, arguments.calls, arguments.spawns)


if __name__ == "__main__":
    main()
