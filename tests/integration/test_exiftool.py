"""The metadata this server embeds, read by a reader nobody here wrote: exiftool (Debian's libimage-exiftool-perl,
which `.ci/run` installs). Every field comes back with its value, in every format, with no warning about the file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from tool_support import succeeds

pytestmark = pytest.mark.anyio
PROMPT = "ein Fuchs im Schnee, 雪の中の狐 — with “quotes”"


@pytest.fixture
def exiftool() -> str:
    found = shutil.which("exiftool")
    if found is None:
        message = "exiftool is not installed (apt-get install libimage-exiftool-perl)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; .ci/run installs it")
        pytest.skip(message)
    return found


def read_with_exiftool(exiftool: str, path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [exiftool, "-json", "-a", "-G1", "-charset", "utf8", str(path)],
        capture_output=True,
        check=True,
        text=True,
        encoding="utf-8",
    )
    tags: dict[str, Any] = json.loads(done.stdout)[0]
    return tags


def embedded(tags: dict[str, Any]) -> dict[str, Any]:
    """The MCP-* fields as exiftool reports them: PNG text chunks, or the JSON in the EXIF UserComment."""
    if "ExifIFD:UserComment" in tags:
        fields: dict[str, Any] = json.loads(tags["ExifIFD:UserComment"])
        return fields
    return {name.split(":", 1)[1]: value for name, value in tags.items() if name.startswith("PNG:MCP-")}


@pytest.mark.parametrize("output_format", ["png", "jpeg", "webp"])
async def test_exiftool_reads_every_embedded_field(client: Client, exiftool: str, output_format: str) -> None:
    result = await succeeds(client, "generate_image", {"prompt": PROMPT, "output_format": output_format})
    assert result.structured_content is not None
    image = result.structured_content["images"][0]
    tags = read_with_exiftool(exiftool, Path(image["location"]))
    assert not [name for name in tags if name.endswith((":Warning", ":Error"))], tags
    assert tags["File:MIMEType"] == image["mime_type"]
    fields = embedded(tags)
    assert fields["MCP-Prompt"] == PROMPT
    assert fields["MCP-Tool"] == "generate_image"
    assert fields["MCP-Format"] == output_format
    assert fields["MCP-History-UUID"] == result.structured_content["history_id"]
    assert fields["MCP-Model"] == result.structured_content["model"]
    assert len(fields["MCP-Param-Hash"]) == 64
