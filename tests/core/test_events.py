"""Server-sent events cut from a byte stream however it is chunked, and a streamed answer gathered from them."""

from __future__ import annotations

import base64
import json

import pytest

from gpt_image_mcp.core.errors import UpstreamError
from gpt_image_mcp.core.events import EventReader, Partial, StreamedAnswer, StreamedError

IMAGE = b"\x89PNG" + bytes(range(256)) * 64


def event(name: str, **data: object) -> bytes:
    return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()


STREAM = event(
    "image_generation.partial_image", b64_json=base64.b64encode(b"preview").decode(), partial_image_index=0
) + event(
    "image_generation.completed",
    b64_json=base64.b64encode(IMAGE).decode(),
    size="1024x1024",
    quality="low",
    usage={"output_tokens": 196},
)


@pytest.mark.parametrize("chunk", [1, 7, 4096, len(STREAM)])
def test_events_come_out_whole_however_the_bytes_are_cut(chunk: int) -> None:
    reader = EventReader()
    events = []
    for start in range(0, len(STREAM), chunk):
        events += reader.feed(STREAM[start : start + chunk])
    assert [name for name, _ in events] == ["image_generation.partial_image", "image_generation.completed"]
    assert json.loads(events[1][1])["usage"] == {"output_tokens": 196}


def test_crlf_lines_and_several_data_lines_make_one_event() -> None:
    assert EventReader().feed(b'event: x\r\ndata: {"a":\r\ndata: 1}\r\n\r\n: a comment\n\n') == [("x", b'{"a":\n1}')]


def test_a_streamed_answer_gives_its_partials_then_the_image() -> None:
    answer = StreamedAnswer(200, "text/event-stream", "req_1", "https://api.openai.com/v1")
    taken = [answer.take(name, data) for name, data in EventReader().feed(STREAM)]
    assert taken == [Partial(0, b"preview"), None]
    result = answer.result(attempts=1)
    assert (result.images, result.usage, result.partial_images) == ([IMAGE], {"output_tokens": 196}, 1)
    assert result.echoed == {"size": "1024x1024", "quality": "low"}


def test_an_error_event_raises_with_its_body() -> None:
    answer = StreamedAnswer(200, "text/event-stream", "req_1", "https://api.openai.com/v1")
    with pytest.raises(StreamedError) as caught:
        answer.take("error", b'{"type": "error", "error": {"code": "server_error", "message": "boom"}}')
    assert caught.value.body == {"code": "server_error", "message": "boom"}


def test_a_stream_without_an_image_names_the_events_it_had() -> None:
    answer = StreamedAnswer(200, "text/event-stream", "req_1", "https://api.openai.com/v1")
    for name, data in EventReader().feed(STREAM[: STREAM.index(b"event: image_generation.completed")]):
        answer.received(data)
        answer.take(name, data)
    with pytest.raises(
        UpstreamError, match=r"the stream ended without an image \(events: image_generation\.partial_image\)"
    ):
        answer.result(attempts=1)
