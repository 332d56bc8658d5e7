"""Small helpers shared by the integration tests: call a tool, read its text, look at files and requests."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from calls import refused, succeeds, text  # noqa: F401 - re-exported for the tests of this folder
from mcp import Client
from mcp.types import CallToolResult, ImageContent, ResourceLink
from PIL import Image

from local_sandbox.standins.emulator import EmulatorServer


def image_blocks(result: CallToolResult) -> list[ImageContent]:
    return [block for block in result.content if isinstance(block, ImageContent)]


def links(result: CallToolResult) -> list[ResourceLink]:
    return [block for block in result.content if isinstance(block, ResourceLink)]


def image_requests(emulator: EmulatorServer) -> list[dict[str, Any]]:
    """What the emulator received on the Images API, oldest first."""
    return [entry for entry in emulator.requests if str(entry["path"]).startswith("/v1/images/")]


def files_under(folder: Path) -> list[str]:
    """Every file below `folder` as a sorted POSIX path relative to it; [] when it does not exist."""
    if not folder.exists():
        return []
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())


def png_bytes(width: int = 256, height: int = 256, mode: str = "RGB") -> bytes:
    """A real PNG: a colour field with a square; in RGBA the square is fully transparent (a mask)."""
    colour = {"RGB": (40, 90, 160), "RGBA": (40, 90, 160, 255), "L": 128}[mode]
    image = Image.new(mode, (width, height), colour)
    hole = {"RGB": (250, 200, 0), "RGBA": (0, 0, 0, 0), "L": 0}[mode]
    image.paste(hole, (width // 4, height // 4, width // 2, height // 2))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def decode_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


async def history_total(client: Client) -> int:
    result = await succeeds(client, "list_history", {})
    assert result.structured_content is not None
    total: int = result.structured_content["total"]
    return total
