"""Local-mode benchmark: the real server over stdio against the bundled emulator at 0 ms latency.

Prints spawn -> tools/list time, the server's overhead per generate_image call (n=1 and n=10,
1024x1024 png) at p50/p95, and the server process's peak RSS. Overhead = MCP call time minus the
same request sent straight to the emulator with the openai SDK (the upstream share), so it measures
what this server adds: validation, decoding, metadata, saving, history, the MCP round trip.

    .venv/bin/python bench/local_bench.py [--calls 40]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters
from openai import AsyncOpenAI

from local_sandbox.standins.emulator import EmulatorServer

TARGETS = {"spawn": 400.0, "n1": 10.0, "n10": 80.0, "rss": 150.0}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


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


async def direct_ms(base_url: str, n: int, calls: int) -> list[float]:
    client = AsyncOpenAI(api_key="sk-bench", base_url=base_url, max_retries=0)
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        await client.images.generate(model="gpt-image-2", prompt="bench", n=n, size="1024x1024", quality="medium")
        times.append((time.perf_counter() - started) * 1000)
    await client.close()
    return times


async def run(calls: int) -> None:
    with EmulatorServer() as emulator, tempfile.TemporaryDirectory() as folder:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": folder,
            "OPENAI_API_KEY": "sk-bench",
            "OPENAI_BASE_URL": emulator.base_url,
            "OPENAI_IMAGE_OUTPUT_DIR": f"{folder}/out",
            "HISTORY_DB_PATH": f"{folder}/history.db",
        }
        params = StdioServerParameters(command=sys.executable, args=["-m", "local_sandbox.cli"], env=env, cwd=folder)
        spawn = []
        for _ in range(5):
            started = time.perf_counter()
            async with Client(params) as client:
                await client.list_tools()
                spawn.append((time.perf_counter() - started) * 1000)
        figures: dict[str, tuple[float, float]] = {}
        rss = float("nan")
        async with Client(params) as client:
            for n in (1, 10):
                args = {"prompt": "bench", "sample_count": n, "size": "1024x1024", "quality": "medium"}
                await client.call_tool("generate_image", args)  # warm-up: first-call imports
                await direct_ms(emulator.base_url, n, 1)
                mcp_times, upstream, overhead = [], [], []
                for _ in range(calls):  # interleaved, so both see the same machine load
                    started = time.perf_counter()
                    result = await client.call_tool("generate_image", args)
                    mcp_times.append((time.perf_counter() - started) * 1000)
                    assert not result.is_error, result.content
                    upstream += await direct_ms(emulator.base_url, n, 1)
                    overhead.append(mcp_times[-1] - upstream[-1])
                figures[f"n{n}"] = (statistics.median(overhead), percentile(overhead, 0.95))
                print(
                    f"generate_image n={n:<2} MCP call p50 {statistics.median(mcp_times):7.1f} ms  "
                    f"upstream-only p50 {statistics.median(upstream):7.1f} ms"
                )
            rss = server_rss_peak_mb(os.getpid())
    print(f"spawn -> tools/list  p50 {statistics.median(spawn):7.1f} ms  (target <= {TARGETS['spawn']:.0f})")
    for key in ("n1", "n10"):
        p50, p95 = figures[key]
        print(f"overhead {key:<4}        p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  (target p50 <= {TARGETS[key]:.0f})")
    print(f"server peak RSS      {rss:7.1f} MB  (target <= {TARGETS['rss']:.0f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=30)
    anyio.run(run, parser.parse_args().calls)


if __name__ == "__main__":
    main()
