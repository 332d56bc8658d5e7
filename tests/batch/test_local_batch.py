"""`gpt-image-mcp batch` run locally as a user runs it: a subprocess, the emulator as OpenAI (its request log proves
which calls reached upstream), the local job store, real SIGINT and SIGKILL."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from batch_support import RunningBatch, batch_env, command, images_in, png, run_batch, write_batch

from local_sandbox.local_server import LOCAL_USER
from local_sandbox.sqlite_history import SQLiteHistoryStore
from local_sandbox.sqlite_jobs import SQLiteJobStore
from local_sandbox.standins.emulator import EmulatorServer
from local_sandbox.standins.emulator.faults import Gate

FAST = {"quality": "low", "size": "1024x1024"}
INPUTS = ("refs/base.png", "refs/mask.png")


def generations(count: int) -> list[dict[str, Any]]:
    return [
        {"tool": "generate_image", "prompt": f"picture {index}", "output_path": f"p/{index}.png"}
        for index in range(count)
    ]


def jobs_of(tmp_path: Path) -> dict[str, str]:
    """Every job in the history database: id -> status."""
    store = SQLiteJobStore(tmp_path / "state" / "history.db")
    try:
        return {job.job_id: job.status for job in store.list(LOCAL_USER, limit=100, offset=0).records}
    finally:
        store.close()


def history_count(tmp_path: Path) -> int:
    history = SQLiteHistoryStore(tmp_path / "state" / "history.db")
    return history.search(LOCAL_USER, limit=1, offset=0).total


def twelve_requests(tmp_path: Path) -> Path:
    png(tmp_path / "out" / "refs" / "base.png")
    png(tmp_path / "out" / "refs" / "mask.png", transparent=True)
    counts = [1, 2, 1, 3, 1, 1]
    requests: list[dict[str, Any]] = [
        {
            "tool": "generate_image",
            "prompt": f"a lighthouse, take {index}",
            "output_path": f"gen/{index}.png",
            "sample_count": count,
        }
        for index, count in enumerate(counts)
    ]
    edit = {"tool": "edit_image", "reference_image_path": "refs/base.png"}
    requests += [
        {**edit, "prompt": "add a boat", "output_path": "edit/6.png", "mask_image_path": "refs/mask.png"},
        {**edit, "prompt": "add gulls", "output_path": "edit/7.png", "sample_count": 2},
        {**edit, "prompt": "add a storm", "output_path": "edit/8.png"},
    ]
    transform = {"tool": "transform_image", "reference_image_path": "refs/base.png"}
    requests += [
        {**transform, "prompt": "as a woodcut", "output_path": "transform/9.png"},
        {**transform, "prompt": "as a watercolour", "output_path": "transform/10.png"},
        {**transform, "prompt": "as a photo", "output_path": "transform/11.png", "output_format": "jpeg"},
    ]
    return write_batch(tmp_path / "lighthouses.json", {"defaults": FAST, "requests": requests})


TWELVE_FILES = [
    "edit/6.png",
    "edit/7_1.png",
    "edit/7_2.png",
    "edit/8.png",
    "gen/0.png",
    "gen/1_1.png",
    "gen/1_2.png",
    "gen/2.png",
    "gen/3_1.png",
    "gen/3_2.png",
    "gen/3_3.png",
    "gen/4.png",
    "gen/5.png",
    "transform/10.png",
    "transform/11.jpg",
    "transform/9.png",
]


def test_estimate_prints_the_cost_of_each_request_and_sends_nothing(tmp_path: Path, emulator: EmulatorServer) -> None:
    png(tmp_path / "out" / "photos" / "coast.png")  # 1024x1024
    path = write_batch(
        tmp_path / "b.json",
        [
            {"tool": "generate_image", "prompt": "cheap", "quality": "low", "size": "1024x1024", "sample_count": 2},
            {"tool": "generate_image", "prompt": "dear", "quality": "high", "size": "1536x1024"},
            {"tool": "generate_image", "prompt": "open", "size": "1024x1024"},
            {"tool": "edit_image", "prompt": "make the sky stormy", "reference_image_path": "photos/coast.png", **FAST},
        ],
    )
    env = batch_env(tmp_path, None)  # no key: an estimate needs none
    done = run_batch(tmp_path, env, str(path), "--estimate")
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    # input: the prompt at 4 characters a token ($5/1M), with each image made; output: 196 tokens a 1024x1024 low
    # image, 5488 a 1536x1024 high one, 7024 a 1024x1024 high one ($30/1M)
    assert [
        "0",
        "generate_image",
        "cheap",
        "gpt-image-2",
        "1024x1024",
        "low",
        "2",
        "$0.0000",
        "$0.0118",
        "$0.0118",
    ] in rows
    assert [
        "1",
        "generate_image",
        "dear",
        "gpt-image-2",
        "1536x1024",
        "high",
        "1",
        "$0.0000",
        "$0.1646",
        "$0.1646",
    ] in rows
    assert [
        "2",
        "generate_image",
        "open",
        "gpt-image-2",
        "1024x1024",
        "auto",
        "1",
        "$0.0000",
        "≤",
        "$0.2107",
        "≤",
        "$0.2107",
    ] in rows
    # the edit: 5 prompt tokens ($0.000025) and the 1024x1024 photo, 32 x 32 patches = 1024 tokens at $8/1M ($0.008192)
    assert [
        "3",
        "edit_image",
        "make",
        "the",
        "sky",
        "stormy",
        "gpt-image-2",
        "1024x1024",
        "low",
        "1",
        "$0.0082",
        "$0.0059",
        "$0.0141",
    ] in rows
    assert "Total: at most $0.40 for 4 requests (5 images). Nothing was sent." in done.stdout
    assert emulator.requests == []
    assert jobs_of(tmp_path) == {}


def test_an_edits_estimate_matches_what_the_emulator_bills(tmp_path: Path, emulator: EmulatorServer) -> None:
    """The estimate against the cost of the same requests as the emulator reports their usage. The tolerance, 1% of the
    cost, is for the prompt: both count about 4 characters a token, where OpenAI's tokenizer will differ a little;
    the image parts follow one published (or measured) rule each. A mask is counted by the estimate (OpenAI does not
    say whether it bills one) and not by the emulator: that estimate is high by exactly the mask's tokens."""
    png(tmp_path / "out" / "photos" / "coast.png")  # 1024x1024
    png(tmp_path / "out" / "photos" / "wide.png", 1536, 1024)
    png(tmp_path / "out" / "photos" / "mask.png", transparent=True)
    edit = {"tool": "edit_image", "prompt": "make the sky stormy", **FAST}
    path = write_batch(
        tmp_path / "b.json",
        [
            {**edit, "reference_image_path": "photos/coast.png", "output_path": "e/0.png"},
            {**edit, "reference_image_path": ["photos/coast.png", "photos/wide.png"], "sample_count": 2},
            {**edit, "reference_image_path": "photos/coast.png", "mask_image_path": "photos/mask.png"},
        ],
    )
    env = batch_env(tmp_path, emulator)
    done = run_batch(tmp_path, env, str(path), "--summary", "summary.json")
    assert done.returncode == 0, done.stderr
    entries = json.loads((tmp_path / "summary.json").read_text())["requests"]
    estimates = [entry["estimate_usd"] for entry in entries]
    costs = [entry["cost_usd"] for entry in entries]
    assert [entry["cost_estimated"] for entry in entries] == [False] * 3  # the emulator's usage, priced
    # 5 text tokens + 1024 image tokens + 196 output tokens: $0.000025 + $0.008192 + $0.00588 (the old estimate,
    # output only, said $0.006)
    assert costs[0] == 0.014097
    assert abs(estimates[0] - costs[0]) <= 0.01 * costs[0]
    # two inputs (1024 + 1536 patches) and the prompt, billed with each of the 2 images made
    assert costs[1] == round(2 * (0.000025 + (1024 + 1536) * 8 / 1e6 + 0.00588), 6)
    assert abs(estimates[1] - costs[1]) <= 0.01 * costs[1]
    assert estimates[2] == round(costs[2] + 1024 * 8 / 1e6, 6)


