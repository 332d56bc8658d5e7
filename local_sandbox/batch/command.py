"""`gpt-image-mcp batch FILE`: many image requests from a file, locally or against a remote deployment.

Every request is checked first (nothing is sent while one is wrong); `--estimate` prices them and stops there. A run
shows a bar (or counted lines in a log), prints a table at the end and, with `--summary`, writes it as JSON. Running
the same command again skips what is done, waits for what is still running and retries what failed; Ctrl-C stops
cleanly (once: the requests in flight finish; twice: at once).

Exit status: 0 every request done, 1 some failed, 2 the file or a request is wrong (nothing sent), 130 stopped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import sys
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from gpt_image_mcp.core.catalog import load_catalog
from gpt_image_mcp.core.config import Settings
from gpt_image_mcp.core.errors import UserFacingError
from gpt_image_mcp.core.planning import ImagePlan
from gpt_image_mcp.core.pricing import DEFAULT_FIDELITY, estimate_image_input_tokens
from local_sandbox.batch.batchfile import BatchFileError, BatchRequest, read_batch
from local_sandbox.batch.display import estimate_table, outcome_table, print_table, progress_display
from local_sandbox.batch.estimate import estimate
from local_sandbox.batch.plans import Planner, offline_planner, plan_all, service_planner
from local_sandbox.batch.run import Backend, BatchRun, Outcome, Tally
from local_sandbox.batch.summary import summary, write_summary

if TYPE_CHECKING:
    from local_sandbox.settings import LocalSettings

PROG = "gpt-image-mcp batch"
TOKEN_ENV = "GPT_IMAGE_MCP_TOKEN"
DONE, FAILED, BAD_FILE, STOPPED = 0, 1, 2, 130
REMOTE_CONCURRENCY = 4
MAX_CONCURRENCY = 16


def concurrency(text: str) -> int:
    value = int(text) if text.strip().isdigit() else 0
    if not 1 <= value <= MAX_CONCURRENCY:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_CONCURRENCY}, not {text!r}")
    return value


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "file", type=Path, metavar="FILE", help="JSON (or .yaml/.yml): requests, or defaults + requests"
    )
    parser.add_argument("--estimate", action="store_true", help="print the expected cost of each request; send nothing")
    parser.add_argument(
        "--concurrency",
        type=concurrency,
        metavar="N",
        help=f"jobs in flight at once, 1-{MAX_CONCURRENCY} (local default: OPENAI_IMAGE_JOB_CONCURRENCY; remote: "
        f"{REMOTE_CONCURRENCY})",
    )
    parser.add_argument("--summary", type=Path, metavar="OUT.json", help="write every request's outcome as JSON")
    parser.add_argument("--emulator", action="store_true", help="local run against the bundled offline emulator")
    parser.add_argument("--remote", metavar="URL", help="run on a remote deployment's MCP URL (its SQS workers)")
    parser.add_argument("--token", help=f"bearer token for --remote (default: ${TOKEN_ENV})")
    args = parser.parse_args(argv)
    if args.remote is None and args.token is not None:
        parser.error("--token goes with --remote URL")
    args.token = args.token or os.environ.get(TOKEN_ENV) or None
    if args.remote is not None and args.emulator:
        parser.error("--emulator is for local runs; a remote deployment calls its own upstream")
    if args.remote is not None and not args.token and not args.estimate:
        parser.error(f"--remote needs a bearer token: --token TOKEN, or ${TOKEN_ENV}")
    return args


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    try:
        return anyio.run(_remote if args.remote else _local, args)
    except KeyboardInterrupt:  # Ctrl-C before the batch started watching for it: nothing was started
        print(f"{PROG}: stopped before any request was sent.", file=sys.stderr)
        return STOPPED


async def _local(args: argparse.Namespace) -> int:
    from local_sandbox.cli import read_settings, start_emulator

    settings = read_settings(PROG)
    if args.concurrency is not None:
        settings = settings.model_copy(update={"job_concurrency": args.concurrency})
    requests = _read(args.file)
    if requests is None:
        return BAD_FILE
    emulator = None
    if args.emulator:
        settings, emulator = start_emulator(settings)
    try:
        return await _local_batch(args, settings, requests)
    finally:
        if emulator is not None:
            emulator.stop()


async def _local_batch(args: argparse.Namespace, settings: LocalSettings, requests: list[BatchRequest]) -> int:
    from local_sandbox.batch.local import LocalBackend
    from local_sandbox.local_server import LOCAL_USER, build_parts

    try:
        parts = build_parts(settings)  # opens the history database: a damaged one is named here
    except UserFacingError as error:
        return _exit_with(error.message)
    try:
        outcomes = await _plan(args.file, requests, service_planner(parts.service, LOCAL_USER))
        if outcomes is None:
            return BAD_FILE
        if args.estimate:
            return _estimate(outcomes)
        if not settings.openai_api_key:
            return _exit_with(
                "OPENAI_API_KEY is not set, so nothing can be sent. Set it (or put it in .env), or add --emulator to "
                "try the batch with the offline emulator; --estimate needs no key."
            )
        where = f"local: images -> {settings.output_dir}"
        return await _execute(args, outcomes, LocalBackend(parts).running(), settings.job_concurrency, where)
    finally:
        await parts.service.client.aclose()
        parts.store.close()


async def _remote(args: argparse.Namespace) -> int:
    from local_sandbox.batch.remote import connect

    requests = _read(args.file)
    if requests is None:
        return BAD_FILE
    default_model = Settings.model_fields["default_model"].default
    outcomes = await _plan(args.file, requests, offline_planner(load_catalog(), default_model, dt.date.today()))
    if outcomes is None:
        return BAD_FILE
    if args.estimate:
        return _estimate(outcomes)
    concurrency = args.concurrency or REMOTE_CONCURRENCY
    return await _execute(args, outcomes, connect(args.remote, args.token), concurrency, f"remote: {args.remote}")


def _read(path: Path) -> list[BatchRequest] | None:
    try:
        return read_batch(path)
    except BatchFileError as error:
        print(error.message, file=sys.stderr)
        return None


async def _plan(path: Path, requests: list[BatchRequest], planner: Planner) -> list[Outcome] | None:
    try:
        plans: list[ImagePlan] = await plan_all(path, requests, planner)
    except BatchFileError as error:
        print(error.message, file=sys.stderr)
        return None
    catalog = load_catalog()
    return [
        Outcome(request, estimate(plan, catalog, request.args)) for request, plan in zip(requests, plans, strict=True)
    ]


def _estimate(outcomes: list[Outcome]) -> int:
    priced = [outcome.estimate for outcome in outcomes if outcome.estimate.usd is not None]
    total = sum(each.usd or 0.0 for each in priced)
    images = sum(outcome.request.args.sample_count for outcome in outcomes)
    bound = "at most " if any(each.upper_bound for each in priced) else ""
    counted = f"{_count(len(outcomes), 'request')} ({_count(images, 'image')})"
    uncounted = sum(outcome.estimate.uncounted_images for outcome in outcomes)
    more = f" + {_count(uncounted, 'input image')} not counted" if uncounted else ""
    footer = [f"Total: {bound}${total:.2f}{more} for {counted}. Nothing was sent."]
    if len(priced) < len(outcomes):
        unpriced = _count(len(outcomes) - len(priced), "request")
        footer.append(f"{unpriced} without an estimate (a model or quality without prices) not counted.")
    footer.append(
        "input: the prompt (about 4 characters a token) and each input image and mask by the model's rule; "
        "output: the images made."
    )
    if bound:
        footer.append("≤: an 'auto' size or quality, priced at the most it can cost.")
    if uncounted:
        footer.append(
            f"Not counted: remote inputs are keys in your remote folder, which "
            f"this client cannot read (a 1024x1024 input adds {_one_input_image(outcomes)} to each image made)."
        )
    print_table(estimate_table(outcomes), sys.stdout, footer)
    return DONE


def _one_input_image(outcomes: list[Outcome]) -> str:
    """What one 1024x1024 input image costs for the first model with an uncounted image, as a guide."""
    catalog = load_catalog()
    model = next(outcome.estimate.model for outcome in outcomes if outcome.estimate.uncounted_images)
    spec = catalog.find(model)
    tokens = estimate_image_input_tokens(spec, 1024, 1024, DEFAULT_FIDELITY) if spec is not None else None
    if spec is None or spec.prices is None or tokens is None:
        return "an unknown amount"
    return f"${tokens * spec.prices.image_input / 1_000_000:.4f} at {model}'s rates"


@dataclass(slots=True)
class _Stops:
    soft: bool = False
    hard: bool = False


async def _execute(
    args: argparse.Namespace,
    outcomes: list[Outcome],
    backend_context: AbstractAsyncContextManager[Backend],
    concurrency: int,
    where: str,
) -> int:
    stops = _Stops()
    print(
        f"{PROG}: {_count(len(outcomes), 'request')} from {args.file}, {concurrency} at a time ({where})",
        file=sys.stderr,
    )
    try:
        async with backend_context as backend:
            with progress_display(sys.stderr, len(outcomes)) as display:
                batch = BatchRun(outcomes, backend, display, concurrency=concurrency)
                async with anyio.create_task_group() as group:
                    await group.start(_watch_interrupts, batch, stops, group.cancel_scope, args.remote is not None)
                    await batch.run()
                    group.cancel_scope.cancel()  # done: stop watching for Ctrl-C
    except UserFacingError as error:
        return _exit_with(error.message)
    stopped = stops.soft or stops.hard
    tally = Tally.of(outcomes)
    print_table(outcome_table(outcomes), sys.stdout, _footer(tally, stopped, args))
    if args.summary is not None:
        write_summary(args.summary, summary(args.file, where, outcomes, interrupted=stopped))
    if stopped:
        return STOPPED
    return FAILED if tally.failed else DONE


async def _watch_interrupts(
    batch: BatchRun,
    stops: _Stops,
    scope: anyio.CancelScope,
    remote: bool,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """First Ctrl-C: start nothing more, let the requests in flight finish. Second Ctrl-C (or SIGTERM): stop now."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            in_flight = batch.tally.in_flight
            if signum == signal.SIGINT and not stops.soft:
                stops.soft = True
                batch.stop()
                batch.display.note(
                    f"Stopping: no new request starts; waiting for the {in_flight} in flight. Ctrl-C again stops now "
                    + (
                        "(they go on on the server; the next run collects them)."
                        if remote
                        else "(they are sent again by the next run)."
                    )
                )
                continue
            stops.hard = True
            batch.display.note(
                f"Stopped with {in_flight} in flight: "
                + (
                    "they go on on the server; the next run collects them."
                    if remote
                    else "given back to the job store; the next run completes them."
                )
            )
            scope.cancel()
            return


def _footer(tally: Tally, stopped: bool, args: argparse.Namespace) -> list[str]:
    lines = [f"{tally.line().replace(' so far', ' this run')}."]
    if tally.earlier:
        lines.append(f"{tally.earlier} were done by an earlier run: skipped, no new request.")
    if stopped or tally.failed:
        rest = tally.total - tally.done - tally.earlier
        lines.append(
            f"Run the same command again to finish the {rest} left: done requests are skipped, failed ones retried."
        )
    if args.summary is not None:
        lines.append(f"Summary: {args.summary}")
    return lines


def _exit_with(message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return FAILED


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
