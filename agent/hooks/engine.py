"""`Hooks`: the hook commands of one session, fired at the moments Claude Code fires them, their answers merged.

The gate (tools/registry.py) calls `before_tool`, `after_tool` and `approval_asked` (the `ToolHooks` protocol);
the loop calls `prompt_submitted`, `stopping`, `compacting` and `session_started`; the runner `session_ended`.
Every matching command of an event runs at once (the same command line once), each with its own time limit.
"""

from __future__ import annotations

import asyncio
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ghostline.agent.hooks.config import HookCommand, HookTable
from ghostline.agent.hooks.output import HookOutput, read_output
from ghostline.agent.hooks.process import run_hook
from ghostline.tools.base import ToolContext, ToolResult
from ghostline.tools.hooks import AfterTool, BeforeTool, HookDecision, HookReport

_STRENGTH = {None: 0, "allow": 1, "ask": 2, "deny": 3}  # when hooks disagree the most careful answer wins
_LEGACY_DECISIONS = {"approve": "allow", "block": "deny"}


@dataclass
class PromptVerdict:
    blocked: str | None = None  # why the prompt was dropped
    context: str = ""  # for the model, after the prompt
    reports: list[HookReport] = field(default_factory=list)


@dataclass
class StopVerdict:
    keep_going: str | None = None  # why the model must go on (it is told this)
    reports: list[HookReport] = field(default_factory=list)


