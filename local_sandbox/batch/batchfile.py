"""Read a batch file: JSON (or YAML), a list of requests or `{"defaults": {...}, "requests": [...]}`.

Each request is `{"tool": "generate_image" | "edit_image" | "transform_image", ...that tool's parameters}`, checked
by the tool's own argument model (`core.requests`), so names, defaults and bounds are the MCP tools'. Unlike a tool
call, a parameter no tool knows is refused (a typo in a file of 200 requests should not quietly make 200 wrong
images). Every problem in the file is reported at once, each under its JSON path (`requests[3]`).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError

from gpt_image_mcp.core.errors import UserFacingError
from gpt_image_mcp.core.requests import (
    ARGS_BY_TOOL,
    EditImageArgs,
    ImageToolArgs,
    ImageToolName,
    refuse_foreign,
    unknown_parameters,
)
from gpt_image_mcp.server.tooling import describe_validation_error

TOOLS: tuple[ImageToolName, ...] = get_args(ImageToolName)
PARAMETERS = frozenset(EditImageArgs.model_fields)  # every image tool's parameters (edit_image takes them all)
YAML_SUFFIXES = (".yaml", ".yml")
TOP_LEVEL_KEYS = ("defaults", "requests")
SHOWN_PROBLEMS = 20


class BatchFileError(Exception):
    """The file cannot be run as it is: every problem found, each naming where it is."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(self.message)

    @property
    def message(self) -> str:
        if len(self.problems) == 1:
            return f"{self.path}: {self.problems[0]}"
        shown = [f"  {problem}" for problem in self.problems[:SHOWN_PROBLEMS]]
        if len(self.problems) > SHOWN_PROBLEMS:
            shown.append(f"  ... and {len(self.problems) - SHOWN_PROBLEMS} more")
        return "\n".join([f"{self.path}: {len(self.problems)} problems; nothing was sent.", *shown])


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """One request of the file, validated, with the identity its jobs are keyed by."""

    index: int
    where: str  # its JSON path in the file, for messages: "requests[3]" or "[3]"
    tool: ImageToolName
    args: ImageToolArgs
    identity: str

    def key(self, attempt: int) -> str:
        """The job key of the `attempt`-th try (0 first): a failed try is retried by the next run under the next key,
        and every earlier key still names its own job."""
        return f"batch:{self.identity}" + (f":retry{attempt}" if attempt else "")

    @property
    def arguments(self) -> dict[str, Any]:
        """The tool's parameters as sent: only the ones given (the tool fills in the same defaults)."""
        return self.args.model_dump(mode="json", exclude_none=True)


def read_batch(path: Path) -> list[BatchRequest]:
    """The requests of the batch file at `path`; `BatchFileError` with every problem when it cannot be run."""
    document = _load(path)
    requests, defaults, where = _shape(path, document)
    problems: list[str] = []
    if not isinstance(defaults, dict):
        raise BatchFileError(path, [f'"defaults" must be an object of parameters, not {_kind(defaults)}'])
    problems += [f"defaults: {problem}" for problem in _unknown(defaults)]
    parsed: list[tuple[int, ImageToolName, ImageToolArgs]] = []
    for index, request in enumerate(requests):
        try:
            tool, args = _request(request, defaults)
        except _Problem as problem:
            problems.append(f"{where}[{index}]: {problem}")
        else:
            parsed.append((index, tool, args))
    if problems:
        raise BatchFileError(path, problems)
    return _identified(path, where, parsed)


class _Problem(Exception):
    pass


