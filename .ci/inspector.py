"""The official MCP Inspector (npm `@modelcontextprotocol/inspector`, its CLI mode) drives this server's real tools.

    .venv/bin/python .ci/inspector.py --node DIR --inspector DIR

`.ci/run` installs the Inspector and a Node new enough for it with npm (folders given here). Two targets, both on
loopback: `gpt-image-mcp --emulator` over stdio (the Inspector starts it for each call, as a stdio client does, all
calls sharing one scratch folder for images and history), and the remote shape (the Lambda handler behind the API
Gateway stand-in, moto, the emulator) over Streamable HTTP with the demo user's bearer token, started and stopped
here in process. Each target is driven in both protocol eras the Inspector speaks (`legacy`: 2025-11-25, `modern`:
2026-07-28): the tool table (with the Inspector's schema portability check), an image made and read back as a
resource, the resource templates, the history, a bad argument, and remotely a wrong token.

Each check prints one line, PASS or FAIL and what; a failure also shows the Inspector's own output. The run fails
when any check does. A client nobody here wrote: its verdict outranks the project's own tests.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

CALL_TIMEOUT = 120.0  # one Inspector call, server start included
ERAS = ("legacy", "modern")
PREVIEW_LIMIT = 150 * 1024  # the JPEG preview a result carries stays small (README: 256 px, a few KB)
SHOWN_CHARS = 4000  # of the Inspector's output under a failed check (base64 blobs are long)
PROMPT = "a lighthouse on a cliff at dusk"
EXIT_TOOL_ERROR = 5  # the Inspector CLI's exit code for a result with isError: true
EXIT_AUTH_REQUIRED = 3  # ... and for a server that refuses the credentials (401/403)
JOB_PREVIEW_TEMPLATE = "gpt-image://jobs/{job_id}/preview"


@dataclass(frozen=True, slots=True)
class Answer:
    """What one Inspector call printed, and how it ended."""

    command: list[str]
    status: int
    stdout: str
    stderr: str

    @property
    def result(self) -> dict[str, Any]:
        """The MCP result of `--format json` output; empty when there is none."""
        try:
            document = json.loads(self.stdout)
        except ValueError:
            return {}
        return document.get("result", {}) if isinstance(document, dict) else {}

    @property
    def error(self) -> dict[str, Any]:
        """The Inspector's error envelope (on stderr); empty when there is none."""
        for line in reversed(self.stderr.splitlines()):
            try:
                document = json.loads(line)
            except ValueError:
                continue
            if isinstance(document, dict) and isinstance(document.get("error"), dict):
                return dict(document["error"])
        return {}

    def blocks(self, kind: str) -> list[dict[str, Any]]:
        return [block for block in self.result.get("content", []) if block.get("type") == kind]

    def shown(self) -> str:
        def cut(text: str) -> str:
            return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}... ({len(text):,} chars)"

        return f"    $ {' '.join(self.command)}\n    exit {self.status}\n    stdout: {cut(self.stdout)}\n" + (
            f"    stderr: {cut(self.stderr)}"
        )


@dataclass(slots=True)
class Inspector:
    """The Inspector's CLI on the Node given, with a home folder of its own (it keeps a catalog and secrets there)."""

    node: Path
    package: Path
    home: Path
    era: str = "legacy"

    def manifest(self) -> dict[str, Any]:
        return dict(json.loads((self.root() / "package.json").read_text(encoding="utf-8")))

    def root(self) -> Path:
        return self.package / "node_modules" / "@modelcontextprotocol" / "inspector"

    def launcher(self) -> Path:
        """The `mcp-inspector` program, as the package declares it (`.bin` links would run the system's Node)."""
        return self.root() / str(self.manifest()["bin"]["mcp-inspector"])

    def call(self, target: Sequence[str], *request: str) -> Answer:
        command = [str(self.node / "node"), str(self.launcher()), "--cli", "--format", "json"]
        command += ["--protocol-era", self.era, *request, *target]
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.home), "NO_COLOR": "1"}
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=CALL_TIMEOUT, check=False)
        except subprocess.TimeoutExpired as late:
            return Answer(command, -1, _text(late.stdout), f"{_text(late.stderr)}\n(no answer in {CALL_TIMEOUT:.0f} s)")
        return Answer(command, done.returncode, done.stdout, done.stderr)


def _text(output: bytes | str | None) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


@dataclass(slots=True)
class Target:
    """One way to reach the server: the Inspector's target arguments and what this deployment should show."""

    name: str
    args: list[str]
    tools: list[str]
    image_template: str
    link_scheme: str
    stored_bytes: Callable[[dict[str, Any]], bytes]  # the saved image's bytes, from generate_image's result
    refused_args: list[str] = field(default_factory=list)  # the same target with a wrong token (none: no check)


