"""An MCP server's tool as a Ghostline tool: `mcp__<server>__<tool>`, the server's schema and description.

Its kind is "read" when the server annotates it `readOnlyHint` (it then runs concurrently and needs no
approval), else "other"; its action says who configured the server, which is all the policy needs.
"""

from __future__ import annotations

import re
from typing import Any

import mcp_types as types

from ghostline.sandbox.policy import Action
from ghostline.tools.base import BaseTool, ToolContext, ToolError, ToolKind, ToolResult, one_line
from ghostline.tools.mcp.connection import ServerConnection, ServerGone
from ghostline.tools.mcp.results import to_tool_result

PREFIX = "mcp__"
MAX_NAME = 64  # what the providers accept for a tool name
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def tool_name(server: str, tool: str) -> str:
    """`mcp__<server>__<tool>`, with characters providers refuse replaced, cut to what they accept."""
    return f"{PREFIX}{_UNSAFE.sub('_', server)}__{_UNSAFE.sub('_', tool)}"[:MAX_NAME]


def server_prefix(server: str) -> str:
    return f"{PREFIX}{_UNSAFE.sub('_', server)}__"


class McpTool(BaseTool):
    def __init__(self, connection: ServerConnection, tool: types.Tool) -> None:
        self.connection = connection
        self.remote_name = tool.name
        self.name = tool_name(connection.spec.name, tool.name)
        server = connection.spec.name
        summary = tool.description or tool.title or tool.name
        self.description = f"{summary}\n\n(from the MCP server {server!r})"
        schema = dict(tool.input_schema or {})
        schema.setdefault("type", "object")
        self.input_schema = schema
        read_only = bool(tool.annotations and tool.annotations.read_only_hint)
        self.kind: ToolKind = "read" if read_only else "other"

    def action(self, args: dict[str, Any]) -> Action:
        return Action(self.name, self.kind, configured_by=self.connection.spec.origin)

    def title(self, args: dict[str, Any]) -> str:
        shown = f"{self.connection.spec.name}: {self.remote_name}"
        return f"{shown} {one_line(args)}" if args else shown

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        spec = self.connection.spec
        try:
            result = await self.connection.call(self.remote_name, args, spec.tool_timeout_s)
        except TimeoutError:
            raise ToolError(f"{self.name} timed out after {spec.tool_timeout_s:g}s (the MCP server "
                            f"{spec.name!r} did not answer); the call was cancelled") from None
        except ServerGone as exc:
            raise ToolError(f"{exc}; its tools are no longer available") from None
        except Exception as exc:  # noqa: BLE001 - protocol errors (MCPError, bad results): one line for the model
            text = " ".join(str(exc).split()) or type(exc).__name__
            raise ToolError(f"{self.name} failed: {text}") from None
        return to_tool_result(result, server=spec.name, output_dir=ctx.output_dir)
