"""The ReAct loop: an async generator of typed events. Front ends consume the events and nothing else.

One turn = one model call. Before each call: budgets, then compaction. After the model answers, its tool calls go
through the registry's gate (validation, policy, approval) and run; their results go back; repeat until the model
ends its turn without tool calls (and any --verify command passes) or a budget stops the run. Every way a run ends
is a `Stop` carrying its final event. Hooks see the moments the loop owns: the session's first message
(SessionStart), each prompt (UserPromptSubmit), the model's end of turn (Stop), a compaction about to summarise
(PreCompact); tool hooks run in the registry's gate.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ghostline.agent import events as ev
from ghostline.agent.hooks import Hooks
from ghostline.agent.loop_hooks import LoopHooks
from ghostline.agent.plan import system_for_mode
from ghostline.agent.providers.base import (
    ContextLengthError,
    Provider,
    ProviderError,
    StreamRetry,
    StreamText,
    ToolSpec,
    TurnComplete,
    TurnUsage,
)
from ghostline.agent.scope import MessageScope, enter_scope
from ghostline.agent.session import INTERRUPTED, apply_event, close_dangling_tool_uses
from ghostline.agent.shell import run_user_shell
from ghostline.agent.verify import (
    Verification,
    VerificationError,
    run_verification,
    still_failing,
    verification_feedback,
)
from ghostline.compaction import CompactionFailed
from ghostline.compaction.transcript import ImageBlock, Message, ToolUseBlock, block_to_dict
from ghostline.tools.base import ToolContext, ToolResult
from ghostline.tools.registry import Call, ToolRegistry, Verdict

log = logging.getLogger(__name__)
MAX_CONTEXT_RETRIES = 3


class SessionLog(Protocol):
    id: str

    def append(self, record: dict[str, Any]) -> None: ...


class CompactorLike(Protocol):
    """compaction.Compactor, as the loop uses it."""

    effective_window: int

    def observe(self, event: dict[str, Any]) -> None: ...
    def record_usage(self, input_tokens: int) -> None: ...
    def estimate(self, system: str, tools: list[dict[str, Any]], messages: list[Message]) -> int: ...
    def summary_due(self, system: str, tools: list[dict[str, Any]], messages: list[Message]) -> bool: ...
    async def prepare(self, system: str, tools: list[dict[str, Any]], messages: list[Message]) -> tuple[Any, Any]: ...
    async def compact_now(self, system: str, tools: list[dict[str, Any]], messages: list[Message], *,
                          focus: str | None = None) -> tuple[Any, Any]: ...
    async def on_context_error(self, system: str, tools: list[dict[str, Any]], messages: list[Message],
                               limit: int | None) -> tuple[Any, Any]: ...


class CheckpointsLike(Protocol):
    """sandbox.Checkpoints, as the loop uses it: a snapshot before a turn changes files makes the turn undoable."""

    def snapshot(self, label: str) -> str | None: ...
    def changed_since(self, sha: str) -> list[Path] | None: ...
    def undo(self, session: str | None = None, turns: int = 1) -> tuple[Any, list[str]]: ...
    def session_diff(self, session: str | None) -> str: ...
    def close(self) -> None: ...
    @property
    def generation(self) -> int: ...


@dataclass(frozen=True)
class ContextUsage:
    """How full the model's context is, by the same count compaction acts on."""

    tokens: int
    window: int

    @property
    def fraction(self) -> float:
        return self.tokens / self.window if self.window else 0.0


class UndoError(Exception):
    """Nothing to undo, or no checkpoints here: one line for the user."""


@dataclass
class Budgets:
    max_turns: int | None = None
    max_tokens: int | None = None  # total input + output tokens over the run
    max_cost: float | None = None  # USD


