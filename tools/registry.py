"""The tool registry, and the one gate every tool call passes.

`admit` decides whether a call may run: its arguments are checked against the tool's JSON schema and the
message's tool scope (a custom command's allowed-tools), PreToolUse hooks have their say (block, rewrite the
input, allow/deny/ask), then the permission policy judges the tool's own description of the call
(`Tool.action`), and whatever must be asked goes to the front end's approver (Notification hooks fire first).
`execute` runs the admitted calls of one assistant message (read-only ones concurrently, the others alone and in
order; a call is read-only when its action says so, so one tool may have calls of both kinds),
and PostToolUse hooks see each result. The loop drives turns and never re-checks any of this.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ghostline.sandbox.policy import Action, Decision, suggest_rule
from ghostline.sandbox.store import remember
from ghostline.tools.base import Preview, Tool, ToolContext, ToolError, ToolKind, ToolResult
from ghostline.tools.hooks import BeforeTool, HookReport, ToolHooks
from ghostline.tools.schema import SchemaCheck

log = logging.getLogger(__name__)


class PolicyLike(Protocol):
    def evaluate(self, action: Action, *, mode: str, approval: str, workspace: Path | None = None,
                 cwd: Path | None = None) -> Decision: ...


@dataclass(frozen=True)
class ApprovalRequest:
    """A call the policy wants a person to allow: what the front end shows, and the rule "always" would add."""

    call_id: str
    tool: str
    kind: ToolKind
    args: dict[str, Any]
    title: str
    reason: str
    suggested_rule: str
    preview: Preview | None = None


@dataclass(frozen=True)
class ApprovalAnswer:
    allow: bool
    always: bool = False  # remember `suggested_rule` for this project (only with allow)
    message: str = ""  # a denial's reason, passed to the model

    @classmethod
    def deny(cls, message: str = "") -> ApprovalAnswer:
        return cls(False, message=message)


Approver = Callable[[ApprovalRequest], Awaitable[ApprovalAnswer]]


@dataclass(frozen=True)
class Call:
    """One tool call of an assistant message. `raw_arguments` is set when the model's arguments did not parse."""

    id: str
    name: str
    args: dict[str, Any]
    raw_arguments: str | None = None


@dataclass
class Verdict:
    """The gate's answer for one call: run it with `args` (normalised), or `refusal` is its error result.
    `asked` tells whether a person (or the headless rule that nobody can) decided."""

    call: Call
    tool: Tool | None
    args: dict[str, Any] = field(default_factory=dict)
    kind: ToolKind = "other"  # what this call does (its action's kind): read-kind calls run concurrently
    refusal: ToolResult | None = None
    reason: str = ""
    asked: bool = False
    decided_by: str = ""  # who decided a call that was not simply allowed: user | headless | policy | hook | scope
    remembered_rule: str | None = None
    hook_reports: list[HookReport] = field(default_factory=list)  # what hooks did while the call was judged
    context: str = ""  # PreToolUse hooks' additional context, given to the model with the result

    @property
    def allowed(self) -> bool:
        return self.refusal is None


def _refuse(call: Call, tool: Tool | None, content: str, meta: dict[str, Any], **kw: Any) -> Verdict:
    return Verdict(call, tool, refusal=ToolResult(content, is_error=True, meta=meta), reason=content, **kw)


def _out_of_scope(call: Call, tool: Tool, args: dict[str, Any], ctx: ToolContext) -> Verdict | None:
    """The refusal of a call outside the message's tool scope (a custom command's allowed-tools), if it is."""
    scope = ctx.tool_scope
    if scope is None or scope.permits(tool.action(args), ctx.workspace):
        return None
    return _refuse(call, tool, f"{scope.label} allows only these tools: {scope.describe()}; this call is outside "
                               f"them, so it was not run", {"denied": True, "out_of_scope": True},
                   decided_by="scope")


def _bound_to_fail(call: Call, tool: Tool, args: dict[str, Any], ctx: ToolContext) -> Verdict | None:
    """The refusal of a call its tool knows would fail (`Tool.check`), before anyone is asked about it."""
    try:
        problem = tool.check(args, ctx)
    except Exception:  # the check is a courtesy: the call goes on, and `run` reports what is wrong
        log.debug("check of %s failed", tool.name, exc_info=True)
        return None
    return None if problem is None else _refuse(call, tool, problem, {"unmet": True})


def _raw_arguments_error(raw: str) -> str:
    shown = raw if len(raw) <= 2000 else raw[:2000] + "..."
    return f"error: the tool call arguments were not a valid JSON object; nothing was run. Raw arguments: {shown}"


