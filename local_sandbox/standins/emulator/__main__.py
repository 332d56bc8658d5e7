"""`python -m local_sandbox.standins.emulator` (or `gpt-image-emulator`): run the images emulator until stopped.

It prints one line, `OPENAI_BASE_URL=http://127.0.0.1:PORT/v1`, so a shell or a test can start it on a
free port and read where it listens; it stops on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from local_sandbox.standins.emulator.server import EmulatorServer


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="gpt-image-emulator",
        description="Offline stand-in for the OpenAI Images API (not the real service; accepts any non-empty key).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one (default: 0)")
    parser.add_argument("--latency-ms", type=int, default=0, help="simulated generation time per image request")
    parser.add_argument(
        "--flat-images", action="store_true", help="tiny flat pictures instead of real-size ones (about 1.3 MB a PNG)"
    )
    args = parser.parse_args(argv)

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    server = EmulatorServer(args.host, args.port, args.latency_ms, "flat" if args.flat_images else "photo").start()
    try:
        print(f"OPENAI_BASE_URL={server.base_url}", flush=True)
        print("OpenAI images emulator running (a local stand-in, not OpenAI); Ctrl-C stops it.", file=sys.stderr)
        stop.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
