"""The API Gateway stand-in keeps quiet when a client hangs up, and still reports a real error.

Node's fetch (the MCP Inspector's) resets its idle keep-alive connections as it exits; each reset used to print a
`ConnectionResetError` traceback from the front's handler thread into the shape's output."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local_sandbox.standins.api_gateway import ApiGatewayFront

CLIENT = ("127.0.0.1", 50000)


@pytest.fixture
def front() -> Iterator[ApiGatewayFront]:
    server = ApiGatewayFront(("127.0.0.1", 0))
    try:
        yield server
    finally:
        server.server_close()


def fail_in_handler(front: ApiGatewayFront, error: Exception) -> None:
    """What socketserver does when a request's handler raises `error`."""
    try:
        raise error
    except Exception:
        front.handle_error(None, CLIENT)  # type: ignore[arg-type]  # the request itself is not used


def test_a_client_that_resets_its_connection_is_no_traceback(
    front: ApiGatewayFront, capsys: pytest.CaptureFixture[str]
) -> None:
    fail_in_handler(front, ConnectionResetError(104, "Connection reset by peer"))
    fail_in_handler(front, BrokenPipeError(32, "Broken pipe"))
    assert capsys.readouterr().err == ""


def test_any_other_error_in_a_handler_still_prints_its_traceback(
    front: ApiGatewayFront, capsys: pytest.CaptureFixture[str]
) -> None:
    fail_in_handler(front, ValueError("a bug in the front"))
    printed = capsys.readouterr().err
    assert f"Exception occurred during processing of request from {CLIENT}" in printed
    assert "ValueError: a bug in the front" in printed
