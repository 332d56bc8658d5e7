"""A synchronous image call is a durable job, but it makes only the SQLite commits a durable job needs."""

from __future__ import annotations

import sqlite3

import pytest
from mcp import Client

from local_sandbox.local_server import LOCAL_USER, build_local_server, build_parts
from local_sandbox.settings import LocalSettings
from local_sandbox.standins.emulator import EmulatorServer

pytestmark = pytest.mark.anyio
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class Commits:
    """Write transactions on SQLite connections, counted from their statement traces: a write outside an explicit
    transaction commits on its own; BEGIN ... COMMIT commits once if it wrote."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.count = 0

    def watch(self, connection: sqlite3.Connection) -> None:
        state = {"open": False, "wrote": False}

        def trace(statement: str) -> None:
            verb = statement.lstrip().split(None, 1)[0].upper()
            if verb == "BEGIN":
                state.update(open=True, wrote=False)
            elif verb in ("COMMIT", "END"):
                self.count += int(state["wrote"])
                state["open"] = False
            elif verb == "ROLLBACK":
                state["open"] = False
            elif verb in WRITES:
                self.statements.append(statement[:70])
                if state["open"]:
                    state["wrote"] = True
                else:
                    self.count += 1

        connection.set_trace_callback(trace)


async def test_a_synchronous_call_commits_three_times(settings: LocalSettings, emulator: EmulatorServer) -> None:
    """The job row is created claimed (1), the history row added (2), the job completed (3). Progress is written by
    the job's watcher at most once per poll, so a call quicker than a poll (here: a poll of a minute) writes none;
    every other step of the call is decided in memory."""
    parts = build_parts(settings, poll_seconds=60.0)
    commits = Commits()
    commits.watch(parts.store._connection)
    commits.watch(parts.service.history._connection)  # type: ignore[attr-defined]
    try:
        async with Client(build_local_server(parts)) as client:
            result = await client.call_tool("generate_image", {"prompt": "a lighthouse", "output_path": "light.png"})
        assert not result.is_error
        assert commits.count == 3, commits.statements
        page = parts.store.list(LOCAL_USER, limit=10, offset=0)
        assert [(job.status, job.attempts, job.background) for job in page.records] == [("completed", 1, False)]
    finally:
        parts.store.close()