def test_twelve_requests_make_twelve_calls_the_right_files_and_a_rerun_makes_none(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    path = twelve_requests(tmp_path)
    env = batch_env(tmp_path, emulator)
    done = run_batch(tmp_path, env, str(path), "--concurrency", "3", "--summary", "summary.json")
    assert done.returncode == 0, done.stderr
    calls = emulator.requests
    assert len(calls) == 12
    assert sorted(str(call["path"]) for call in calls) == ["/v1/images/edits"] * 6 + ["/v1/images/generations"] * 6
    asked = sorted(int(call["json"]["n"]) if call["json"] else int(call["fields"]["n"]) for call in calls)  # type: ignore[index]
    assert asked == sorted([1, 2, 1, 3, 1, 1, 1, 2, 1, 1, 1, 1])
    assert images_in(tmp_path / "out", leave_out=INPUTS) == sorted(TWELVE_FILES)

    lines = done.stderr.splitlines()
    assert lines[0].startswith(f"gpt-image-mcp batch: 12 requests from {path}, 3 at a time (local: images -> ")
    assert lines[1] == "0/12 done, 0 failed, $0.00 so far"
    assert lines[-1].startswith("12/12 done, 0 failed, $0.") and lines[-1].endswith(" so far")
    assert "Batch results" in done.stdout and "12/12 done, 0 failed, $0." in done.stdout

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["totals"]["done"] == 12 and summary["totals"]["failed"] == 0 and not summary["interrupted"]
    assert [entry["state"] for entry in summary["requests"]] == ["done"] * 12
    files = sorted(file["path"] for entry in summary["requests"] for file in entry["files"])
    assert files == sorted(TWELVE_FILES)
    assert all(entry["history_id"] and entry["cost_usd"] > 0 for entry in summary["requests"])
    assert summary["totals"]["spent_usd"] == pytest.approx(sum(entry["cost_usd"] for entry in summary["requests"]))
    assert history_count(tmp_path) == 12

    again = run_batch(tmp_path, env, str(path), "--summary", "again.json")
    assert again.returncode == 0, again.stderr
    assert len(emulator.requests) == 12  # nothing new upstream
    assert images_in(tmp_path / "out", leave_out=INPUTS) == sorted(TWELVE_FILES)
    assert "12/12 done (12 earlier), 0 failed, $0.00 this run." in again.stdout
    assert "12 were done by an earlier run: skipped, no new request." in again.stdout
    rerun = json.loads((tmp_path / "again.json").read_text())
    assert [entry["state"] for entry in rerun["requests"]] == ["done earlier"] * 12
    assert [entry["history_id"] for entry in rerun["requests"]] == [
        entry["history_id"] for entry in summary["requests"]
    ]
    assert len(jobs_of(tmp_path)) == 12 and history_count(tmp_path) == 12


def test_a_failed_request_is_reported_and_retried_by_the_next_run(tmp_path: Path, emulator: EmulatorServer) -> None:
    path = write_batch(tmp_path / "b.json", {"defaults": FAST, "requests": generations(3)})
    emulator.inject(400, code="moderation_blocked", path="/v1/images/generations")  # the first request only
    env = batch_env(tmp_path, emulator)
    first = run_batch(tmp_path, env, str(path), "--concurrency", "1", "--summary", "s.json")
    assert first.returncode == 1, first.stderr
    failure = next(line for line in first.stderr.splitlines() if line.startswith("requests[0] failed: "))
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["requests"][0]["state"] == "failed"
    assert summary["requests"][0]["error"] == failure.removeprefix("requests[0] failed: ")
    assert (
        "Run the same command again to finish the 1 left: done requests are skipped, failed ones retried."
        in first.stdout
    )
    assert len(emulator.requests) == 3

    second = run_batch(tmp_path, env, str(path), "--summary", "s.json")
    assert second.returncode == 0, second.stderr
    assert len(emulator.requests) == 4  # only the failed one again
    states = [entry["state"] for entry in json.loads((tmp_path / "s.json").read_text())["requests"]]
    assert states == ["done", "done earlier", "done earlier"]
    assert sorted(jobs_of(tmp_path).values()) == ["completed", "completed", "completed", "failed"]  # the try is kept


def interrupted_with_two_in_flight(
    tmp_path: Path, emulator: EmulatorServer, count: int, *args: str
) -> tuple[Path, dict[str, str], RunningBatch, list[Gate]]:
    """A batch of `count` requests, two at a time, given one Ctrl-C while OpenAI holds its first two requests."""
    path = write_batch(tmp_path / "b.json", {"defaults": FAST, "requests": generations(count)})
    gates = [emulator.hold("/images/generations") for _ in range(2)]
    env = batch_env(tmp_path, emulator)
    running = RunningBatch(tmp_path, env, str(path), "--concurrency", "2", *args)
    try:
        for gate in gates:
            assert gate.arrived.wait(timeout=60)
        running.interrupt()
        running.wait_for(r"^Stopping: no new request starts; waiting for the 2 in flight\. Ctrl-C again stops now")
    except BaseException:
        running.kill()
        raise
    return path, env, running, gates


def test_ctrl_c_lets_the_requests_in_flight_finish_and_the_next_run_does_the_rest(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    path, env, running, gates = interrupted_with_two_in_flight(tmp_path, emulator, 12, "--summary", "s.json")
    try:
        for gate in gates:
            gate.release()
        status, stdout, stderr = running.finish()
    finally:
        running.kill()
    assert status == 130, stderr
    assert len(emulator.requests) == 2
    assert stderr.splitlines()[-1] == "2/12 done, 0 failed, $0.01 so far"
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["interrupted"] is True
    assert [entry["state"] for entry in summary["requests"]] == ["done"] * 2 + ["not started"] * 10
    assert "Run the same command again to finish the 10 left" in stdout

    rest = run_batch(tmp_path, env, str(path))
    assert rest.returncode == 0, rest.stderr
    assert len(emulator.requests) == 12
    assert "12/12 done (2 earlier), 0 failed" in rest.stdout
    assert images_in(tmp_path / "out") == sorted(f"p/{index}.png" for index in range(12))


def test_a_second_ctrl_c_stops_at_once_and_the_jobs_in_flight_go_back_to_the_store(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    path, env, running, gates = interrupted_with_two_in_flight(tmp_path, emulator, 4)
    try:
        running.interrupt()
        status, _, stderr = running.finish()
    finally:
        running.kill()
        for gate in gates:
            gate.release()  # the answers go to connections the command has closed
    assert status == 130, stderr
    assert "Stopped with 2 in flight: given back to the job store; the next run completes them." in stderr
    left = jobs_of(tmp_path)
    assert sorted(left.values()) == ["pending", "pending"]
    assert images_in(tmp_path / "out") == []

    rest = run_batch(tmp_path, env, str(path))
    assert rest.returncode == 0, rest.stderr
    finished = jobs_of(tmp_path)
    assert set(left) <= set(finished) and len(finished) == 4  # the same two jobs, completed, plus the two others
    assert set(finished.values()) == {"completed"}
    assert history_count(tmp_path) == 4
    assert len(emulator.requests) == 2 + 4  # the two abandoned calls were sent again
    assert images_in(tmp_path / "out") == [f"p/{index}.png" for index in range(4)]


def test_a_killed_batch_leaves_no_job_the_next_run_cannot_find(tmp_path: Path, emulator: EmulatorServer) -> None:
    path = write_batch(tmp_path / "b.json", {"defaults": FAST, "requests": generations(2)})
    gate = emulator.hold("/images/generations")
    env = batch_env(tmp_path, emulator)
    running = RunningBatch(tmp_path, env, str(path), "--concurrency", "1")
    try:
        assert gate.arrived.wait(timeout=60)
        running.kill()  # SIGKILL: no clean-up at all
    finally:
        gate.release()
    [(job_id, status)] = jobs_of(tmp_path).items()
    assert status == "running"  # as the dead process left it

    rest = run_batch(tmp_path, env, str(path))
    assert rest.returncode == 0, rest.stderr
    finished = jobs_of(tmp_path)
    assert finished[job_id] == "completed" and len(finished) == 2  # the same job resumed, not a second one
    assert history_count(tmp_path) == 2
    assert images_in(tmp_path / "out") == ["p/0.png", "p/1.png"]


def test_a_bad_file_exits_2_naming_each_problem_and_sends_nothing(tmp_path: Path, emulator: EmulatorServer) -> None:
    png(tmp_path / "out" / "refs" / "base.png")
    path = write_batch(
        tmp_path / "b.json",
        {
            "defaults": FAST,
            "requests": [
                {"tool": "generate_image", "prompt": "fine"},
                {"tool": "generate_image", "prompt": "odd size", "size": "1000x1000"},
                {"tool": "edit_image", "prompt": "no such input", "reference_image_path": "refs/none.png"},
                {"tool": "generate_image", "prompt": "retired", "model": "gpt-image-1"},
                {
                    "tool": "generate_image",
                    "prompt": "see-through",
                    "transparent_background": True,
                    "output_format": "jpeg",
                },
            ],
        },
    )
    done = run_batch(tmp_path, batch_env(tmp_path, emulator), str(path))
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert lines[0] == f"{path}: 4 problems; nothing was sent."
    assert lines[1].startswith("  requests[1]: size '1000x1000' is not valid for gpt-image-2: both edges must be")
    assert lines[2].startswith("  requests[2]: ") and "refs/none.png" in lines[2]
    assert lines[3].startswith("  requests[3]: Model 'gpt-image-1' was shut down by OpenAI on 2026-10-23")
    assert lines[4] == (
        "  requests[4]: transparent_background needs output_format 'png' or 'webp': JPEG has no alpha channel."
    )
    assert done.stdout == ""
    assert emulator.requests == [] and jobs_of(tmp_path) == {}

    unreadable = run_batch(tmp_path, batch_env(tmp_path, emulator), str(tmp_path / "nothing.json"))
    assert (unreadable.returncode, unreadable.stderr) == (2, f"{tmp_path / 'nothing.json'}: no such file\n")


def test_without_a_key_the_batch_says_what_is_missing_and_sends_nothing(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    path = write_batch(tmp_path / "b.json", generations(1))
    done = run_batch(tmp_path, batch_env(tmp_path, None), str(path))
    assert done.returncode == 1
    assert done.stderr == (
        "gpt-image-mcp batch: OPENAI_API_KEY is not set, so nothing can be sent. Set it (or put it in .env), or add "
        "--emulator to try the batch with the offline emulator; --estimate needs no key.\n"
    )
    assert jobs_of(tmp_path) == {}


def test_the_emulator_flag_runs_a_batch_with_no_key(tmp_path: Path) -> None:
    path = write_batch(tmp_path / "b.json", {"defaults": FAST, "requests": generations(2)})
    done = run_batch(tmp_path, batch_env(tmp_path, None), str(path), "--emulator")
    assert done.returncode == 0, done.stderr
    assert images_in(tmp_path / "out") == ["p/0.png", "p/1.png"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--remote", "http://127.0.0.1:9/mcp"],
            "--remote needs a bearer token: --token TOKEN, or $GPT_IMAGE_MCP_TOKEN",
        ),
        (["--token", "t"], "--token goes with --remote URL"),
        (["--remote", "http://x/mcp", "--token", "t", "--emulator"], "--emulator is for local runs"),
        (["--concurrency", "0"], "argument --concurrency: must be a whole number from 1 to 16, not '0'"),
    ],
)
def test_command_line_mistakes(tmp_path: Path, arguments: list[str], message: str) -> None:
    path = write_batch(tmp_path / "b.json", generations(1))
    done = run_batch(tmp_path, batch_env(tmp_path, None), str(path), *arguments)
    assert done.returncode == 2
    assert message in done.stderr


def test_the_server_command_mentions_the_batch_command(tmp_path: Path) -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "local_sandbox.cli", "--help"], capture_output=True, text=True, cwd=tmp_path, check=True
    )
    assert "gpt-image-mcp batch FILE" in shown.stdout


def test_on_a_terminal_the_progress_is_a_bar(tmp_path: Path, emulator: EmulatorServer) -> None:
    path = write_batch(tmp_path / "b.json", {"defaults": FAST, "requests": generations(3)})
    main, terminal = pty.openpty()
    process = subprocess.Popen(
        command(str(path)),
        env=batch_env(tmp_path, emulator),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=terminal,
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal closed: the command ended
            break
        if not chunk:
            break
        shown += chunk
    os.close(main)
    assert process.wait(timeout=60) == 0
    text = shown.decode("utf-8", "replace")
    assert "\x1b[" in text  # drawn and redrawn in place
    assert "━" in text and "3/3" in text
    assert "3/3 done, 0 failed, $0.02 so far" in text
    assert "0/3 done, 0 failed, $0.00 so far\r\n" not in text  # no counted lines: they are for logs


def test_the_server_command_does_not_load_the_batch_command() -> None:
    """`gpt-image-mcp` starts as fast as before: the batch package, rich and yaml load only for `batch`."""
    probe = (
        "import sys; from local_sandbox import cli; cli.parse_args([]); "
        "print(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('rich', 'yaml') or m.startswith('local_sandbox.batch')))"
    )
    shown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "[]"
