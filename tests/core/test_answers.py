"""Reading an images answer: the base64 values are taken out of the JSON text as they are (not parsed, not copied),
and anything that is not plainly laid out is parsed whole, so the result is always what the JSON says."""

from __future__ import annotations

import base64
import json

import pytest

from gpt_image_mcp.core.answers import decode_b64, load_json

PICTURE = bytes(range(256)) * 40
ENCODED = base64.b64encode(PICTURE).decode()
SECOND = base64.b64encode(b"second").decode()


def values(body: bytes) -> tuple[object, list[bytes]]:
    document, encoded = load_json(body)
    return document, [decode_b64(value) for value in encoded]


@pytest.mark.parametrize("separators", [(",", ":"), (", ", ": "), (",\n  ", " :\t")])
def test_the_images_come_out_of_the_text_and_the_rest_is_parsed(separators: tuple[str, str]) -> None:
    body = json.dumps(
        {"created": 1, "data": [{"b64_json": ENCODED}, {"b64_json": SECOND}], "usage": {"x": 1}},
        separators=separators,
    ).encode()
    document, images = values(body)
    assert document == {"created": 1, "data": [{"b64_json": ""}, {"b64_json": ""}], "usage": {"x": 1}}
    assert images == [PICTURE, b"second"]
    assert all(isinstance(value, memoryview) for value in load_json(body)[1])  # views, not copies


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"data": [{"b64_json": ENCODED.replace("/", "\\/")}]}).replace("\\\\/", "\\/").encode(),
        json.dumps({"kind": "b64_json", "data": [{"b64_json": ENCODED}]}).encode(),
        json.dumps({"data": [{"b64_json": 7}]}).encode(),
    ],
    ids=["escaped-slash", "the-name-as-a-value", "not-a-string"],
)
def test_text_that_is_not_plainly_laid_out_is_parsed_whole(body: bytes) -> None:
    document, encoded = load_json(body)
    whole = json.loads(body)
    assert document == whole
    assert [str(value) for value in encoded] == [
        item["b64_json"] for item in whole["data"] if isinstance(item["b64_json"], str)
    ]


def test_the_name_inside_a_string_is_not_taken_for_the_key() -> None:
    body = json.dumps({"note": 'say "b64_json": "no"', "data": [{"b64_json": ENCODED}]}).encode()
    document, images = values(body)
    assert document == {"note": 'say "b64_json": "no"', "data": [{"b64_json": ""}]}
    assert images == [PICTURE]


def test_json_cut_short_is_reported_where_the_whole_text_breaks() -> None:
    body = json.dumps({"data": [{"b64_json": ENCODED}], "usage": {"output_tokens": 1}}).encode()
    with pytest.raises(json.JSONDecodeError) as caught:
        load_json(body[:-5])
    assert caught.value.pos > len(ENCODED)  # a position in the answer, not in the text without its images