class Hooks:
    def __init__(self, table: HookTable, *, session_id: str, transcript_path: Path, project_dir: Path) -> None:
        self.table = table
        self.session_id = session_id
        self.transcript_path = transcript_path
        self.project_dir = project_dir
        root = str(project_dir)
        # The user's environment (hooks run as the user), plus Claude Code's variable so its scripts find the
        # project unchanged.
        self.env = {**os.environ, "GHOSTLINE_PROJECT_DIR": root, "CLAUDE_PROJECT_DIR": root,
                    "GHOSTLINE_SESSION_ID": session_id}

    def handles(self, event: str) -> bool:
        return bool(self.table.get(event))

    async def fire(self, event: str, subject: str | None, fields: dict[str, Any], ctx: ToolContext) -> list[HookOutput]:
        """Run the commands whose matcher takes `subject`; their outputs in config order."""
        commands: dict[str, HookCommand] = {}
        for group in self.table.get(event, ()):
            if group.matches(subject):
                for c in group.commands:
                    commands.setdefault(c.command, c)
        if not commands:
            return []
        payload = {"session_id": self.session_id, "transcript_path": str(self.transcript_path),
                   "cwd": str(ctx.cwd), "permission_mode": ctx.approval, "hook_event_name": event, **fields}
        data = json.dumps(payload, ensure_ascii=False, default=str).encode()
        runs = await asyncio.gather(*(run_hook(c, data, cwd=ctx.cwd, env=self.env) for c in commands.values()))
        return [read_output(event, r) for r in runs]

    # -- the gate's moments (tools.hooks.ToolHooks) ---------------------------------------------------------

    async def before_tool(self, call_id: str, tool: str, args: dict[str, Any], ctx: ToolContext) -> BeforeTool:
        outs = await self.fire("PreToolUse", tool, {"tool_name": tool, "tool_input": args, "tool_use_id": call_id},
                               ctx)
        answer = BeforeTool()
        reasons: dict[str | None, list[str]] = {}
        for o in outs:
            answer.reports.extend(o.reports())
            decision, reason = _tool_decision(o)
            if decision == "deny":
                answer.reports.append(HookReport("PreToolUse", "blocked", reason, o.command))
            if _STRENGTH[decision] > _STRENGTH[answer.decision]:
                answer.decision = decision
            if reason:
                reasons.setdefault(decision, []).append(reason)
            updated = o.get("updatedInput")
            if isinstance(updated, dict) and not o.blocked:
                answer.updated_input = updated
            answer.context = _join(answer.context, o.context)
        answer.reason = "; ".join(reasons.get(answer.decision, []))
        return answer

    async def after_tool(self, call_id: str, tool: str, args: dict[str, Any], result: ToolResult,
                         ctx: ToolContext) -> AfterTool:
        response = {**result.meta, "content": result.content, "is_error": result.is_error}
        outs = await self.fire("PostToolUse", tool, {"tool_name": tool, "tool_input": args, "tool_response": response,
                                                     "tool_use_id": call_id}, ctx)
        answer = AfterTool()
        for o in outs:
            answer.reports.extend(o.reports())
            objection = _objection(o, "a PostToolUse hook objects")
            if objection:
                answer.reports.append(HookReport("PostToolUse", "blocked", objection, o.command))
                answer.feedback = _join(answer.feedback, f"[PostToolUse hook] {objection}")
            if o.context:
                answer.feedback = _join(answer.feedback, f"[PostToolUse hook context] {o.context}")
        return answer

    async def approval_asked(self, tool: str, title: str, reason: str, ctx: ToolContext) -> list[HookReport]:
        fields = {"message": f"Ghostline needs your permission to use {tool}: {title} ({reason})",
                  "notification_type": "permission_prompt", "title": title}
        return _notices(await self.fire("Notification", "permission_prompt", fields, ctx))

    # -- the loop's moments ---------------------------------------------------------------------------------

    async def prompt_submitted(self, prompt: str, ctx: ToolContext) -> PromptVerdict:
        answer = PromptVerdict()
        for o in await self.fire("UserPromptSubmit", None, {"prompt": prompt}, ctx):
            answer.reports.extend(o.reports())
            objection = _objection(o, "a UserPromptSubmit hook blocked it")
            if objection:
                answer.blocked = _join(answer.blocked or "", objection)
                answer.reports.append(HookReport("UserPromptSubmit", "blocked", objection, o.command))
            answer.context = _join(answer.context, o.context or o.text)
        return answer

    async def stopping(self, active: bool, ctx: ToolContext) -> StopVerdict:
        answer = StopVerdict()
        for o in await self.fire("Stop", None, {"stop_hook_active": active}, ctx):
            answer.reports.extend(o.reports())
            objection = _objection(o, "a Stop hook asks to go on")
            if objection:
                answer.keep_going = _join(answer.keep_going or "", objection)
                answer.reports.append(HookReport("Stop", "blocked", objection, o.command))
        return answer

    async def compacting(self, trigger: str, instructions: str, ctx: ToolContext) -> list[HookReport]:
        fields = {"trigger": trigger, "custom_instructions": instructions}
        return _notices(await self.fire("PreCompact", trigger, fields, ctx))

    async def session_started(self, source: str, ctx: ToolContext) -> tuple[str, list[HookReport]]:
        """SessionStart: what its hooks print (or give as additionalContext) is context for the model."""
        outs = await self.fire("SessionStart", source, {"source": source}, ctx)
        context = ""
        for o in outs:
            context = _join(context, o.context or o.text)
        return context, _notices(outs)

    def session_ended(self, reason: str, ctx: ToolContext) -> list[HookReport]:
        """SessionEnd, from synchronous code (the end of a run, a closing TUI): waits for its hooks."""
        if not self.handles("SessionEnd"):
            return []

        async def fire() -> list[HookReport]:
            return _notices(await self.fire("SessionEnd", reason, {"reason": reason}, ctx))

        with ThreadPoolExecutor(1, thread_name_prefix="session-end-hooks") as pool:
            return pool.submit(asyncio.run, fire()).result()


def _tool_decision(o: HookOutput) -> tuple[HookDecision | None, str]:
    if o.blocked:
        return "deny", o.block_reason
    decision = o.get("permissionDecision")
    if decision not in ("allow", "deny", "ask"):
        decision = _LEGACY_DECISIONS.get(o.data.get("decision"))  # type: ignore[arg-type]
    return decision, o.text_field("permissionDecisionReason", "reason")


def _objection(o: HookOutput, default: str) -> str:
    """Why a hook objects: its stderr on exit 2, or the reason of a JSON `"decision": "block"`."""
    if o.blocked:
        return o.block_reason
    if o.data.get("decision") == "block":
        return o.text_field("reason") or default
    return ""


def _notices(outs: list[HookOutput]) -> list[HookReport]:
    """For events nothing can block: an exit 2 only shows its stderr, as a warning."""
    reports = []
    for o in outs:
        reports.extend(o.reports())
        if o.blocked:
            reports.append(HookReport(o.event, "warning", o.block_reason, o.command))
    return reports


def _join(a: str, b: str) -> str:
    return f"{a}\n{b}" if a and b else a or b
