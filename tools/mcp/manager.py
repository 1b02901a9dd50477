"""The MCP servers of a session: started together, their tools kept in the registry as they come and go.

`start` connects every server in parallel, each within its startup timeout, and returns one line per server
that could not be reached (the session goes on without it). A server's `listChanged` updates the registry; a
server that dies costs one line, its tools leave the registry, and the model is told (a registry notice).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ghostline.tools.base import Tool
from ghostline.tools.mcp.connection import ServerConnection, ServerError
from ghostline.tools.mcp.spec import ServerSpec
from ghostline.tools.mcp.tool import McpTool

log = logging.getLogger(__name__)


class ToolSink(Protocol):
    """tools.ToolRegistry, as the manager uses it."""

    def add(self, tool: Tool) -> None: ...
    def remove(self, name: str) -> None: ...
    def get(self, name: str) -> Tool | None: ...
    def announce(self, text: str) -> None: ...


@dataclass(frozen=True)
class ServerStatus:
    """What `agent mcp list` and front ends show of one server."""

    name: str
    origin: str
    transport: str
    connected: bool
    tools: tuple[str, ...] = ()
    error: str | None = None


class McpManager:
    def __init__(self, registry: ToolSink, *, log_dir: Path | None = None) -> None:
        self.registry = registry
        self.log_dir = log_dir
        self.connections: dict[str, ServerConnection] = {}
        self.failures: dict[str, str] = {}
        self._tools: dict[str, list[str]] = {}  # server -> the registry names of its tools

    async def start(self, specs: Sequence[ServerSpec]) -> list[str]:
        """Connect `specs` in parallel; one line for each that failed (or took longer than its timeout)."""
        outcomes = await asyncio.gather(*(self._start_one(s) for s in specs))
        return [line for line in outcomes if line]

    async def _start_one(self, spec: ServerSpec) -> str | None:
        if spec.name in self.connections:
            return f"MCP server {spec.name!r} is configured twice; the first one is used"
        conn = ServerConnection(spec, log_dir=self.log_dir, on_tools_changed=self._sync, on_closed=self._closed)
        try:
            await asyncio.wait_for(conn.start(), spec.startup_timeout_s)
        except TimeoutError:
            why = f"MCP server {spec.name!r} did not start within {spec.startup_timeout_s:g}s"
        except ServerError as exc:
            why = str(exc)
        else:
            self.connections[spec.name] = conn
            await self._sync(conn)
            return None
        self.failures[spec.name] = why
        return why

    async def stop(self) -> None:
        conns = list(self.connections.values())
        for conn in conns:
            self._drop_tools(conn.spec.name)
        await asyncio.gather(*(c.stop() for c in conns), return_exceptions=True)
        self.connections.clear()

    def status(self) -> list[ServerStatus]:
        out = [ServerStatus(name, c.spec.origin, c.spec.transport, c.alive, tuple(self._tools.get(name, ())),
                            c.closed_reason) for name, c in self.connections.items()]
        out += [ServerStatus(name, "", "", False, (), why) for name, why in self.failures.items()]
        return out

    # -- the registry follows the servers ------------------------------------------------------------------

    async def _sync(self, conn: ServerConnection) -> None:
        """Make the registry hold exactly the server's current tools (after start and every list change)."""
        name = conn.spec.name
        if not conn.alive:
            return
        fresh = [McpTool(conn, t) for t in conn.tools]
        fresh_names = {t.name for t in fresh}
        for old in self._tools.get(name, []):
            if old not in fresh_names:
                self.registry.remove(old)
        kept: list[str] = []
        for tool in fresh:
            existing = self.registry.get(tool.name)
            if existing is not None and not (isinstance(existing, McpTool) and existing.connection is conn):
                log.warning("MCP tool %s clashes with a tool of that name; skipped", tool.name)
                continue
            self.registry.add(tool)
            kept.append(tool.name)
        self._tools[name] = kept

    def _closed(self, conn: ServerConnection, reason: str) -> None:
        gone = self._drop_tools(conn.spec.name)
        listed = ", ".join(gone) if gone else "none"
        self.registry.announce(f"[{reason}. Its tools are no longer available: {listed}.]")

    def _drop_tools(self, server: str) -> list[str]:
        gone = self._tools.pop(server, [])
        for name in gone:
            self.registry.remove(name)
        return gone
