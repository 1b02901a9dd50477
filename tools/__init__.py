"""Model-facing tools: read, write, edit, bash, grep, glob (and search, from tools.search).

Public surface:
    Tool, ToolResult, ToolContext, FileState, FileSnapshot, ToolError      (tools.base)
    default_tools() -> list[Tool]; tool_specs(tools) -> list[dict]
    await run_tool_calls(calls: [(id, name, args)], tools, ctx, *, gate=None) -> list[ToolResult]
    validate_args(schema, args) -> (args | None, error | None)
    ReadTool, WriteTool, EditTool, BashTool, GrepTool, GlobTool
"""

from __future__ import annotations

from tools.base import ApprovalCallback, FileSnapshot, FileState, Tool, ToolContext, ToolError, ToolResult
from tools.bash import BashTool
from tools.edit import EditTool
from tools.glob_tool import GlobTool
from tools.grep import GrepTool
from tools.read import ReadTool
from tools.registry import Gate, default_tools, run_one, run_tool_calls, tool_specs, validate_args
from tools.write import WriteTool

__all__ = [
    "ApprovalCallback",
    "BashTool",
    "EditTool",
    "FileSnapshot",
    "FileState",
    "Gate",
    "GlobTool",
    "GrepTool",
    "ReadTool",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolResult",
    "WriteTool",
    "default_tools",
    "run_one",
    "run_tool_calls",
    "tool_specs",
    "validate_args",
]