@dataclass
class RunStats:
    num_turns: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cost_usd: float | None = None
    files_changed: list[str] = field(default_factory=list)  # absolute paths
    commands: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_read_input_tokens + self.cache_creation_input_tokens

    def add_usage(self, u: TurnUsage, cost: float | None) -> None:
        self.input_tokens += u.input_tokens
        self.output_tokens += u.output_tokens
        self.cache_read_input_tokens += u.cache_read_input_tokens
        self.cache_creation_input_tokens += u.cache_creation_input_tokens
        if cost is not None:
            self.cost_usd = (self.cost_usd or 0.0) + cost

    def add_result(self, kind: str, args: dict[str, Any], r: ToolResult) -> None:
        """What the run report lists: files a tool changed (from its result) and commands with exit codes."""
        if not r.is_error:
            for path in r.meta.get("files_changed") or []:
                if path not in self.files_changed:
                    self.files_changed.append(str(path))
        if kind == "shell" and "exit_code" in r.meta:
            self.commands.append({"command": args.get("command", ""), "exit_code": r.meta["exit_code"]})


class Stop(Exception):  # noqa: N818 - control flow, not an error
    """Ends the run; carries the final event (Done or Failed)."""

    def __init__(self, event: ev.Done | ev.Failed):
        super().__init__(event)
        self.event = event