class ToolRegistry:
    """The tools of a session, and the gate (validation, policy, approval) their calls pass."""

    def __init__(self, tools: Sequence[Tool], *, policy: PolicyLike | None = None,
                 approver: Approver | None = None, project_root: Path | None = None,
                 hooks: ToolHooks | None = None) -> None:
        self._tools: dict[str, Tool] = {}
        self._schemas: dict[str, SchemaCheck] = {}
        for t in tools:
            self.add(t)
        self.policy = policy
        self.approver = approver  # None: headless — whatever needs approval is denied, and the model told why
        self.project_root = project_root  # where "always allow" rules are remembered (default: ctx.workspace)
        self._notices: list[str] = []
        self.hooks = hooks  # PreToolUse/PostToolUse/Notification commands (None: no hooks)
        self._rechecks: asyncio.Lock | None = None  # running calls ask one at a time (they run concurrently)

    # -- the tools ---------------------------------------------------------------------------------------

    def add(self, tool: Tool) -> None:
        self._tools[tool.name] = tool
        self._schemas[tool.name] = SchemaCheck(tool.input_schema)

    def replace(self, name: str, tool: Tool) -> None:
        """`tool` in the place of the tool called `name` (a model switch changes the edit tool): the order of the
        tools, which the model sees, stays."""
        if name not in self._tools:
            self.add(tool)
            return
        self._tools = {(tool.name if n == name else n): (tool if n == name else t) for n, t in self._tools.items()}
        self._schemas.pop(name)
        self._schemas[tool.name] = SchemaCheck(tool.input_schema)

    def remove(self, name: str) -> None:
        self._tools.pop(name, None)
        self._schemas.pop(name, None)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def announce(self, text: str) -> None:
        """Tell the model something about the tools at its next turn (tools that come and go: an MCP server
        that stopped). The loop takes these before each model call."""
        self._notices.append(text)

    def take_notices(self) -> list[str]:
        notices, self._notices = self._notices, []
        return notices

    @property
    def tools(self) -> list[Tool]:
        return list(self._tools.values())

    def kind_of(self, name: str) -> ToolKind:
        tool = self._tools.get(name)
        return tool.kind if tool is not None else "other"

    def title_of(self, name: str, args: dict[str, Any]) -> str:
        tool = self._tools.get(name)
        return tool.title(args) if tool is not None else name

    def specs(self) -> list[dict[str, Any]]:
        """`{"name", "description", "input_schema"}` per tool, in order; providers translate these."""
        return [{"name": t.name, "description": t.description, "input_schema": t.input_schema}
                for t in self._tools.values()]

    # -- the gate ----------------------------------------------------------------------------------------

    async def admit(self, call: Call, ctx: ToolContext) -> Verdict:
        """Whether `call` may run. Never raises (but cancellation): a refusal is an error result for the model."""
        tool = self._tools.get(call.name)
        if tool is None:
            known = ", ".join(self._tools) or "none"
            return _refuse(call, None, f"Unknown tool {call.name!r}; available tools: {known}", {"unknown": True})
        if call.raw_arguments is not None:
            return _refuse(call, tool, _raw_arguments_error(call.raw_arguments), {"malformed": True})
        args, err = self._schemas[call.name].check(call.args)
        if err is not None:
            return _refuse(call, tool, f"Invalid arguments for {tool.name}: {err}", {"invalid_args": True})
        refused = _out_of_scope(call, tool, args, ctx) or _bound_to_fail(call, tool, args, ctx)
        if refused is not None:
            return refused
        hook = await self._before_hooks(call, tool, args, ctx)
        verdict = await self._after_hooks(call, tool, args, hook, ctx)
        verdict.hook_reports[:0] = hook.reports
        verdict.context = hook.context
        return verdict

    async def _before_hooks(self, call: Call, tool: Tool, args: dict[str, Any], ctx: ToolContext) -> BeforeTool:
        if self.hooks is None or not self.hooks.handles("PreToolUse"):
            return BeforeTool()
        return await self.hooks.before_tool(call.id, tool.name, args, ctx)

    async def _after_hooks(self, call: Call, tool: Tool, args: dict[str, Any], hook: BeforeTool,
                           ctx: ToolContext) -> Verdict:
        if hook.decision == "deny":
            return _refuse(call, tool, f"blocked by a PreToolUse hook: {hook.reason or 'no reason given'}",
                           {"denied": True, "hook": "PreToolUse"}, decided_by="hook")
        if hook.updated_input is not None:
            updated, err = self._schemas[tool.name].check(hook.updated_input)
            if updated is None:
                return _refuse(call, tool, f"a PreToolUse hook rewrote the arguments of {tool.name} into invalid "
                                           f"ones ({err}); nothing was run", {"invalid_args": True})
            args = updated
            refused = _out_of_scope(call, tool, args, ctx) or _bound_to_fail(call, tool, args, ctx)
            if refused is not None:
                return refused
        return await self._judge(call, tool, args, hook, ctx)

    async def _judge(self, call: Call, tool: Tool, args: dict[str, Any], hook: BeforeTool,
                     ctx: ToolContext) -> Verdict:
        action = tool.action(args)
        kind = _call_kind(tool, action)
        decision = Decision("allow", "no policy")
        if self.policy is not None:
            decision = self.policy.evaluate(action, mode=ctx.sandbox_mode, approval=ctx.approval,
                                            workspace=ctx.workspace, cwd=ctx.cwd)
        if decision.action == "deny":  # no hook loosens the policy's hard limits
            return _refuse(call, tool, f"denied by the sandbox policy: {decision.reason}", {"denied": True},
                           decided_by="policy")
        if hook.decision == "ask":
            return await self._ask(call, tool, args, action, hook.reason or "a PreToolUse hook asks", ctx)
        if decision.action == "allow":
            return Verdict(call, tool, args, kind=kind, reason=decision.reason)
        if hook.decision == "allow":
            return Verdict(call, tool, args, kind=kind, reason=f"allowed by a PreToolUse hook{_colon(hook.reason)}")
        return await self._ask(call, tool, args, action, decision.reason, ctx)

    async def _ask(self, call: Call, tool: Tool, args: dict[str, Any], action: Action, reason: str,
                   ctx: ToolContext) -> Verdict:
        if self.approver is None:
            return _refuse(call, tool, (
                f"this action needs the user's approval ({reason}), and none can be given in a headless run; "
                f"find another way that needs no approval, or stop and explain"), {"denied": True}, asked=True,
                decided_by="headless")
        request = ApprovalRequest(call.id, tool.name, tool.kind, args, tool.title(args), reason,
                                  suggest_rule(action), _safe_preview(tool, args, ctx))
        reports = []
        if self.hooks is not None and self.hooks.handles("Notification"):
            reports = await self.hooks.approval_asked(tool.name, request.title, reason, ctx)
        verdict = await self._decide(request, call, tool, args, ctx)
        verdict.kind = _call_kind(tool, action)
        verdict.hook_reports.extend(reports)
        return verdict

    async def _decide(self, request: ApprovalRequest, call: Call, tool: Tool, args: dict[str, Any],
                      ctx: ToolContext) -> Verdict:
        assert self.approver is not None
        answer = await self.approver(request)
        if not answer.allow:
            why = f"the user declined this action ({request.reason})"
            if answer.message.strip():
                why += f"; they said: {answer.message.strip()}"
            return _refuse(call, tool, why, {"denied": True}, asked=True, decided_by="user")
        rule = None
        if answer.always:
            rule = request.suggested_rule
            remember(self.project_root or ctx.workspace, rule)
        return Verdict(call, tool, args, reason=request.reason, asked=True, decided_by="user",
                       remembered_rule=rule)

    # -- running -----------------------------------------------------------------------------------------

    async def run(self, calls: Sequence[Call], ctx: ToolContext) -> list[ToolResult]:
        """Admit and run the calls of one message without reporting the gate's decisions (for callers that
        need no events)."""
        verdicts = [await self.admit(c, ctx) for c in calls]
        admitted = [v for v in verdicts if v.allowed]
        ran = iter(await self.execute(admitted, ctx))
        return [next(ran) if v.allowed else v.refusal for v in verdicts]  # type: ignore[misc]

    async def execute(self, admitted: Sequence[Verdict], ctx: ToolContext) -> list[ToolResult]:
        """Run admitted calls; results in call order. Consecutive read-only calls run concurrently; any other
        call runs alone, after everything before it and before anything after it."""
        results: list[ToolResult | None] = [None] * len(admitted)
        batch: list[int] = []

        async def flush() -> None:
            outs = await asyncio.gather(*(self._run_admitted(admitted[i], ctx) for i in batch))
            for i, out in zip(batch, outs, strict=True):
                results[i] = out
            batch.clear()

        for i, verdict in enumerate(admitted):
            if verdict.tool is not None and verdict.kind == "read":
                batch.append(i)
                continue
            await flush()
            results[i] = await self._run_admitted(verdict, ctx)
        await flush()
        return [r if r is not None else ToolResult("tool call was not run", is_error=True) for r in results]

    async def _run_admitted(self, verdict: Verdict, ctx: ToolContext) -> ToolResult:
        """Run one call, then let PostToolUse hooks see what it did (a call that failed is not theirs: Claude
        Code runs them after a tool succeeds). What hooks add for the model follows the result."""
        call = verdict.call
        running = dataclasses.replace(ctx, recheck=lambda args: self._recheck(call, args, ctx))
        result = with_feedback(await run_one(verdict, running), verdict.context)
        if result.is_error or verdict.tool is None or self.hooks is None or not self.hooks.handles("PostToolUse"):
            return result
        after = await self.hooks.after_tool(verdict.call.id, verdict.tool.name, verdict.args, result, ctx)
        if ctx.on_hook is not None:
            for report in after.reports:
                ctx.on_hook(verdict.call.id, report)
        return with_feedback(result, after.feedback)


    async def _recheck(self, call: Call, args: dict[str, Any], ctx: ToolContext) -> str | None:
        """`ToolContext.recheck`: the running call `call` would go on with `args` (a redirect to another host);
        the gate judges that as a call of its own. None when it may, else the refusal's reason."""
        if self._rechecks is None:
            self._rechecks = asyncio.Lock()
        async with self._rechecks:
            verdict = await self.admit(Call(call.id, call.name, args), ctx)
        if ctx.on_hook is not None:
            for report in verdict.hook_reports:
                ctx.on_hook(call.id, report)
        return None if verdict.allowed else verdict.reason