def _load(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BatchFileError(path, ["no such file"]) from None
    except IsADirectoryError:
        raise BatchFileError(path, ["is a folder; give the batch file itself"]) from None
    except UnicodeDecodeError as error:
        raise BatchFileError(path, [f"is not UTF-8 text (at byte offset {error.start})"]) from None
    except OSError as error:
        raise BatchFileError(path, [f"cannot be read: {error.strerror}"]) from None
    if path.suffix.lower() in YAML_SUFFIXES:
        import yaml  # only for YAML files

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            at = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
            reason = getattr(error, "problem", None) or str(error)
            raise BatchFileError(path, [f"is not valid YAML: {reason}{at}"]) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        hint = " (a YAML file needs a .yaml or .yml name)" if path.suffix.lower() != ".json" else ""
        raise BatchFileError(
            path, [f"is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}{hint}"]
        ) from None


def _shape(path: Path, document: Any) -> tuple[list[Any], Any, str]:
    """The requests, the defaults, and how a request's place is written."""
    if isinstance(document, list):
        requests, defaults, where = document, {}, ""
    elif isinstance(document, dict) and "requests" in document:
        extra = [key for key in document if key not in TOP_LEVEL_KEYS]
        if extra:
            raise BatchFileError(path, [f"unknown top-level key '{extra[0]}'; allowed: {', '.join(TOP_LEVEL_KEYS)}"])
        requests, defaults, where = document["requests"], document.get("defaults", {}), "requests"
        if not isinstance(requests, list):
            raise BatchFileError(path, [f'"requests" must be a list of requests, not {_kind(requests)}'])
    else:
        raise BatchFileError(
            path,
            [
                'must hold a list of requests, or an object {"defaults": {...}, "requests": [...]}, '
                f"not {_kind(document)}"
            ],
        )
    if not requests:
        raise BatchFileError(path, ["has no requests"])
    return requests, defaults, where


def _request(request: Any, defaults: dict[str, Any]) -> tuple[ImageToolName, ImageToolArgs]:
    if not isinstance(request, dict):
        raise _Problem(f'must be an object such as {{"tool": "generate_image", "prompt": "..."}}, not {_kind(request)}')
    unknown = _unknown(request)
    if unknown:
        raise _Problem("; ".join(unknown))
    tool = request.get("tool", defaults.get("tool"))
    if tool is None:
        raise _Problem(f'no "tool"; give one of {", ".join(TOOLS)} (or a "tool" in "defaults")')
    if tool not in TOOLS:
        raise _Problem(f"tool {tool!r} is not one of {', '.join(TOOLS)}")
    model = ARGS_BY_TOOL[tool]
    # A default applies where the tool takes it (input_fidelity for the edits of a mixed file); the request's own
    # parameters must all be the tool's.
    given = {name: value for name, value in defaults.items() if name in model.model_fields}
    given |= {name: value for name, value in request.items() if name != "tool"}
    try:
        refuse_foreign(tool, given, chooser="tool")
        return tool, model.model_validate(given)
    except UserFacingError as error:
        raise _Problem(error.message) from None
    except ValidationError as error:
        raise _Problem(describe_validation_error(error)) from None


def _unknown(parameters: dict[str, Any]) -> list[str]:
    """One message per key that no image tool takes, with the nearest name when one is close."""
    return unknown_parameters((str(name) for name in parameters), {"tool", *PARAMETERS})


def _identified(path: Path, where: str, parsed: list[tuple[int, ImageToolName, ImageToolArgs]]) -> list[BatchRequest]:
    """Give each request its identity: the file, the tool and its parameters, and which occurrence of exactly these
    it is. Not its position: adding or moving requests leaves the others' identities, and so their jobs, as they were;
    two identical requests stay two."""
    seen: Counter[str] = Counter()
    requests = []
    for index, tool, args in parsed:
        content = json.dumps({"tool": tool, "arguments": args.model_dump(mode="json")}, sort_keys=True)
        occurrence = seen[content]
        seen[content] += 1
        source = json.dumps({"file": str(path.resolve()), "request": content, "occurrence": occurrence})
        identity = hashlib.sha256(source.encode("utf-8")).hexdigest()[:32]
        requests.append(BatchRequest(index, f"{where}[{index}]", tool, args, identity))
    return requests


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return f"the text {value[:30]!r}"
    names = {list: "a list", dict: "an object", bool: "true/false", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
