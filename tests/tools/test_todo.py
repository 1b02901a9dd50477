"""The todo_write tool: the whole list each call, reported in meta; the policy lets it run in every mode."""

from __future__ import annotations

from pathlib import Path

from ghostline.sandbox.policy import Policy
from ghostline.tools.base import ToolContext
from ghostline.tools.registry import Call, ToolRegistry
from ghostline.tools.todo import TodoWriteTool

TODOS = [{"content": "Write  the test", "status": "completed"},
         {"content": "Fix the bug", "status": "in_progress", "activeForm": "Fixing the bug"},
         {"content": "Run the suite", "status": "pending"}]


async def test_the_result_reports_the_whole_list_in_meta(ws: Path, ctx: ToolContext) -> None:
    registry = ToolRegistry([TodoWriteTool()], policy=Policy(remembered=False))
    ctx.approval = "plan"
    [result] = await registry.run([Call("1", "todo_write", {"todos": TODOS})], ctx)
    assert not result.is_error
    assert result.meta["todos"] == [{"content": "Write the test", "status": "completed"},
                                    {"content": "Fix the bug", "status": "in_progress",
                                     "activeForm": "Fixing the bug"},
                                    {"content": "Run the suite", "status": "pending"}]
    assert result.content == ("Todo list updated (1 of 3 completed).\n[x] Write the test\n[~] Fix the bug\n"
                              "[ ] Run the suite")
    assert TodoWriteTool().title({"todos": TODOS}) == "todo_write (1/3 done)"
    [cleared] = await registry.run([Call("2", "todo_write", {"todos": []})], ctx)
    assert cleared.content == "Todo list cleared." and cleared.meta["todos"] == []


async def test_bad_items_are_refused_with_a_reason(ws: Path, ctx: ToolContext) -> None:
    registry = ToolRegistry([TodoWriteTool()])
    [bad] = await registry.run([Call("1", "todo_write", {"todos": [{"content": "x", "status": "done"}]})], ctx)
    assert bad.is_error and "'todos.0.status' must be one of 'pending', 'in_progress', 'completed'" in bad.content
