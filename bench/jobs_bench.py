"""Throughput of background jobs: the local runner vs the emulated SQS worker, against an OpenAI emulator that takes
`--latency-ms` per image call (a stand-in for generation time).

    .venv/bin/python bench/jobs_bench.py [--jobs 100] [--latency-ms 500] [--concurrency 10] [--batch-size 5]

For each mode, `--jobs` jobs are started first (the time that takes is printed apart), then the workers are let go and
the clock runs until the last job is completed. Ideal = ceil(jobs / concurrency) x latency: what perfectly packed
waves of calls would take. Target: within 1.2 x ideal, and exactly 1.0 upstream calls per job (the emulator's log).

* local: `LocalJobRunner(concurrency)` + SQLite, as the stdio server runs jobs.
* sqs: moto's queue + `SqsDriver` (the event source) + `WorkerFunction` (the Lambda handler) + DynamoDB/S3 in
  moto; concurrency = containers x batch size (each container runs its batch's records at once). moto runs in a
  process of its own, as AWS is not in the worker's process.

The AWS calls of the SQS path are counted from botocore's events and printed per job, by caller and operation. A
job's worker makes 8 in its critical path when it takes less than a poll (read, claim, the kept answer, the cancel
checkpoint, the image, the history row, complete, dropping the kept answer); a longer one adds a cancel check per
poll (JOBS_POLL_SECONDS) and one progress write per poll in which it reported progress. The MCP function adds 2
(the row, the message) and the event source about 0.4 (a receive and a delete per batch).

The CPU columns say where the SQS path's extra time goes: every AWS call costs about 1.3 ms of botocore CPU here and
2-2.5 ms of moto's, all on two interpreters that the 10 jobs of a wave share, and a wave cannot end before its
slowest job (a container returns a batch whole). That costs about 0.45 s per wave of 10 jobs whatever the latency
(about 1.3 x ideal at 2000 ms, 1.9-2 x at 500 ms); real DynamoDB and S3 answer in a few ms each with no CPU of ours
but the client's, and real image calls take 10-60 s.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from gpt_image_mcp.core.jobs import JobService
from gpt_image_mcp.core.requests import GenerateImageArgs
from gpt_image_mcp.entry.compose import AwsServices
from local_sandbox.settings import LocalSettings
from local_sandbox.standins.emulator import EmulatorServer

USER = "bench-user"
IMAGE_PATHS = ("/v1/images/generations", "/v1/images/edits")


def process_cpu(pid: int | None = None) -> float:
    """CPU seconds (user + system) used so far by this process, or by `pid` (from /proc: Linux only)."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def upstream_calls(emulator: EmulatorServer) -> int:
    return sum(1 for entry in emulator.requests if entry["path"] in IMAGE_PATHS)


async def start_all(jobs: JobService, count: int) -> float:
    """Start `count` jobs, 10 at a time (as concurrent tool calls would); seconds taken."""
    started = time.perf_counter()
    limiter = anyio.Semaphore(10)

    async def one(index: int) -> None:
        async with limiter:
            await jobs.start(USER, "generate_image", GenerateImageArgs(prompt=f"bench image {index}", quality="low"))

    async with anyio.create_task_group() as group:
        for index in range(count):
            group.start_soon(one, index)
    return time.perf_counter() - started


def wait_completed(completed: Callable[[], int], count: int, timeout: float) -> float:
    started = time.perf_counter()
    while completed() < count:
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"only {completed()} of {count} jobs completed in {timeout:.0f} s")
        time.sleep(0.05)
    return time.perf_counter() - started


def bench_local(emulator: EmulatorServer, count: int, concurrency: int, folder: Path) -> Result:
    from local_sandbox.local_server import build_parts

    settings = LocalSettings(
        openai_api_key="sk-bench",
        openai_base_url=emulator.base_url,
        output_dir=folder / "out",
        input_dir=folder / "out",
        history_db_path=folder / "state" / "history.db",
        job_concurrency=concurrency,
    )
    parts = build_parts(settings)  # as `gpt-image-mcp` builds it
    jobs, store = parts.jobs, parts.store

    async def main() -> Result:
        enqueue = await start_all(jobs, count)
        cpu = process_cpu()
        async with parts.runner.running(jobs):
            completed = lambda: store.list(USER, status="completed", limit=1, offset=0).total  # noqa: E731
            wall = await anyio.to_thread.run_sync(wait_completed, completed, count, 600.0)
        used = process_cpu() - cpu
        await parts.service.client.aclose()
        return Result(enqueue, wall, used, 0.0)

    try:
        return anyio.run(main)
    finally:
        store.close()


@dataclass(frozen=True)
class Result:
    enqueue: float  # seconds to start the jobs
    wall: float  # seconds from letting the workers go to the last job completed
    cpu: float  # CPU seconds of this process meanwhile (workers, driver, emulator)
    aws_cpu: float  # CPU seconds of the moto process meanwhile
    aws_calls: dict[str, Counter[str]] = field(default_factory=dict)  # by caller, then "service.Operation"


class AwsCalls:
    """AWS API calls, by "service.Operation", counted from botocore's `before-call` event (once per call, however
    many HTTP attempts its retries make)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def watch(self, services: AwsServices) -> AwsServices:
        for client in (services.s3, services.dynamodb, services.sqs):
            client.meta.events.register("before-call", self._count)
        return services

    def _count(self, event_name: str, **_: Any) -> None:
        operation = ".".join(event_name.split(".")[1:3])
        with self._lock:
            self.counts[operation] += 1


@contextlib.contextmanager
def moto_process() -> Iterator[tuple[str, int]]:
    """moto's server (atomic DynamoDB writes, `moto_server`) in a process of its own (AWS is not in the worker's
    process either), on a free port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "local_sandbox.standins.moto_server", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(10)


