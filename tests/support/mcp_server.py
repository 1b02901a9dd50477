"""An MCP server the tests run (the official SDK's MCPServer), for the paths a real server rarely shows.

    python -m tests.support.mcp_server [--slow SECONDS] [--http] [--marker FILE]

Tools: echo (readOnlyHint), fail (an error result), picture (an image), grow (adds `extra` and announces the
list change), crash (the process exits mid-call), wait (sleeps; touches --marker when cancelled or done),
work (sleeps a given time, for the overhead bench). With --http it serves streamable HTTP on a free port and
prints `port N` once it listens; with --slow it waits before serving.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import socket
import sys
import time
from pathlib import Path

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ImageContent, TextContent, ToolAnnotations

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 24).decode()

server = MCPServer("testserver")
marker: Path | None = None


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def echo(text: str) -> str:
    """Return the text."""
    return text


@server.tool()
def fail(why: str) -> CallToolResult:
    """Return an error result."""
    return CallToolResult(content=[TextContent(type="text", text=f"it failed: {why}")], is_error=True)


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def picture() -> list[ImageContent | TextContent]:
    """Return an image."""
    return [TextContent(type="text", text="a picture"), ImageContent(type="image", data=PNG, mime_type="image/png")]


@server.tool()
async def grow(ctx: Context) -> str:
    """Add the tool `extra` and tell the client."""
    def extra(x: int) -> int:
        return x * 2

    server.add_tool(extra, name="extra", description="Double x.")
    await ctx.notify_tools_changed()
    return "grown"


@server.tool()
def crash() -> str:
    """Exit the process in the middle of the call."""
    sys.stdout.flush()
    os._exit(3)


@server.tool()
async def wait(seconds: float) -> str:
    """Sleep; the marker file says how it ended."""
    try:
        await asyncio.sleep(seconds)
    except BaseException:
        if marker is not None:
            marker.write_text("cancelled")
        raise
    if marker is not None:
        marker.write_text("done")
    return "waited"


@server.tool()
def work(ms: float) -> str:
    """Busy the server for `ms` milliseconds (the bench's own time)."""
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:
        pass
    return "ok"


async def serve_http() -> None:
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # before the port is told: a client that connects at once waits in the backlog, not refused
    app = server.streamable_http_app()
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    print(f"port {sock.getsockname()[1]}", flush=True)
    await uvicorn.Server(config).serve(sockets=[sock])


def main() -> None:
    global marker
    parser = argparse.ArgumentParser()
    parser.add_argument("--slow", type=float, default=0.0)
    parser.add_argument("--http", action="store_true")
    parser.add_argument("--marker")
    args = parser.parse_args()
    marker = Path(args.marker) if args.marker else None
    if args.slow:
        time.sleep(args.slow)
    if args.http:
        asyncio.run(serve_http())
    else:
        server.run()


if __name__ == "__main__":
    main()
