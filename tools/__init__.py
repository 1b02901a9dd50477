"""Model-facing tools: read, write, edit, bash, grep, glob (and search, from tools.search).

Public surface:
    Tool, ToolResult, ToolContext, FileState, FileSnapshot, ToolError      (tools.base)
    default_tools() -> list[Tool]; tool_specs(tools) -> list[dict]
    await run_tool_calls(calls: [(id, name, args)], tools, ctx, *, gate=None) -> list[ToolResult]
    validate_args(schema, args) -> (args | None, error | None)
    ReadTool, WriteTool, EditTool, BashTool, GrepTool, GlobTool
"""

from __future__ import annotations

from ghostline.tools.base import (
    ApprovalCallback,
    FileSnapshot,
    FileState,
    Tool,
    ToolContext,
    ToolError,
    ToolResult,
)
from ghostline.tools.bash import BashTool
from ghostline.tools.edit import EditTool
from ghostline.tools.glob_tool import GlobTool
from ghostline.tools.grep import GrepTool
from ghostline.tools.read import ReadTool
from ghostline.tools.registry import Gate, default_tools, run_one, run_tool_calls, tool_specs, validate_args
from ghostline.tools.write import WriteTool

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