def with_feedback(result: ToolResult, text: str) -> ToolResult:
    """The result with hooks' words for the model after it (the same result when there are none)."""
    if not text.strip():
        return result
    return dataclasses.replace(result, content=f"{result.content}\n\n{text.strip()}")


def _colon(text: str) -> str:
    return f": {text}" if text.strip() else ""


def _safe_preview(tool: Tool, args: dict[str, Any], ctx: ToolContext) -> Preview | None:
    try:
        return tool.preview(args, ctx)
    except Exception:  # a preview is a courtesy: the prompt falls back to the arguments
        log.debug("preview of %s failed", tool.name, exc_info=True)
        return None


def _one_line(text: str, limit: int = 500) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _call_kind(tool: Tool, action: Action) -> ToolKind:
    """What one call does: its action's kind when that is a tool kind (a tool that can change things may
    describe a given call as a read), else the tool's own."""
    kind = action.kind
    return kind if kind in ("read", "edit", "shell", "other") else tool.kind  # type: ignore[return-value]


def _call_context(ctx: ToolContext, call_id: str) -> ToolContext:
    """The context one call runs with: its id, and its live output and reports go to the front end under it."""
    progress, report = ctx.on_progress, ctx.on_report
    return dataclasses.replace(
        ctx, call_id=call_id,
        progress=(lambda text: progress(call_id, text)) if progress is not None else None,
        report=(lambda item: report(call_id, item)) if report is not None else None)