class AgentLoop:
    def __init__(
        self,
        *,
        provider: Provider,
        registry: ToolRegistry,
        ctx: ToolContext,
        system: str,
        session: SessionLog | None = None,
        messages: list[Message] | None = None,
        budgets: Budgets | None = None,
        compactor: CompactorLike | None = None,
        checkpoints: CheckpointsLike | None = None,
        cost_of: Callable[[TurnUsage], float | None] = lambda u: None,
        max_output_tokens: int = 8192,
        verification: Verification | None = None,
        stats: RunStats | None = None,
        hooks: Hooks | None = None,
    ):
        self.provider = provider
        self.registry = registry
        self.ctx = ctx
        self.base_system = system  # without the plan-mode section, which follows the approval mode
        self.system = system_for_mode(system, ctx.approval)
        self.session = session
        self.messages: list[Message] = messages if messages is not None else []
        self.budgets = budgets or Budgets()
        self.compactor = compactor
        self.checkpoints = checkpoints
        self.first_checkpoint: str | None = None  # this loop's first snapshot: what its work started from
        self.cost_of = cost_of
        self.max_output_tokens = max_output_tokens
        self.verification = verification
        self.verify_runs = 0  # verification runs started in this run (not counting earlier runs of a session)
        self.verify_last: ev.VerificationResult | None = None
        self.stats = stats if stats is not None else RunStats()  # a subagent counts into its parent's
        self.hooks = LoopHooks(hooks, lambda: self.ctx, self._emit)
        self._next_scope: MessageScope | None = None
        self._next_images: list[ImageBlock] = []
        close_dangling_tool_uses(self.messages)

    # -- bookkeeping -------------------------------------------------------------------------------------

    def _emit(self, event: ev.Event) -> ev.Event:
        d = event.to_dict()
        if self.session is not None:
            self.session.append(d)
        if self.compactor is not None:
            self.compactor.observe(d)
        apply_event(self.messages, d)
        return event

    def _done(self, subtype: str, text: str | None = None) -> Stop:
        return Stop(ev.Done(self.last_text() if text is None else text, subtype, self.stats.num_turns))

    def _check_budgets(self) -> None:
        if self.hooks.stop_requested is not None:
            raise self._done("stopped_by_hook", f"stopped by a hook: {self.hooks.stop_requested}")
        b, s = self.budgets, self.stats
        if b.max_turns is not None and s.num_turns >= b.max_turns:
            raise self._done("error_max_turns")
        if b.max_tokens is not None and s.total_tokens >= b.max_tokens:
            raise self._done("error_budget")
        if b.max_cost is not None and s.cost_usd is not None and s.cost_usd >= b.max_cost:
            raise self._done("error_budget")

    def last_text(self) -> str:
        for m in reversed(self.messages):
            if m.role == "assistant" and m.text.strip():
                return m.text.strip()
        return ""

    @property
    def tool_specs(self) -> list[ToolSpec]:
        return [ToolSpec(**s) for s in self.registry.specs()]

    # -- the loop ----------------------------------------------------------------------------------------

    def scope_next_message(self, scope: MessageScope) -> None:
        """The next run() — one message and the turns it leads to — uses only the tools and the model `scope`
        allows (a custom command's frontmatter); the run after it is as before."""
        self._next_scope = scope

    def attach_images(self, images: list[ImageBlock]) -> None:
        """Images the next message carries (checked and kept beside the session: `agent.attachments`); the next
        run() with text sends them. An image already waiting is not added twice (a message sent again)."""
        waiting = {(i.path, i.data) for i in self._next_images}
        self._next_images.extend(i for i in images if (i.path, i.data) not in waiting)

    async def run(self, user_text: str | None) -> AsyncIterator[ev.Event]:
        """Add the user's message (None: continue as is) and drive turns until a Stop."""
        scope, self._next_scope = self._next_scope, None
        restore = enter_scope(self, scope)
        try:
            async for e in self._run(user_text):
                yield e
        finally:
            await restore()

    async def _run(self, user_text: str | None) -> AsyncIterator[ev.Event]:
        self.hooks.new_run()
        # A resumed session whose model had already finished (a run killed mid-verification): verify first.
        finished = not user_text and self.verification is not None and self._model_has_finished()
        try:
            async for e in self.hooks.session_start(resumed=bool(self.messages)):
                yield e
            if user_text:
                images, self._next_images = self._next_images, []
                async for e in self.hooks.prompt(user_text, [block_to_dict(i) for i in images]):
                    yield e
                if self.hooks.prompt_blocked is not None:
                    raise self._done("stopped_by_hook", f"the prompt was blocked by a UserPromptSubmit hook: "
                                                        f"{self.hooks.prompt_blocked}")
            while True:
                if not finished:
                    self._check_budgets()
                    async for e in self._turn():
                        yield e
                    finished = self._model_has_finished()
                    continue
                finished = False
                async for e in self._verify_or_stop():
                    yield e
        except Stop as stop:
            yield self._emit(stop.event)

    def _model_has_finished(self) -> bool:
        last = self.messages[-1] if self.messages else None
        return last is not None and last.role == "assistant" and not last.tool_uses

    async def _turn(self) -> AsyncIterator[ev.Event]:
        """Compaction, one model call, then its tool calls."""
        for notice in self.registry.take_notices():
            yield self._emit(ev.ContextNote(notice, "tools"))
        try:
            async for e in self._compact_before_call():
                yield e
            complete: TurnComplete | None = None
            async for item in self._model_call():
                if isinstance(item, TurnComplete):
                    complete = item
                else:
                    yield item
        except (ProviderError, CompactionFailed) as err:
            raise Stop(ev.Failed(str(err), "error_during_execution", self.stats.num_turns)) from None
        assert complete is not None
        yield self._emit(ev.AssistantMessage(complete.message.to_dict()))
        u = complete.usage
        self.stats.add_usage(u, self.cost_of(u))
        if self.compactor is not None:
            self.compactor.record_usage(u.total_input)
        yield self._emit(ev.Usage(u.input_tokens, u.output_tokens, u.cache_read_input_tokens,
                                  u.cache_creation_input_tokens, self.stats.cost_usd))
        if complete.message.tool_uses:
            async for e in self._run_tools(complete.message.tool_uses):
                yield e

    async def _verify_or_stop(self) -> AsyncIterator[ev.Event]:
        """The model says it is done: without --verify that is success; with it, the command decides. A failure
        goes back to the model as a user message while attempts are left (the budgets still apply). Stop hooks
        come first: one that blocks sends the model back to work before anything is verified."""
        async for e in self.hooks.stop():
            yield e
        if self.hooks.keep_going:
            return
        final_text = self.last_text()
        v = self.verification
        if v is None:
            raise self._done("success", final_text)
        self.verify_runs += 1
        yield self._emit(ev.VerificationStarted(v.command, self.verify_runs, v.max_runs))
        try:
            result = await run_verification(v, self.verify_runs, self.ctx)
        except VerificationError as exc:
            raise Stop(ev.Failed(str(exc), "error_during_execution", self.stats.num_turns)) from None
        self.verify_last = result
        yield self._emit(result)
        if result.passed:
            raise self._done("success", final_text)
        if self.verify_runs >= v.max_runs:
            raise self._done("error_verification", still_failing(v, self.verify_runs, result))
        yield self._emit(ev.UserMessage(verification_feedback(result, v.max_runs, v.timeout_s)))

    def verification_report(self) -> dict[str, Any] | None:
        """For the result object: None without --verify."""
        v = self.verification
        if v is None:
            return None
        last = self.verify_last
        return {"command": v.command, "passed": bool(last and last.passed and last.attempt == self.verify_runs),
                "attempts": self.verify_runs, "max_attempts": v.max_runs,
                "last_exit_code": last.exit_code if last else None}

    # -- compaction --------------------------------------------------------------------------------------

    async def compact(self, focus: str | None = None) -> AsyncIterator[ev.Event]:
        """/compact [focus]: summarise now; yields Compaction events (none without a compactor, and none when the
        summary would not be smaller than what it replaces: a short conversation stays as it is)."""
        if self.compactor is None:
            return
        tools = self.registry.specs()
        before = self.compactor.estimate(self.system, tools, self.messages)
        async for e in self.hooks.pre_compact("manual", focus or ""):
            yield e
        new_messages, stages = await self.compactor.compact_now(self.system, tools, self.messages, focus=focus)
        if self.compactor.estimate(self.system, tools, new_messages) >= before:
            return
        for e in self._adopt(new_messages, stages):
            yield e

    async def _compact_before_call(self) -> AsyncIterator[ev.Event]:
        if self.compactor is None:
            return
        if self.hooks.wants_pre_compact() and self.compactor.summary_due(self.system, self.registry.specs(),
                                                                          self.messages):
            async for e in self.hooks.pre_compact("auto"):
                yield e
        result = await self.compactor.prepare(self.system, self.registry.specs(), self.messages)
        for e in self._adopt(*result):
            yield e

    def _adopt(self, new_messages: list[Message], stages: list[Any]) -> list[ev.Event]:
        events = [self._emit(ev.Compaction(c.stage, c.tokens_before, c.tokens_after, c.detail)) for c in stages]
        if new_messages is not self.messages:
            self.messages[:] = new_messages
            # Summaries cost a model call: keep the rebuilt transcript in the session so --resume starts from it.
            if self.session is not None and any(c.stage in ("collapse", "auto_compact") for c in stages):
                self.session.append({"type": "transcript_replaced",
                                     "messages": [m.to_dict() for m in self.messages]})
        return events

    async def _model_call(self) -> AsyncIterator[ev.Event | TurnComplete]:
        """One streamed model call; on a context-length error, compact reactively and retry (bounded)."""
        self.stats.num_turns += 1
        yield self._emit(ev.TurnStarted(self.stats.num_turns))
        for failures in range(MAX_CONTEXT_RETRIES + 1):
            try:
                async for item in self.provider.stream_turn(self.system, self.messages, self.tool_specs,
                                                            self.max_output_tokens):
                    if isinstance(item, StreamText):
                        yield ev.TextDelta(item.text)  # deltas are not logged: the full message is
                    elif isinstance(item, StreamRetry):
                        yield self._emit(ev.Retry(item.attempt, item.delay_s, item.error))
                    elif isinstance(item, TurnComplete):
                        yield item
                return
            except ContextLengthError as err:
                if self.compactor is None or failures == MAX_CONTEXT_RETRIES:
                    raise ProviderError(
                        f"the conversation no longer fits the model's context window ({err}); "
                        f"start a new session or raise the window in config") from None
                async for e in self.hooks.pre_compact("auto"):
                    yield e
                result = await self.compactor.on_context_error(self.system, self.registry.specs(), self.messages,
                                                               err.limit)
                for e in self._adopt(*result):
                    yield e

    # -- tools -------------------------------------------------------------------------------------------

    async def _run_tools(self, uses: list[ToolUseBlock]) -> AsyncIterator[ev.Event]:
        """Every call passes the gate (in order: approvals are asked one at a time), then the admitted ones run."""
        calls = [Call(u.id, u.name, u.input, u.raw_arguments) for u in uses]
        for c in calls:
            yield self._emit(ev.ToolCall(c.id, c.name, c.args, self.registry.kind_of(c.name),
                                         self.registry.title_of(c.name, c.args)))
        verdicts: list[Verdict] = []
        for c in calls:
            verdict = await self.registry.admit(c, self.ctx)
            verdicts.append(verdict)
            for r in verdict.hook_reports:
                yield self.hooks.report(r, c.id)
            if verdict.asked or verdict.refusal is not None and verdict.refusal.meta.get("denied"):
                yield self._emit(ev.PermissionRequest(c.name, c.args, verdict.reason,
                                                      "allowed" if verdict.allowed else "denied", c.id,
                                                      verdict.remembered_rule, verdict.decided_by))
        admitted = [v for v in verdicts if v.allowed]
        if any(v.tool is not None and v.kind != "read" for v in admitted):
            await self._checkpoint()
        live: asyncio.Queue[ev.Event] = asyncio.Queue()
        ctx = dataclasses.replace(
            self.ctx, on_progress=lambda call_id, text: live.put_nowait(ev.ToolOutput(call_id, text)),
            on_report=lambda call_id, item: live.put_nowait(ev.SubagentEvent(call_id, item)),
            on_hook=lambda call_id, r: live.put_nowait(self.hooks.event(r, call_id)))
        task = asyncio.ensure_future(self.registry.execute(admitted, ctx))
        async for e in _drain(task, live):
            yield e if ev.is_transient(e) else self._emit(e)
        outcomes = dict(zip((v.call.id for v in admitted), task.result(), strict=True))
        for v in verdicts:
            r = outcomes.get(v.call.id) or v.refusal
            assert r is not None
            self.stats.add_result(self.registry.kind_of(v.call.name), v.args, r)
            meta = _json_safe(r.meta)
            if meta.get("diff"):
                yield self._emit(ev.Diff(str(meta.get("path", "")), meta["diff"], v.call.id))
            if isinstance(meta.get("todos"), list) and not r.is_error:
                yield self._emit(ev.TodoList(meta["todos"], v.call.id))
            yield self._emit(ev.ToolResultEvent(v.call.id, v.call.name, r.content, r.is_error, meta))

    async def _checkpoint(self) -> None:
        if self.checkpoints is None:
            return
        label = f"{self.session.id if self.session else 'run'}:{self.stats.num_turns}"
        try:
            sha = await asyncio.to_thread(self.checkpoints.snapshot, label)
            self.first_checkpoint = self.first_checkpoint or sha
        except Exception:  # a failed snapshot must not stop the work; undo just has one point less
            log.debug("checkpoint %s failed", label, exc_info=True)

    # -- what front ends may ask of the loop between turns ------------------------------------------------

    def mark_interrupted(self) -> list[str]:
        """After run() was cancelled: settle the calls left without a result and log the interruption."""
        closed = self.settle_interrupted()
        if self.session is not None:
            self.session.append({"type": "interrupted"})
        return closed

    def context_usage(self) -> ContextUsage | None:
        """Tokens the next request would carry, and the window compaction works within (None: no compactor)."""
        if self.compactor is None:
            return None
        tokens = self.compactor.estimate(self.system, self.registry.specs(), self.messages)
        return ContextUsage(tokens, self.compactor.effective_window)

    def context_parts(self, instructions: str = "") -> list[tuple[str, int]]:
        """/context: what fills the window — the system prompt, the project instructions in it, the tool
        definitions, the conversation (counted as compaction counts them)."""
        if self.compactor is None:
            return []
        count, tools = self.compactor.estimate, self.registry.specs()
        base = self.system.replace(instructions, "") if instructions else self.system
        parts = [("system prompt", count(base, [], [])), ("instructions (AGENT.md)", count(instructions, [], [])),
                 ("tool definitions", count("", tools, [])), ("conversation", count("", [], self.messages))]
        return [(name, n) for name, n in parts if n or name == "conversation"]

    def session_diff(self) -> str:
        """/diff: every change to the files since the session's first checkpoint (shell-made ones too)."""
        if self.checkpoints is None:
            raise UndoError("checkpoints are not available here (not a git repository, or git is missing)")
        try:
            return self.checkpoints.session_diff(self.session.id if self.session is not None else None)
        except Exception as exc:  # CheckpointError and git failures: one line
            raise UndoError(str(exc)) from None

    def set_approval_mode(self, mode: str) -> None:
        """Later calls are judged in `mode`; entering or leaving plan mode changes what the system prompt says."""
        self.ctx.approval = mode
        self.system = system_for_mode(self.base_system, mode)

    def set_provider(self, provider: Provider, *, cost_of: Callable[[TurnUsage], float | None],
                     max_output_tokens: int) -> None:
        """/model: later turns go to another model; the transcript is provider-neutral."""
        self.provider = provider
        self.cost_of = cost_of
        self.max_output_tokens = max_output_tokens

    async def undo(self, turns: int = 1) -> ev.ContextNote:
        """Restore the files as they were before the last `turns` turns that changed them; the model is told."""
        if self.checkpoints is None:
            raise UndoError("checkpoints are not available here (not a git repository, or git is missing)")
        session_id = self.session.id if self.session is not None else None
        try:
            checkpoint, changed = await asyncio.to_thread(self.checkpoints.undo, session_id, turns)
        except Exception as exc:  # CheckpointError and git failures: one line
            raise UndoError(str(exc)) from None
        files = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10 else "")
        turn = checkpoint.label.rpartition(":")[2]  # labels are "<session>:<turn>" (see _checkpoint)
        before = f"turn {turn}" if turn.isdigit() else checkpoint.label
        text = (f"[The user ran /undo: {len(changed)} file(s) restored to their state before {before}"
                f"{': ' + files if changed else ''}. Re-read files before editing them.]")
        return self._emit(ev.ContextNote(text, "undo"))  # type: ignore[return-value]

    async def shell(self, command: str, call_id: str) -> AsyncIterator[ev.Event]:
        """`!command`: run it in the sandbox; its live output, then its result (which the model will read)."""
        live: asyncio.Queue[ev.Event] = asyncio.Queue()
        task = asyncio.ensure_future(run_user_shell(command, call_id, self.ctx,
                                                    lambda text: live.put_nowait(ev.ToolOutput(call_id, text))))
        async for e in _drain(task, live):
            yield e
        yield self._emit(task.result())

    def settle_interrupted(self) -> list[str]:
        """After run() was cancelled: tool calls left without a result get an 'interrupted' error result
        (logged like any result, so transcript, session and ledger agree). Returns the ids closed."""
        msgs = self.messages
        if msgs and msgs[-1].role == "assistant":
            assistant, done = msgs[-1], set()
        elif len(msgs) >= 2 and msgs[-2].role == "assistant" and msgs[-1].tool_results:
            assistant, done = msgs[-2], {b.tool_use_id for b in msgs[-1].tool_results}
        else:
            return []
        missing = [u for u in assistant.tool_uses if u.id not in done]
        for u in missing:
            self._emit(ev.ToolResultEvent(u.id, u.name, INTERRUPTED, True, {"interrupted": True}))
        return [u.id for u in missing]


async def _drain(task: asyncio.Future[Any], live: asyncio.Queue[ev.Event]) -> AsyncIterator[ev.Event]:
    """Yield what `task` reports on `live` while it runs (and what is left after). Cancelling the consumer
    cancels the task, so Ctrl-C still kills a running command."""
    try:
        while not task.done():
            get = asyncio.ensure_future(live.get())
            await asyncio.wait({task, get}, return_when=asyncio.FIRST_COMPLETED)
            if get.done():
                yield get.result()
            else:
                get.cancel()
        while not live.empty():
            yield live.get_nowait()
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


def _json_safe(meta: dict[str, Any]) -> dict[str, Any]:
    """Meta as JSON values (lists of objects, such as a todo list, stay objects); anything else as its str."""
    return {str(k): _json_value(v) for k, v in meta.items()}


def _json_value(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    if isinstance(v, dict):
        return _json_safe(v)
    return str(v)
