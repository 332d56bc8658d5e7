"""The tools' JSON schemas, generated once and shipped beside this module, so start-up does not build them.

`tools/list` needs every tool's input and output schema. Generating them from the pydantic models costs about 40 ms
at each start (24 schemas), which is most of what this server adds to the SDK's own start-up, and a Lambda cold
start pays it too. So `schemas.json` holds them, written by this module from the models themselves:

    python -m gpt_image_mcp.server.schema_cache

A schema is served from the file only when the file was written by the same pydantic and mcp versions as are
running, for a model it names; anything else is generated as before, so the file can make start-up faster but never
make a listing differ from the models. `tests/test_schema_cache.py` fails when the file is stale.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

from pydantic import BaseModel

FILE = Path(__file__).with_name("schemas.json")


def model_key(model: type[BaseModel]) -> str:
    return f"{model.__module__}.{model.__qualname__}"


def _versions() -> dict[str, str]:
    from pydantic import VERSION

    return {"pydantic": VERSION, "mcp": version("mcp")}


@cache
def _shipped() -> dict[str, dict[str, Any]]:
    """The file's schemas, or none when it is missing, unreadable or from other library versions."""
    try:
        data = json.loads(FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"input": {}, "output": {}}
    if data.get("versions") != _versions():
        return {"input": {}, "output": {}}
    return {"input": data["input"], "output": data["output"]}


def generate_input(model: type[BaseModel]) -> dict[str, Any]:
    """The argument model's own schema, without its docstring (the tool's description says what it does)."""
    schema = model.model_json_schema(by_alias=True)
    schema.pop("description", None)
    return schema


def generate_output(model: type[BaseModel]) -> dict[str, Any]:
    """The output schema exactly as the SDK derives it for a tool whose results are `model`."""
    from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata

    schema = FuncMetadata(arg_model=ArgModelBase, output_model=model).output_schema
    assert schema is not None
    return schema


def input_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`generate_input(model)`, from the shipped file when it holds it. Shared between servers: do not change it."""
    shipped = _shipped()["input"].get(model_key(model))
    return shipped if shipped is not None else generate_input(model)


def output_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`generate_output(model)`, from the shipped file when it holds it. Shared between servers: do not change it."""
    shipped = _shipped()["output"].get(model_key(model))
    return shipped if shipped is not None else generate_output(model)


def build() -> dict[str, Any]:
    """The file's content: the schemas of every tool either deployment serves, generated from their models."""
    from gpt_image_mcp.server.app import REMOTE_TOOLS

    return {
        "versions": _versions(),
        "input": {model_key(spec.arguments): generate_input(spec.arguments) for spec in REMOTE_TOOLS},
        "output": {model_key(spec.output): generate_output(spec.output) for spec in REMOTE_TOOLS},
    }


def main() -> None:
    # Keys stay in the models' order: clients show (and models read) a tool's parameters in the order listed.
    FILE.write_text(json.dumps(build(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {FILE.name}")


if __name__ == "__main__":
    main()
