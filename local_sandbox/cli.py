"""`gpt-image-mcp`: run the local server over stdio (default) or HTTP on loopback.

`--emulator` starts the bundled offline stand-in for the OpenAI Images API and points the server at
it, so every tool can be tried with no key and no network. It is never used silently: without a key
and without the flag, image calls explain what is missing.

`gpt-image-mcp batch FILE ...` runs many image requests from a file instead (`local_sandbox.batch`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from gpt_image_mcp import __version__

if TYPE_CHECKING:
    from local_sandbox.settings import LocalSettings
    from local_sandbox.standins.emulator import EmulatorServer

EMULATOR_KEY = "sk-emulator-local"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="gpt-image-mcp",
        description=__doc__.split("\n\n")[0],
        epilog="gpt-image-mcp batch FILE [...]: run many image requests from a file (see gpt-image-mcp batch --help).",
    )
    parser.add_argument(
        "--transport",
        choices=("stdio", "http"),
        default="stdio",
        help="stdio (default, for Claude Desktop / Claude Code) or streamable HTTP on loopback",
    )
    parser.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    parser.add_argument(
        "--emulator",
        action="store_true",
        help="use the bundled offline OpenAI images emulator instead of api.openai.com",
    )
    parser.add_argument("--emulator-latency-ms", type=int, default=0, help="simulated upstream latency")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    from local_sandbox.memory import return_large_buffers

    return_large_buffers()  # before any thread allocates
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["batch"]:  # the batch command, loaded only here: the server's start-up does not pay for it
        from local_sandbox.batch.command import main as batch

        sys.exit(batch(arguments[1:]))
    args = parse_args(arguments)
    settings = read_settings("gpt-image-mcp")
    logging.basicConfig(
        level=logging.DEBUG if settings.debug else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # One line per upstream HTTP request is noise at INFO; DEBUG=1 brings it back.
    logging.getLogger("httpx2").setLevel(logging.DEBUG if settings.debug else logging.WARNING)
    emulator = None
    if args.emulator:
        settings, emulator = start_emulator(settings, args.emulator_latency_ms)
    from gpt_image_mcp.core.errors import UserFacingError
    from local_sandbox.local_server import build_local_server, build_parts

    try:
        server = build_local_server(build_parts(settings))  # opens the history database: a damaged one is named here
    except UserFacingError as error:
        if emulator is not None:
            emulator.stop()
        sys.exit(f"gpt-image-mcp: {error.message}")
    upstream = f"the offline emulator at {emulator.base_url}" if emulator else (settings.openai_base_url or "OpenAI")
    key_note = "" if settings.openai_api_key else " (no OPENAI_API_KEY: image calls will say what is missing)"
    where = "stdio" if args.transport == "stdio" else f"http://{args.host}:{args.port}/mcp"
    print(
        f"gpt-image-mcp {__version__} on {where}; images -> {settings.output_dir}; upstream: {upstream}{key_note}",
        file=sys.stderr,
        flush=True,
    )
    from local_sandbox import serving

    try:
        stopped = serving.run(server, args.transport, args.host, args.port)  # Ctrl-C or SIGTERM: a clean stop
    finally:
        if emulator is not None:
            emulator.stop()
    if stopped is not None and args.transport == "stdio":
        serving.leave()


def read_settings(prog: str) -> LocalSettings:
    """The local settings, read once: the environment over the .env files (`local_environment`). A wrong value ends
    the command with a message that names it."""
    from gpt_image_mcp.core.errors import UserFacingError
    from local_sandbox.settings import LocalSettings, local_environment

    try:
        return LocalSettings.from_env(local_environment(os.environ))  # the one place the local commands read it
    except UserFacingError as error:
        sys.exit(f"{prog}: {error.message}")


def start_emulator(settings: LocalSettings, latency_ms: int = 0) -> tuple[LocalSettings, EmulatorServer]:
    """Start the bundled offline emulator and point the settings at it (the caller stops it)."""
    from local_sandbox.standins.emulator import EmulatorServer

    emulator = EmulatorServer(latency_ms=latency_ms).start()
    return settings.model_copy(update={"openai_api_key": EMULATOR_KEY, "openai_base_url": emulator.base_url}), emulator


if __name__ == "__main__":
    main()
