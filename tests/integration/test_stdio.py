"""The real server as a subprocess over stdio, driven by the SDK client in both protocol eras."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from mcp import Client
from stdio_support import server_params

from local_sandbox.standins.emulator import EmulatorServer

pytestmark = pytest.mark.anyio
MODES = ["auto", "legacy"]


@pytest.mark.parametrize("mode", MODES)
async def test_generate_over_stdio(tmp_path: Path, emulator: EmulatorServer, mode: str) -> None:
    params = server_params(tmp_path, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=emulator.base_url)
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with Client(params, mode=mode) as client:
        tools = [tool.name for tool in (await client.list_tools()).tools]
        assert tools[:7] == [
            "generate_image",
            "edit_image",
            "transform_image",
            "list_generated_images",
            "list_history",
            "get_history_by_uuid",
            "get_metadata_from_image",
        ]
        result = await client.call_tool(
            "generate_image", {"prompt": "a lighthouse", "output_path": "sea/light.png"}, progress_callback=on_progress
        )
    assert not result.is_error, result.content
    assert (tmp_path / "out" / "sea" / "light.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.structured_content is not None
    assert result.structured_content["images"][0]["path"] == "sea/light.png"
    assert progress and progress[-1] >= 0.8


async def test_eight_concurrent_calls_with_one_output_path_make_eight_files(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    params = server_params(tmp_path, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=emulator.base_url)
    paths: list[str] = []
    async with Client(params) as client:

        async def one() -> None:
            result = await client.call_tool("generate_image", {"prompt": "same name", "output_path": "same.png"})
            assert not result.is_error, result.content
            assert result.structured_content is not None
            paths.append(result.structured_content["images"][0]["path"])

        async with anyio.create_task_group() as group:
            for _ in range(8):
                group.start_soon(one)
    assert len(set(paths)) == 8
    files = sorted(path.name for path in (tmp_path / "out").glob("same*.png"))
    assert len(files) == 8 and "same.png" in files


async def test_without_a_key_tools_list_and_calls_explain(tmp_path: Path, emulator: EmulatorServer) -> None:
    async with Client(server_params(tmp_path)) as client:
        assert len((await client.list_tools()).tools) >= 7
        result = await client.call_tool("generate_image", {"prompt": "anything"})
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert "OPENAI_API_KEY is not set" in text and "--emulator" in text
    assert emulator.requests == []
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


async def test_a_desktop_client_starting_the_server_in_root_gets_the_key_from_the_config_folder(
    tmp_path: Path, emulator: EmulatorServer
) -> None:
    config = tmp_path / "home" / ".openai-gpt-image"
    config.mkdir(parents=True)
    (config / ".env").write_text(f"OPENAI_API_KEY=sk-test\nOPENAI_BASE_URL={emulator.base_url}\n")
    params = server_params(tmp_path).model_copy(update={"cwd": "/"})  # as Claude Desktop starts it
    async with Client(params) as client:
        result = await client.call_tool("generate_image", {"prompt": "from the config folder", "output_path": "c.png"})
    assert not result.is_error, result.content
    assert (tmp_path / "out" / "c.png").is_file()
    assert len(emulator.requests) == 1


async def test_emulator_flag_makes_images_with_no_key(tmp_path: Path) -> None:
    async with Client(server_params(tmp_path, "--emulator")) as client:
        result = await client.call_tool("generate_image", {"prompt": "offline", "output_format": "webp"})
    assert not result.is_error, result.content
    saved = list((tmp_path / "out").glob("*.webp"))
    assert len(saved) == 1 and saved[0].read_bytes()[8:12] == b"WEBP"


async def test_dotenv_in_working_directory_is_read(tmp_path: Path, emulator: EmulatorServer) -> None:
    (tmp_path / ".env").write_text(f"OPENAI_API_KEY=sk-from-dotenv\nOPENAI_BASE_URL={emulator.base_url}\n")
    async with Client(server_params(tmp_path)) as client:
        result = await client.call_tool("generate_image", {"prompt": "from dotenv", "quality": "low"})
    assert not result.is_error, result.content
    assert len(emulator.requests) == 1
