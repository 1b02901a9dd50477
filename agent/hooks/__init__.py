"""Hooks: the user's commands run at moments of a session, with Claude Code's contract (JSON on stdin; exit 0 with
optional JSON, exit 2 blocks, anything else warns).

Public surface:
    parse_hooks(table, source) -> (HookTable, warnings);  merge_tables(*tables);  HOOK_EVENTS
    Hooks(table, session_id=, transcript_path=, project_dir=): the gate's ToolHooks (before_tool, after_tool,
        approval_asked) and the loop's moments (prompt_submitted, stopping, compacting, session_started,
        session_ended)
    report_event(report, call_id="") -> the HookBlocked / HookWarning event a front end shows
"""

from __future__ import annotations

from ghostline.agent import events as ev
from ghostline.agent.hooks.config import (
    HOOK_EVENTS,
    HookCommand,
    HookGroup,
    HookTable,
    merge_tables,
    parse_hooks,
)
from ghostline.agent.hooks.engine import Hooks, PromptVerdict, StopVerdict
from ghostline.tools.hooks import HookReport


def report_event(report: HookReport, call_id: str = "") -> ev.HookBlocked | ev.HookWarning:
    if report.kind == "blocked":
        return ev.HookBlocked(report.event, report.message, report.command, call_id)
    message = f"asked to stop the run: {report.message}" if report.kind == "stop" else report.message
    return ev.HookWarning(report.event, message, report.command, call_id, stop=report.kind == "stop")


__all__ = ["HOOK_EVENTS", "HookCommand", "HookGroup", "HookReport", "HookTable", "Hooks", "PromptVerdict",
           "StopVerdict", "merge_tables", "parse_hooks", "report_event"]
