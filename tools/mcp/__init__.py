"""MCP servers as tools (the official `mcp` SDK; stdio and streamable HTTP).

Public surface:
    ServerSpec (one server: command or url, origin user|project, timeouts), Origin
    McpManager(registry, log_dir=): await start(specs) -> [one line per failure], await stop(), status()
    McpTool (the adapter: mcp__<server>__<tool>), tool_name(server, tool), ServerStatus

The SDK takes most of a second to import, so everything but the spec loads on first use: a run without MCP
servers never imports it.
"""

from __future__ import annotations

import importlib
from typing import Any

from ghostline.tools.mcp.spec import DEFAULT_STARTUP_TIMEOUT_S, DEFAULT_TOOL_TIMEOUT_S, Origin, ServerSpec

_LAZY = {"McpManager": "manager", "ServerStatus": "manager", "McpTool": "tool", "tool_name": "tool"}

__all__ = ["DEFAULT_STARTUP_TIMEOUT_S", "DEFAULT_TOOL_TIMEOUT_S", "McpManager", "McpTool", "Origin",
           "ServerSpec", "ServerStatus", "tool_name"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"ghostline.tools.mcp.{module}"), name)
