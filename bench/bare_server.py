"""The SDK baseline for start-up: a bare `MCPServer` with 12 trivial tools over stdio, nothing of this project.

`bench/local_bench.py` spawns it beside `gpt-image-mcp` and compares spawn → tools/list: the difference is what this
server adds to starting up (its own imports and set-up), since both load the same SDK.
"""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

server = MCPServer("bare-baseline")


def _tool(number: int) -> None:
    def tool(text: str, count: int = 1) -> str:
        return text * count

    server.add_tool(tool, name=f"tool_{number}", description=f"Trivial tool {number}: repeats text.")


for number in range(12):
    _tool(number)

if __name__ == "__main__":
    server.run("stdio")