@dataclass(slots=True)
class Checks:
    """PASS/FAIL lines, one a check; a failure shows the Inspector's output."""

    failed: int = 0
    passed: int = 0

    def check(self, what: str, ok: bool, answer: Answer, why: str = "") -> bool:
        print(f"{'PASS' if ok else 'FAIL'}  {what}" + ("" if ok or not why else f": {why}"), flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(answer.shown(), flush=True)
        return ok


def drive(inspector: Inspector, target: Target, checks: Checks) -> None:
    """The checks of one target in one protocol era."""
    label = f"{target.name} ({inspector.era})"
    listed = inspector.call(target.args, "--method", "tools/list", "--strict")
    names = [tool.get("name") for tool in listed.result.get("tools", [])]
    checks.check(
        f"{label}: tools/list gives the tool table in order, schemas portable (--strict)",
        listed.status == 0 and names == target.tools,
        listed,
        f"got {names}, expected {target.tools}",
    )

    request = ("--method", "tools/call", "--tool-name", "generate_image", "--tool-arg", f"prompt={PROMPT}")
    made = inspector.call(target.args, *request, "size=1024x1024")
    links = made.blocks("resource_link")
    problems = generated_problems(made, target.link_scheme)
    what = f"{label}: generate_image answers text, a resource_link and a JPEG preview"
    checks.check(what, not problems, made, "; ".join(problems))
    if problems:
        return
    try:
        stored = target.stored_bytes(made.result)
    except (OSError, LookupError, ValueError) as missing:
        checks.check(f"{label}: the linked image is stored", False, made, repr(missing))
        return
    uri = str(links[0]["uri"])
    read = inspector.call(target.args, "--method", "resources/read", "--uri", uri)
    contents = read.result.get("contents", [])
    blob = base64.b64decode(contents[0].get("blob", "")) if len(contents) == 1 else b""
    checks.check(
        f"{label}: resources/read {uri} gives the saved PNG's bytes",
        read.status == 0 and blob == stored and contents[0].get("mimeType") == "image/png",
        read,
        f"{len(blob):,} bytes read, {len(stored):,} stored; contents {[c.get('mimeType') for c in contents]}",
    )

    templates = inspector.call(target.args, "--method", "resources/templates/list")
    patterns = [template.get("uriTemplate") for template in templates.result.get("resourceTemplates", [])]
    expected = [target.image_template, JOB_PREVIEW_TEMPLATE]
    what = f"{label}: resources/templates/list gives both templates"
    checks.check(what, patterns == expected, templates, f"got {patterns}, expected {expected}")

    history_id = made.result.get("structuredContent", {}).get("history_id")
    history = inspector.call(target.args, "--method", "tools/call", "--tool-name", "list_history")
    records = history.result.get("structuredContent", {}).get("records", [])
    checks.check(
        f"{label}: list_history shows the generate_image call",
        history.status == 0 and any(r.get("uuid") == history_id and r.get("prompt") == PROMPT for r in records),
        history,
        f"history id {history_id} not among {[r.get('uuid') for r in records]}",
    )

    refused = inspector.call(
        target.args, "--method", "tools/call", "--tool-name", "generate_image", "--tool-arg", "prompt=x", "size=10x10"
    )
    texts = [block.get("text", "") for block in refused.blocks("text")]
    message = texts[0] if len(texts) == 1 else ""
    checks.check(
        f"{label}: size 10x10 is refused with the project's message (isError, no validation dump)",
        refused.status == EXIT_TOOL_ERROR
        and refused.result.get("isError") is True
        and message.startswith("size '10x10' is not valid for ")
        and "Common sizes: auto, 1024x1024" in message
        and not any(noise in message for noise in ("pydantic", "validation error", "Traceback")),
        refused,
        f"message {message!r}",
    )

    unknown = inspector.call(
        target.args, "--method", "tools/call", "--tool-name", "generate_image", "--tool-arg", "prompt=x", "n=4"
    )
    texts = [block.get("text", "") for block in unknown.blocks("text")]
    checks.check(
        f"{label}: OpenAI's n is refused with the name meant (sample_count), not silently dropped",
        unknown.status == EXIT_TOOL_ERROR
        and unknown.result.get("isError") is True
        and texts == ["Invalid arguments: unknown parameter 'n' (did you mean 'sample_count'?)."],
        unknown,
        f"texts {texts!r}",
    )

    if target.refused_args:
        wrong = inspector.call(target.refused_args, "--method", "tools/list")
        checks.check(
            f"{label}: a wrong bearer token is refused (the Inspector reports auth_required)",
            wrong.status == EXIT_AUTH_REQUIRED
            and wrong.error.get("code") == "auth_required"
            and any(sign in wrong.error.get("message", "") for sign in ("401", "invalid_token")),
            wrong,
            f"error envelope {wrong.error}",
        )


def generated_problems(made: Answer, scheme: str) -> list[str]:
    """What is wrong with generate_image's answer: one text block, one resource_link in `scheme`, one JPEG
    preview under the limit."""
    from PIL import Image

    if made.status != 0 or made.result.get("isError"):
        return [f"the call failed (exit {made.status})"]
    problems = []
    texts, links, previews = made.blocks("text"), made.blocks("resource_link"), made.blocks("image")
    if len(texts) != 1 or not texts[0].get("text", "").startswith("Saved 1 image"):
        problems.append(f"{len(texts)} text blocks, expected one that starts 'Saved 1 image'")
    if len(links) != 1 or urlsplit(str(links[0].get("uri"))).scheme != scheme:
        problems.append(f"resource links {[link.get('uri') for link in links]}, expected one {scheme}: URI")
    elif links[0].get("mimeType") != "image/png":
        problems.append(f"the link's mimeType is {links[0].get('mimeType')!r}, expected image/png")
    if len(previews) != 1 or previews[0].get("mimeType") != "image/jpeg":
        return [*problems, f"previews {[p.get('mimeType') for p in previews]}, expected one image/jpeg"]
    preview = base64.b64decode(previews[0].get("data", ""))
    with Image.open(io.BytesIO(preview)) as decoded:
        kind = decoded.format
    if kind != "JPEG" or len(preview) > PREVIEW_LIMIT:
        problems.append(
            f"the preview is {kind} of {len(preview):,} bytes, expected a JPEG of at most {PREVIEW_LIMIT:,}"
        )
    return problems


def local_file(result: dict[str, Any]) -> bytes:
    """The local result's file, by its resource_link."""
    link = next(block for block in result["content"] if block.get("type") == "resource_link")
    return Path(url2pathname(urlsplit(link["uri"]).path)).read_bytes()


def s3_object(result: dict[str, Any]) -> bytes:
    """The remote result's object in the bucket (moto), by its s3:// location."""
    from gpt_image_mcp.aws import clients

    location = urlsplit(result["structuredContent"]["images"][0]["location"])
    if location.scheme != "s3":
        raise ValueError(f"location {location.geturl()!r} is not an s3:// URI")
    answer = clients.s3_client().get_object(Bucket=location.netloc, Key=location.path.removeprefix("/"))
    return bytes(answer["Body"].read())


def local_target(home: Path) -> Target:
    """`gpt-image-mcp --emulator` over stdio, its images and history in `home`."""
    from gpt_image_mcp.server.app import LOCAL_TOOLS

    env = {"HOME": home, "OPENAI_IMAGE_OUTPUT_DIR": home / "images", "HISTORY_DB_PATH": home / "history.db"}
    server = [str(Path(sys.executable).parent / "gpt-image-mcp"), "--emulator"]
    return Target(
        name="local stdio",
        args=[*(part for name, value in env.items() for part in ("-e", f"{name}={value}")), "--", *server],
        tools=[spec.name for spec in LOCAL_TOOLS],
        image_template="file:///{+path}",
        link_scheme="file",
        stored_bytes=local_file,
    )


@contextmanager
def remote_target() -> Iterator[Target]:
    """The remote shape over Streamable HTTP with the demo user's bearer token."""
    from gpt_image_mcp.server.app import REMOTE_TOOLS
    from local_sandbox.standins.remote_shape import RemoteShape

    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # the request log would bury the check lines
    with RemoteShape() as shape:

        def reach(token: str) -> list[str]:
            return ["--stored-auth-only", "--header", f"Authorization: Bearer {token}", "--server-url", shape.mcp_url]

        yield Target(
            name="remote shape",
            args=reach(shape.token),
            tools=[spec.name for spec in REMOTE_TOOLS],
            image_template="gpt-image://images/{+key}",
            link_scheme="gpt-image",
            stored_bytes=s3_object,
            refused_args=reach(f"{shape.token}-wrong"),
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--node", type=Path, required=True, help="folder holding the node binary")
    parser.add_argument("--inspector", type=Path, required=True, help="npm prefix the Inspector is installed in")
    args = parser.parse_args()
    checks = Checks()
    with tempfile.TemporaryDirectory(prefix="inspector-") as scratch:
        work = Path(scratch)
        (work / "inspector-home").mkdir()
        (work / "local").mkdir()
        inspector = Inspector(args.node, args.inspector, work / "inspector-home")
        print(f"MCP Inspector {inspector.manifest()['version']}", flush=True)
        for era in ERAS:
            drive(replace(inspector, era=era), local_target(work / "local"), checks)
        with remote_target() as remote:
            for era in ERAS:
                drive(replace(inspector, era=era), remote, checks)
    print(f"\nMCP Inspector: {checks.passed} passed, {checks.failed} failed", flush=True)
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
