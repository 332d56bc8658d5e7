"""Reading a batch file: both shapes, JSON and YAML, defaults, every kind of problem with the message a user reads,
and the identity each request's jobs are keyed by."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from batch_support import write_batch

from gpt_image_mcp.core.requests import EditImageArgs, GenerateImageArgs
from local_sandbox.batch.batchfile import BatchFileError, read_batch


def problems(path: Path) -> list[str]:
    with pytest.raises(BatchFileError) as caught:
        read_batch(path)
    assert caught.value.path == path
    return caught.value.problems


def test_a_list_of_requests_with_the_tools_defaults(tmp_path: Path) -> None:
    path = write_batch(tmp_path / "b.json", [{"tool": "generate_image", "prompt": "a fox"}])
    [request] = read_batch(path)
    assert (request.index, request.where, request.tool) == (0, "[0]", "generate_image")
    assert request.args == GenerateImageArgs(prompt="a fox")  # the tool's own defaults
    assert request.arguments == {**GenerateImageArgs(prompt="a fox").model_dump(mode="json", exclude_none=True)}


def test_defaults_apply_where_the_tool_takes_them_and_requests_override_them(tmp_path: Path) -> None:
    document = {
        "defaults": {"tool": "generate_image", "quality": "low", "input_fidelity": "high"},
        "requests": [
            {"prompt": "one"},
            {"prompt": "two", "quality": "high"},
            {"tool": "edit_image", "prompt": "three", "reference_image_path": "in.png"},
        ],
    }
    first, second, third = read_batch(write_batch(tmp_path / "b.json", document))
    assert (first.tool, first.args.quality, second.args.quality) == ("generate_image", "low", "high")
    assert isinstance(third.args, EditImageArgs)
    assert (third.where, third.args.quality, third.args.input_fidelity) == ("requests[2]", "low", "high")


def test_yaml_files_read_like_json(tmp_path: Path) -> None:
    path = tmp_path / "b.yaml"
    path.write_text(
        "defaults:\n  quality: low\nrequests:\n  - tool: generate_image\n    prompt: |\n      a fox,\n      at dawn\n",
        encoding="utf-8",
    )
    [request] = read_batch(path)
    assert (request.args.prompt, request.args.quality) == ("a fox,\nat dawn\n", "low")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[{"tool": "generate_image", "prompt": "x"},]', "is not valid JSON: Expecting value at line 1 column 44"),
        ("requests:\n  - tool: [unclosed\n", "is not valid YAML: "),
        ('"just text"', 'must hold a list of requests, or an object {"defaults": {...}, "requests": [...]}, not'),
        ('{"prompts": []}', 'must hold a list of requests, or an object {"defaults": {...}, "requests": [...]}'),
        ('{"requests": [], "extra": 1}', "unknown top-level key 'extra'; allowed: defaults, requests"),
        ('{"requests": {"tool": "generate_image"}}', '"requests" must be a list of requests, not an object'),
        ("[]", "has no requests"),
        ('{"defaults": [1], "requests": [{}]}', '"defaults" must be an object of parameters, not a list'),
    ],
)
def test_a_malformed_file_says_what_is_wrong(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / ("b.yaml" if content.startswith("requests:") else "b.json")
    path.write_text(content, encoding="utf-8")
    [problem] = problems(path)
    assert problem.startswith(message), problem


def test_yaml_problems_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "b.yml"
    path.write_text("requests:\n  - tool: generate_image\n    prompt: [unclosed\n", encoding="utf-8")
    [problem] = problems(path)
    assert problem.startswith("is not valid YAML: ") and " at line 4 column 1" in problem, problem


def test_json_problems_in_a_file_that_is_not_named_json_mention_yaml(tmp_path: Path) -> None:
    path = tmp_path / "batch.txt"
    path.write_text("requests:\n  - tool: generate_image\n", encoding="utf-8")
    assert problems(path) == [
        "is not valid JSON: Expecting value at line 1 column 1 (a YAML file needs a .yaml or .yml name)"
    ]


def test_files_that_cannot_be_read(tmp_path: Path) -> None:
    assert problems(tmp_path / "missing.json") == ["no such file"]
    assert problems(tmp_path) == ["is a folder; give the batch file itself"]
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'[{"prompt": "caf\xe9"}]')
    assert problems(latin) == ["is not UTF-8 text (at byte offset 16)"]


BAD_REQUESTS: list[tuple[Any, str]] = [
    ("a fox", 'must be an object such as {"tool": "generate_image", "prompt": "..."}, not the text \'a fox\''),
    ({"prompt": "x"}, 'no "tool"; give one of generate_image, edit_image, transform_image (or a "tool" in "defaults")'),
    ({"tool": "upscale_image", "prompt": "x"}, "tool 'upscale_image' is not one of generate_image, edit_image,"),
    (
        {"tool": "generate_image", "prompt": "x", "qualty": "low"},
        "unknown parameter 'qualty' (did you mean 'quality'?)",
    ),
    ({"tool_name": "generate_image", "prompt": "x"}, "unknown parameter 'tool_name' (did you mean 'tool'?)"),
    (
        {"tool": "generate_image", "prompt": "x", "mask_image_path": "m.png"},
        "mask_image_path is not a parameter of generate_image (only edit_image takes it); choose that tool or leave it",
    ),
    ({"tool": "generate_image"}, "prompt: Field required"),
    ({"tool": "generate_image", "prompt": "x", "sample_count": 11}, "sample_count: Input should be less than or"),
    ({"tool": "generate_image", "prompt": "x", "quality": "ultra"}, "quality: Input should be 'auto', 'low',"),
    ({"tool": "generate_image", "prompt": "   "}, "prompt: Value error, the prompt is blank (3 whitespace characters)"),
]


@pytest.mark.parametrize(("request_", "message"), BAD_REQUESTS)
def test_a_bad_request_is_named_by_its_place_in_the_file(tmp_path: Path, request_: Any, message: str) -> None:
    good = {"tool": "generate_image", "prompt": "fine"}
    path = write_batch(tmp_path / "b.json", {"requests": [good, request_]})
    [problem] = problems(path)
    assert problem.startswith(f"requests[1]: {message}"), problem


def test_every_problem_is_reported_at_once_and_the_message_names_the_file(tmp_path: Path) -> None:
    path = write_batch(
        tmp_path / "b.json",
        {"defaults": {"qualty": "low"}, "requests": [{"tool": "generate_image"}, {"tool": "x", "prompt": "y"}]},
    )
    with pytest.raises(BatchFileError) as caught:
        read_batch(path)
    assert caught.value.message == (
        f"{path}: 3 problems; nothing was sent.\n"
        "  defaults: unknown parameter 'qualty' (did you mean 'quality'?)\n"
        "  requests[0]: prompt: Field required\n"
        "  requests[1]: tool 'x' is not one of generate_image, edit_image, transform_image"
    )


def test_identity_follows_the_file_and_the_parameters_not_the_position(tmp_path: Path) -> None:
    fox, owl = {"tool": "generate_image", "prompt": "fox"}, {"tool": "generate_image", "prompt": "owl"}
    before = read_batch(write_batch(tmp_path / "b.json", [fox, owl]))
    inserted = read_batch(write_batch(tmp_path / "b.json", [{"tool": "generate_image", "prompt": "new"}, fox, owl]))
    assert [r.identity for r in inserted[1:]] == [r.identity for r in before]  # adding a request changes no other
    twice = read_batch(write_batch(tmp_path / "b.json", [fox, fox]))
    assert twice[0].identity != twice[1].identity  # the same request twice is two requests
    edited = read_batch(write_batch(tmp_path / "b.json", [{**fox, "quality": "high"}, owl]))
    assert edited[0].identity != before[0].identity and edited[1].identity == before[1].identity
    explicit_default = read_batch(write_batch(tmp_path / "b.json", [{**fox, "quality": "auto"}, owl]))
    assert explicit_default[0].identity == before[0].identity  # writing out a default changes nothing
    elsewhere = read_batch(write_batch(tmp_path / "other.json", [fox, owl]))
    assert elsewhere[0].identity != before[0].identity
    assert before[0].key(0) == f"batch:{before[0].identity}" and before[0].key(2).endswith(":retry2")


def test_the_readme_example_is_a_batch_file(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Batch: many images from a file") :]
    example = section[section.index("```json\n") + len("```json\n") : section.index("\n```", section.index("```json"))]
    path = tmp_path / "icons.json"
    path.write_text(example, encoding="utf-8")
    requests = read_batch(path)
    assert [(r.tool, r.args.sample_count, r.args.output_format) for r in requests] == [
        ("generate_image", 1, "webp"),
        ("generate_image", 3, "webp"),
        ("edit_image", 1, "png"),
    ]
