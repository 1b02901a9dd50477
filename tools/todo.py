"""The `todo_write` tool: the model's checklist for the task at hand, the whole list at each call.

The list lives in the conversation, not on disk: the result reports it in `meta["todos"]` (a list of
`{content, status}`), which is all the rest of Ghostline reads (the loop's todo events, the checklist front ends
show, the compaction ledger that keeps the latest list, a resumed session's checklist).
"""

from __future__ import annotations

from typing import Any

from ghostline.sandbox.policy import Action
from ghostline.tools.base import BaseTool, ToolContext, ToolKind, ToolResult

STATUSES = ("pending", "in_progress", "completed")
MARK = {"pending": "[ ]", "in_progress": "[~]", "completed": "[x]"}


def todo_items(args: dict[str, Any]) -> list[dict[str, str]]:
    """The list as the result reports it: content and status (and Claude Code's `activeForm` when given)."""
    items = []
    for t in args.get("todos") or []:
        item = {"content": " ".join(str(t["content"]).split()), "status": str(t["status"])}
        if isinstance(t.get("activeForm"), str) and t["activeForm"].strip():
            item["activeForm"] = t["activeForm"].strip()
        items.append(item)
    return items


def checklist(items: list[dict[str, str]]) -> str:
    return "\n".join(f"{MARK.get(i['status'], '[ ]')} {i['content']}" for i in items)


class TodoWriteTool(BaseTool):
    name = "todo_write"
    kind: ToolKind = "other"
    description = (
        "Create and update your todo list for the current task; the user sees it as a live checklist. Send the "
        "whole list each time (it replaces the previous one). Use it for work with three or more steps or when "
        "the user gives several things to do: write the steps as pending, mark one in_progress before you start "
        "it, and completed as soon as it is done (not in batches later). Keep exactly one item in_progress while "
        "you work. Skip it for a single, simple step."
    )
    input_schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "todos": {
                "type": "array",
                "description": "The whole todo list, in order.",
                "items": {
                    "type": "object",
                    "properties": {
                        "content": {"type": "string", "minLength": 1, "description": "What to do, imperative."},
                        "status": {"type": "string", "enum": list(STATUSES)},
                        "activeForm": {"type": "string", "description": "Present continuous, shown while in "
                                       "progress (\"Running the tests\")."},
                    },
                    "required": ["content", "status"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["todos"],
        "additionalProperties": False,
    }

    def action(self, args: dict[str, Any]) -> Action:
        # Changes nothing but the conversation's own checklist: nothing for a person to approve, in any mode.
        return Action(self.name, self.kind, self_contained=True)

    def title(self, args: dict[str, Any]) -> str:
        todos = args.get("todos") if isinstance(args.get("todos"), list) else []
        done = sum(1 for t in todos if isinstance(t, dict) and t.get("status") == "completed")
        return f"{self.name} ({done}/{len(todos)} done)"

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        items = todo_items(args)
        done = sum(1 for i in items if i["status"] == "completed")
        head = f"Todo list updated ({done} of {len(items)} completed)" if items else "Todo list cleared"
        return ToolResult(f"{head}.\n{checklist(items)}".rstrip(), meta={"todos": items})
