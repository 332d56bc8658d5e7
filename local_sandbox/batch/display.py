"""What a person sees: a progress bar on a terminal, counted lines in a log, and the final table.

The bar, the tables and their layout come from `rich` (imported here only, so the server never loads it): one
well-kept library does the live bar, the tables and the terminal detection.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import IO

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from local_sandbox.batch.run import Outcome, Tally

PROMPT_CHARS = 40
LOG_WIDTH = 160  # a table in a log or a pipe is not cut to 80 columns


class PlainDisplay:
    """One counted line each time a request is settled ('7/12 done, 1 failed, $0.37 so far'), for logs and pipes."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self._last: tuple[int, int] | None = None

    def update(self, tally: Tally) -> None:
        counted = (tally.settled, tally.failed)
        if counted != self._last:
            self._last = counted
            self.note(tally.line())

    def note(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


class BarDisplay:
    """A live bar on the terminal; notes scroll above it."""

    def __init__(self, progress: Progress, total: int) -> None:
        self.progress = progress
        self.task = progress.add_task("starting", total=total)

    def update(self, tally: Tally) -> None:
        self.progress.update(self.task, completed=tally.settled, description=tally.line())

    def note(self, text: str) -> None:
        self.progress.console.print(text, markup=False, highlight=False)


@contextlib.contextmanager
def progress_display(stream: IO[str], total: int) -> Iterator[PlainDisplay | BarDisplay]:
    """The bar when `stream` is a terminal, counted lines otherwise (a log, a pipe, CI)."""
    if not stream.isatty():
        yield PlainDisplay(stream)
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(file=stream, force_terminal=True)) as progress:
        yield BarDisplay(progress, total)


def outcome_table(outcomes: list[Outcome]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, title="Batch results", title_justify="left")
    table.add_column("#", justify="right")
    for header in ("tool", "prompt", "state", "files"):
        table.add_column(header)
    table.add_column("cost", justify="right")
    table.add_column("history id / why", overflow="fold")
    for outcome in outcomes:
        request, result = outcome.request, outcome.result
        files = ", ".join(image.path for image in result.images) if result is not None else ""
        cost = f"${outcome.cost:.3f}" if outcome.cost is not None else ""
        table.add_row(
            str(request.index),
            request.tool,
            _short(request.args.prompt),
            outcome.label,
            files,
            cost,
            (result.history_id or "") if result is not None else (outcome.error or ""),
        )
    return table


def estimate_table(outcomes: list[Outcome]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, title="Estimated cost (nothing sent)", title_justify="left")
    table.add_column("#", justify="right")
    for header in ("tool", "prompt", "model", "size", "quality", "images"):
        table.add_column(header)
    for header in ("input", "output", "estimate"):
        table.add_column(header, justify="right")
    for outcome in outcomes:
        args, estimate = outcome.request.args, outcome.estimate
        table.add_row(
            str(outcome.request.index),
            outcome.request.tool,
            _short(args.prompt),
            estimate.model,
            args.size,
            args.quality,
            str(args.sample_count),
            estimate.input_text(),
            estimate.output_text(),
            estimate.text(),
        )
    return table


def print_table(table: Table, stream: IO[str], footer: list[str]) -> None:
    console = Console(file=stream, width=None if stream.isatty() else LOG_WIDTH)
    console.print(table)
    for line in footer:
        console.print(line, markup=False, highlight=False)


def _short(prompt: str) -> str:
    flat = " ".join(prompt.split())
    return flat if len(flat) <= PROMPT_CHARS else flat[: PROMPT_CHARS - 1] + "…"
