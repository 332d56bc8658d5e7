"""`gpt-image-mcp batch FILE --remote URL --token TOKEN` against the remote shape (moto + emulator + the API Gateway
stand-in in front of the real Lambda handler, the SQS worker driven from the queue): the command as a subprocess,
the MCP SDK's client over Streamable HTTP, the deployment's job tools and workers."""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

from PIL import Image
from remote_support import s3_object

from gpt_image_mcp.aws.identity import user_from_subject
from gpt_image_mcp.core.jobs import keyed_job_id
from local_sandbox.batch.batchfile import read_batch
from local_sandbox.standins.emulator import EmulatorServer
from local_sandbox.standins.remote_shape import RemoteShape

WAIT_SECONDS = 180.0  # a safety net only


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "local_sandbox.cli", "batch", *args]


def env_for(tmp_path: Path, token: str | None) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path / "home")}
    return env if token is None else env | {"GPT_IMAGE_MCP_TOKEN": token}


def batch(tmp_path: Path, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(*args), env=env_for(tmp_path, token), cwd=tmp_path, capture_output=True, text=True, timeout=WAIT_SECONDS
    )


def wait_for_line(stream: IO[str], start: str) -> str:
    """Read `stream` up to the first line that starts with `start`; what was read. The command's own words are the
    event this waits on (a test never guesses how long something takes)."""
    read = ""
    for line in stream:
        read += line
        if line.startswith(start):
            return read
    raise AssertionError(f"the command ended without a line starting {start!r}:\n{read}")


def png_base64() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (1024, 1024), (200, 120, 40)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def test_a_batch_runs_on_the_remote_workers_and_a_rerun_sends_nothing(
    tmp_path: Path, shape: RemoteShape, emulator: EmulatorServer
) -> None:
    requests: list[dict[str, Any]] = [
        {"prompt": "remote fox", "output_path": "batch/fox.png"},
        {"prompt": "remote owls", "output_path": "batch/owl.png", "sample_count": 2},
        {
            "tool": "transform_image",
            "prompt": "as ink",
            "reference_image_base64": png_base64(),
            "output_path": "batch/ink.png",
        },
    ]
    document = {"defaults": {"tool": "generate_image", "quality": "low", "size": "1024x1024"}, "requests": requests}
    path = tmp_path / "remote.json"
    path.write_text(json.dumps(document), encoding="utf-8")

    done = batch(tmp_path, str(path), "--remote", shape.mcp_url, "--token", shape.token, "--summary", "s.json")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[0] == (
        f"gpt-image-mcp batch: 3 requests from {path}, 4 at a time (remote: {shape.mcp_url})"
    )
    assert sorted(str(call["path"]) for call in emulator.requests) == [
        "/v1/images/edits",
        "/v1/images/generations",
        "/v1/images/generations",
    ]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert [entry["state"] for entry in summary["requests"]] == ["done"] * 3
    paths = [[file["path"] for file in entry["files"]] for entry in summary["requests"]]
    assert paths == [["batch/fox.png"], ["batch/owl_1.png", "batch/owl_2.png"], ["batch/ink.png"]]
    for entry in summary["requests"]:
        for file in entry["files"]:
            assert file["location"].startswith(f"s3://{shape.env['IMAGES_BUCKET']}/users/")
            assert len(s3_object(file["location"])) == file["bytes"]
            assert file["link"].startswith(shape.moto_url)

    again = batch(tmp_path, str(path), "--remote", shape.mcp_url, "--summary", "again.json", token=shape.token)
    assert again.returncode == 0, again.stderr
    assert len(emulator.requests) == 3  # the token from GPT_IMAGE_MCP_TOKEN; nothing new upstream
    rerun = json.loads((tmp_path / "again.json").read_text())
    assert [entry["state"] for entry in rerun["requests"]] == ["done earlier"] * 3
    assert [entry["job_id"] for entry in rerun["requests"]] == [entry["job_id"] for entry in summary["requests"]]