def aws_services(url: str) -> AwsServices:
    """Clients of one container (each Lambda container has its own connections)."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1")
    config = Config(max_pool_connections=20, retries={"mode": "standard", "max_attempts": 4})
    return AwsServices(*(session.client(name, endpoint_url=url, config=config) for name in ("s3", "dynamodb", "sqs")))


def bench_sqs(emulator: EmulatorServer, count: int, containers: int, batch_size: int) -> Result:
    from gpt_image_mcp.aws.config import McpSettings
    from gpt_image_mcp.entry.compose import image_service, job_service
    from gpt_image_mcp.entry.lambda_worker import WorkerFunction
    from local_sandbox.standins.aws_resources import AwsClients, create_resources
    from local_sandbox.standins.sqs_driver import SqsDriver

    with moto_process() as (url, moto_pid):
        setup = aws_services(url)
        names = create_resources(AwsClients(s3=setup.s3, sqs=setup.sqs, dynamodb=setup.dynamodb))
        calls = {"MCP function": AwsCalls(), "event source": AwsCalls(), "worker": AwsCalls()}
        services = calls["MCP function"].watch(aws_services(url))
        env = {
            **names.environment(),
            "OPENAI_API_KEY": "sk-bench",
            "OPENAI_BASE_URL": emulator.base_url,
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
        settings = McpSettings.from_env({**env, "MCP_REQUEST_STATE_KEY": "bench"})
        images, _ = image_service(settings, services)
        jobs = job_service(images, settings, services, queue_url=settings.queue_url)
        enqueue = anyio.run(start_all, jobs, count)

        worker_env = {name: value for name, value in env.items() if name != "JOBS_QUEUE_URL"}
        driver = SqsDriver(
            calls["event source"].watch(aws_services(url)).sqs,
            names.queue_url,
            lambda: WorkerFunction(worker_env, services=calls["worker"].watch(aws_services(url))),
            batch_size=batch_size,
            concurrency=containers,
        )
        cpu, aws_cpu = process_cpu(), process_cpu(moto_pid)
        with driver:  # done when every message was acknowledged (no polling load on moto while it runs)
            wall = wait_completed(lambda: driver.stats.deleted, count, timeout=600)
            used, aws_used = process_cpu() - cpu, process_cpu(moto_pid) - aws_cpu
        completed = jobs.store.list(USER, status="completed", limit=1, offset=0).total
        if completed != count:
            raise RuntimeError(f"{completed} of {count} jobs completed")
        return Result(enqueue, wall, used, aws_used, {caller: counter.counts for caller, counter in calls.items()})


def print_aws_calls(result: Result, count: int) -> None:
    """AWS calls per job, by caller and operation (the event source's receives and deletes are per batch)."""
    total = sum(sum(counts.values()) for counts in result.aws_calls.values())
    print(f"AWS calls per job: {total / count:.2f}")
    for caller, counts in result.aws_calls.items():
        listed = ", ".join(f"{operation} {number / count:.2f}" for operation, number in sorted(counts.items()))
        print(f"  {caller:<13}{sum(counts.values()) / count:>6.2f}  {listed}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--latency-ms", type=int, default=500, help="emulator latency per image call, >= 1")
    parser.add_argument("--concurrency", type=int, default=10, help="jobs in flight at once (default 10)")
    parser.add_argument("--batch-size", type=int, default=5, help="SQS batch size (template: 5)")
    parser.add_argument("--mode", choices=("both", "local", "sqs"), default="both", help="which runs (default both)")
    args = parser.parse_args()
    if args.latency_ms < 1:
        parser.error("--latency-ms must be at least 1: the ideal is measured in waves of that latency")
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # the worker's own log lines, one per job otherwise
    containers = max(1, args.concurrency // args.batch_size)
    ideal = math.ceil(args.jobs / args.concurrency) * args.latency_ms / 1000

    rows: list[tuple[str, str, Result, int]] = []
    sqs: Result | None = None
    with EmulatorServer(latency_ms=args.latency_ms, detail="flat") as emulator, tempfile.TemporaryDirectory() as folder:
        if args.mode in ("both", "local"):
            local = bench_local(emulator, args.jobs, args.concurrency, Path(folder))
            rows.append(("local runner", f"{args.concurrency}", local, upstream_calls(emulator)))
            emulator.reset()
        if args.mode in ("both", "sqs"):
            sqs = bench_sqs(emulator, args.jobs, containers, args.batch_size)
            rows.append(("sqs worker", f"{containers}x{args.batch_size}", sqs, upstream_calls(emulator)))

    print(f"{args.jobs} jobs, emulator latency {args.latency_ms} ms, ideal {ideal:.2f} s (target <= {1.2 * ideal:.2f})")
    print(
        f"{'mode':<14}{'concurrency':>12}{'start s':>9}{'wall s':>8}{'x ideal':>9}{'calls/job':>11}"
        f"{'cpu ms/job':>12}{'moto cpu ms/job':>17}"
    )
    for mode, concurrency, result, calls in rows:
        print(
            f"{mode:<14}{concurrency:>12}{result.enqueue:>9.2f}{result.wall:>8.2f}{result.wall / ideal:>9.2f}"
            f"{calls / args.jobs:>11.2f}{result.cpu * 1000 / args.jobs:>12.1f}"
            f"{result.aws_cpu * 1000 / args.jobs:>17.1f}"
        )
    if sqs is not None:
        print_aws_calls(sqs, args.jobs)


if __name__ == "__main__":
    main()
