"""The shipped tool schemas (`server/schemas.json`) are what the models generate, and they are used only when they
were written by the running library versions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpt_image_mcp.core.requests import GenerateImageArgs
from gpt_image_mcp.core.results import ImageToolResult
from gpt_image_mcp.server import schema_cache

REGENERATE = "stale: run `python -m gpt_image_mcp.server.schema_cache` and commit server/schemas.json"


def test_the_shipped_schemas_are_those_the_models_generate() -> None:
    shipped = json.loads(schema_cache.FILE.read_text(encoding="utf-8"))
    built = schema_cache.build()
    for kind in ("input", "output"):  # in the same order too: a listing shows the parameters in the file's order
        assert json.dumps(shipped[kind]) == json.dumps(built[kind]), REGENERATE


@pytest.fixture
def shipped_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "schemas.json"
    monkeypatch.setattr(schema_cache, "FILE", path)
    schema_cache._shipped.cache_clear()
    yield path
    schema_cache._shipped.cache_clear()


def _write(path: Path, versions: dict[str, str]) -> None:
    marked = {"input": {schema_cache.model_key(GenerateImageArgs): {"properties": {}, "marker": "input"}},
              "output": {schema_cache.model_key(ImageToolResult): {"marker": "output"}}}  # fmt: skip
    path.write_text(json.dumps({"versions": versions, **marked}), encoding="utf-8")


def test_schemas_come_from_the_file_written_by_the_running_versions(shipped_file: Path) -> None:
    _write(shipped_file, schema_cache._versions())
    assert schema_cache.input_schema(GenerateImageArgs)["marker"] == "input"
    assert schema_cache.output_schema(ImageToolResult) == {"marker": "output"}


def test_a_file_from_other_versions_or_a_missing_one_is_not_used(shipped_file: Path) -> None:
    _write(shipped_file, {**schema_cache._versions(), "pydantic": "0.0.1"})
    assert schema_cache.input_schema(GenerateImageArgs) == schema_cache.generate_input(GenerateImageArgs)
    assert schema_cache.output_schema(ImageToolResult) == schema_cache.generate_output(ImageToolResult)
    shipped_file.unlink()
    schema_cache._shipped.cache_clear()
    assert schema_cache.input_schema(GenerateImageArgs) == schema_cache.generate_input(GenerateImageArgs)
