"""Model-facing tools: read, write, edit (or apply_patch), bash, grep, glob, search, fetch, todo_write; and the
registry, the gate their calls pass.

Public surface:
    Tool (protocol), BaseTool, ToolKind, ToolResult, ToolContext, ToolError, Preview, FileState   (tools.base)
    ToolRegistry(tools, policy=, approver=): specs(), kind_of(name), admit(call, ctx) -> Verdict,
        execute(verdicts, ctx) -> [ToolResult];  Call, Verdict, ApprovalRequest, ApprovalAnswer, Approver
    default_tools(edit="edit") -> list[Tool];  edit_tool(name) -> the edit tool a model gets (edit | apply_patch)
"""

from __future__ import annotations

from ghostline.tools.base import (
    BaseTool,
    FileSnapshot,
    FileState,
    Preview,
    Tool,
    ToolContext,
    ToolError,
    ToolKind,
    ToolResult,
)
from ghostline.tools.bash import BashTool
from ghostline.tools.edit import EditTool
from ghostline.tools.glob_tool import GlobTool
from ghostline.tools.grep import GrepTool
from ghostline.tools.read import ReadTool
from ghostline.tools.registry import (
    ApprovalAnswer,
    ApprovalRequest,
    Approver,
    Call,
    ToolRegistry,
    Verdict,
    default_tools,
    edit_tool,
)
from ghostline.tools.todo import TodoWriteTool
from ghostline.tools.write import WriteTool

__all__ = [
    "ApprovalAnswer",
    "ApprovalRequest",
    "Approver",
    "BaseTool",
    "BashTool",
    "Call",
    "EditTool",
    "FileSnapshot",
    "FileState",
    "GlobTool",
    "GrepTool",
    "Preview",
    "ReadTool",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolKind",
    "ToolRegistry",
    "ToolResult",
    "TodoWriteTool",
    "Verdict",
    "WriteTool",
    "default_tools",
    "edit_tool",
]