def test_a_remote_estimate_needs_no_server_and_a_bad_file_sends_nothing(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    path = tmp_path / "b.json"
    path.write_text(json.dumps([{"tool": "generate_image", "prompt": "x", "quality": "low", "size": "1024x1024"}]))
    estimate = batch(tmp_path, str(path), "--remote", "http://127.0.0.1:9/mcp", "--estimate")
    assert estimate.returncode == 0, estimate.stderr
    assert "Total: $0.01 for 1 request (1 image). Nothing was sent." in estimate.stdout

    # an edit's input images are keys in the remote folder: said not counted, never silently left out
    edit = {"tool": "edit_image", "prompt": "make the sky stormy", "quality": "low", "size": "1024x1024"}
    path.write_text(json.dumps([{**edit, "reference_image_path": ["photos/coast.png", "photos/sky.png"]}]))
    estimate = batch(tmp_path, str(path), "--remote", "http://127.0.0.1:9/mcp", "--estimate")
    assert estimate.returncode == 0, estimate.stderr
    rows = [line.split() for line in estimate.stdout.splitlines()]
    # the prompt's 5 tokens ($0.000025) and the 196 output tokens ($0.00588) are counted
    assert ["$0.0000", "+", "2", "images", "not", "counted", "$0.0059", "$0.0059", "+", "images"] in [
        row[-10:] for row in rows
    ]
    assert "Total: $0.01 + 2 input images not counted for 1 request (1 image). Nothing was sent." in estimate.stdout
    assert "Not counted: remote inputs are keys in your remote folder, which this client cannot read" in " ".join(
        estimate.stdout.split()
    )
    assert "(a 1024x1024 input adds $0.0082 at gpt-image-2's rates to each image made)" in " ".join(
        estimate.stdout.split()
    )

    path.write_text(
        json.dumps([{"tool": "edit_image", "prompt": "x"}, {"tool": "generate_image", "prompt": "y", "size": "10x10"}])
    )
    refused = batch(tmp_path, str(path), "--remote", "http://127.0.0.1:9/mcp", "--token", "t")
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        f"{path}: 2 problems; nothing was sent.",
        "  [0]: edit_image needs a reference image: give reference_image_path or reference_image_base64.",
        refused.stderr.splitlines()[2],
    ]
    assert refused.stderr.splitlines()[2].startswith("  [1]: size '10x10' is not valid for gpt-image-2")
    assert emulator.requests == []


def test_a_wrong_token_or_an_unreachable_url_is_named(tmp_path: Path, shape: RemoteShape) -> None:
    path = tmp_path / "b.json"
    path.write_text(json.dumps([{"tool": "generate_image", "prompt": "x", "quality": "low"}]))
    refused = batch(tmp_path, str(path), "--remote", shape.mcp_url, "--token", "not-a-key")
    assert refused.returncode == 1
    assert refused.stderr.splitlines()[-1].startswith(f"gpt-image-mcp batch: {shape.mcp_url} refused the token")
    nobody = batch(tmp_path, str(path), "--remote", "http://127.0.0.1:9/mcp", "--token", "t")
    assert nobody.returncode == 1
    assert nobody.stderr.splitlines()[-1].startswith("gpt-image-mcp batch: cannot reach http://127.0.0.1:9/mcp")


def test_stopped_remotely_the_job_goes_on_and_the_next_run_collects_it_without_a_second_call(
    tmp_path: Path, shape: RemoteShape, emulator: EmulatorServer
) -> None:
    requests = [{"tool": "generate_image", "prompt": f"remote {index}", "quality": "low"} for index in range(3)]
    path = tmp_path / "b.json"
    path.write_text(json.dumps(requests), encoding="utf-8")
    gate = emulator.hold("/images/generations")  # the worker's call for the first request waits upstream
    arguments = ["--remote", shape.mcp_url, "--concurrency", "1", "--summary", "s.json"]
    running = subprocess.Popen(
        command(str(path), *arguments),
        env=env_for(tmp_path, shape.token),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert gate.arrived.wait(timeout=WAIT_SECONDS)
        running.send_signal(signal.SIGINT)
        assert running.stderr is not None
        said = wait_for_line(running.stderr, "Stopping: no new request starts; waiting for the 1 in flight.")
        running.send_signal(signal.SIGINT)
        said += wait_for_line(running.stderr, "Stopped with 1 in flight: ")
        assert running.wait(timeout=WAIT_SECONDS) == 130
    finally:
        if running.poll() is None:
            running.kill()
        gate.release()
    assert "they go on on the server; the next run collects them." in said
    first = json.loads((tmp_path / "s.json").read_text())
    assert [entry["state"] for entry in first["requests"]] == ["interrupted", "not started", "not started"]

    rest = batch(tmp_path, str(path), "--remote", shape.mcp_url, "--summary", "s.json", token=shape.token)
    assert rest.returncode == 0, rest.stderr
    second = json.loads((tmp_path / "s.json").read_text())
    # The job the first run started (it may have stopped before the start's answer came back: the key finds it).
    started = keyed_job_id(user_from_subject(shape.demo_user), read_batch(path)[0].key(0))
    assert first["requests"][0]["job_id"] in (started, None)
    assert second["requests"][0]["job_id"] == started
    assert second["requests"][0]["state"] in ("done", "done earlier")  # finished by then, or waited for
    assert [entry["state"] for entry in second["requests"][1:]] == ["done", "done"]
    assert len(emulator.requests) == 3  # one call per request: the stopped one was not sent again