async def run_one(verdict: Verdict, ctx: ToolContext) -> ToolResult:
    """Run one admitted call. Never raises (except cancellation): every failure is an error result."""
    if verdict.refusal is not None or verdict.tool is None:
        return verdict.refusal or ToolResult("tool call was not run", is_error=True)
    tool = verdict.tool
    ctx = _call_context(ctx, verdict.call.id)
    try:
        result = await tool.run(verdict.args, ctx)
    except ToolError as exc:
        # Deliberate messages for the model: kept as written (apply's errors quote the closest region).
        return ToolResult(str(exc).strip() or f"{tool.name} failed", is_error=True)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a bug or an unexpected OS error: the model gets one line, the log the traceback
        log.debug("tool %s (call %s) raised", tool.name, verdict.call.id, exc_info=True)
        msg = _one_line(str(exc))
        return ToolResult(f"{tool.name} failed: {type(exc).__name__}" + (f": {msg}" if msg else ""), is_error=True)
    if not isinstance(result, ToolResult):
        return ToolResult(f"{tool.name} returned no result", is_error=True)
    return result


def edit_tool(name: str = "edit") -> Tool:
    """The tool a model edits files with, by the name the model table gives: `edit` (old_string/new_string) or
    `apply_patch` (Codex's patch envelope). Both go through the same applier ladder."""
    from ghostline.tools.apply_patch import ApplyPatchTool
    from ghostline.tools.edit import EditTool

    tools: dict[str, Callable[[], Tool]] = {"edit": EditTool, "apply_patch": ApplyPatchTool}
    if name not in tools:
        raise ValueError(f"unknown edit tool {name!r} (one of {', '.join(tools)})")
    return tools[name]()


def default_tools(edit: str = "edit") -> list[Tool]:
    """read, write, the edit tool (`edit_tool(edit)`), bash, grep, glob, search, fetch and todo_write, in that
    order."""
    from ghostline.tools.bash import BashTool
    from ghostline.tools.fetch import FetchTool
    from ghostline.tools.glob_tool import GlobTool
    from ghostline.tools.grep import GrepTool
    from ghostline.tools.read import ReadTool
    from ghostline.tools.search import SearchTool
    from ghostline.tools.todo import TodoWriteTool
    from ghostline.tools.write import WriteTool

    return [ReadTool(), WriteTool(), edit_tool(edit), BashTool(), GrepTool(), GlobTool(), SearchTool(), FetchTool(),
            TodoWriteTool()]
