"""`gpt-image-mcp batch FILE --remote URL --token TOKEN` against the remote shape (moto + emulator + the API Gateway
stand-in in front of the real Lambda handler, the SQS worker driven from the queue): the command as a subprocess,
the MCP SDK's client over Streamable HTTP, the deployment's job tools and workers."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from PIL import Image
from remote_support import s3_object

from local_sandbox.standins.emulator import EmulatorServer
from local_sandbox.standins.remote_shape import RemoteShape

WAIT_SECONDS = 180.0  # a safety net only


def batch(tmp_path: Path, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path / "home")}
    if token is not None:
        env["GPT_IMAGE_MCP_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "local_sandbox.cli", "batch", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
    )


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
