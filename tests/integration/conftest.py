"""Fixtures for the in-memory integration tests: input images and a pinned date (`@pytest.mark.settings`, in
tests/conftest.py, gives a test its own settings)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from tool_support import png_bytes

from gpt_image_mcp.core.service import ImageService
from local_sandbox.settings import LocalSettings
from local_sandbox.standins.emulator import images as emulator_images

# gpt-image-1.5 is served until 2026-12-01: tests that use it run on a day before, whatever today is.
BEFORE_SUNSET = dt.datetime(2026, 11, 2, 12, 0, 0, tzinfo=dt.UTC)


@pytest.fixture
def write_input(settings: LocalSettings) -> Callable[..., Path]:
    """Write an image (or any bytes) into the input folder; returns its path."""

    def write(name: str, width: int = 256, height: int = 256, mode: str = "RGB", data: bytes | None = None) -> Path:
        path = settings.input_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes(width, height, mode) if data is None else data)
        return path

    return write


@pytest.fixture
def before_sunset(service: ImageService, monkeypatch: pytest.MonkeyPatch) -> dt.datetime:
    """Run the service and the emulator on a fixed day on which gpt-image-1.5 is still served."""
    monkeypatch.setattr(service, "clock", lambda: BEFORE_SUNSET)
    monkeypatch.setattr(emulator_images, "today", lambda: BEFORE_SUNSET.date())
    return BEFORE_SUNSET
