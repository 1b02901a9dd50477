"""The ReAct loop: an async generator of typed events. Front ends consume the events and nothing else.

One turn = one model call. Before each call: budgets, then compaction. After the model answers: run its tool
calls (read-only ones concurrently, writes in order) under the sandbox policy, feed results back, repeat until
the model ends its turn without tool calls or a budget stops the run.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable

from agent import events as ev
from agent.providers.base import (
    ContextLengthError,
    Provider,
    ProviderError,
    StreamRetry,
    StreamText,
    ToolSpec,
    TurnComplete,
    TurnUsage,
    malformed_arguments,
)
from agent.session import INTERRUPTED, Session, apply_event, close_dangling_tool_uses
from compaction import CompactionFailed
from compaction.transcript import Message
from tools.base import REWRITE_PENDING, Tool, ToolContext, ToolResult

MAX_CONTEXT_RETRIES = 3


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


class AgentLoop:
    def __init__(
        self,
        *,
        provider: Provider,
        tools: list[Tool],
        ctx: ToolContext,
        system: str,
        session: Session | None = None,
        messages: list[Message] | None = None,
        budgets: Budgets | None = None,
        policy: Any = None,  # sandbox.Policy: evaluate(tool, args, mode=, approval=, workspace=) -> Decision
        compactor: Any = None,  # compaction.Compactor
        checkpoints: Any = None,  # sandbox.Checkpoints: snapshot(label) -> ref
        failure_tracker: Any = None,  # apply.FailureTracker
        cost_of: Callable[[TurnUsage], float | None] = lambda u: None,
        max_output_tokens: int = 8192,
    ):
        self.provider = provider
        self.tools = tools
        self.tools_by_name = {t.name: t for t in tools}
        self.ctx = ctx
        self.system = system
        self.session = session
        self.messages: list[Message] = messages if messages is not None else []
        self.budgets = budgets or Budgets()
        self.policy = policy
        self.compactor = compactor
        self.checkpoints = checkpoints
        self.failure_tracker = failure_tracker
        self.cost_of = cost_of
        self.max_output_tokens = max_output_tokens
        self.stats = RunStats()
        self.tool_specs = [ToolSpec(t.name, t.description, t.input_schema) for t in tools]
        self._tool_dicts = [{"name": s.name, "description": s.description, "input_schema": s.input_schema}
                            for s in self.tool_specs]
        close_dangling_tool_uses(self.messages)

    # -- bookkeeping -------------------------------------------------------------------------------------

    def _emit(self, event: ev.Event) -> ev.Event:
        d = event.to_dict()
        if self.session is not None:
            self.session.append(d)
        if self.compactor is not None and hasattr(self.compactor, "observe"):
            self.compactor.observe(d)
        apply_event(self.messages, d)
        return event

    def _budget_stop(self) -> ev.Done | None:
        b, s = self.budgets, self.stats
        if b.max_turns is not None and s.num_turns >= b.max_turns:
            return ev.Done(self._last_text(), "error_max_turns", s.num_turns)
        if b.max_tokens is not None and s.total_tokens >= b.max_tokens:
            return ev.Done(self._last_text(), "error_budget", s.num_turns)
        if b.max_cost is not None and s.cost_usd is not None and s.cost_usd >= b.max_cost:
            return ev.Done(self._last_text(), "error_budget", s.num_turns)
        return None

    def _last_text(self) -> str:
        for m in reversed(self.messages):
            if m.role == "assistant" and m.text.strip():
                return m.text.strip()
        return ""

    # -- the loop ----------------------------------------------------------------------------------------

    async def run(self, user_text: str | None) -> AsyncIterator[ev.Event]:
        """Add the user's message (None: continue as is) and drive turns until done, a budget, or an error."""
        if user_text:
            yield self._emit(ev.UserMessage(user_text))
        while True:
            stop = self._budget_stop()
            if stop is not None:
                yield self._emit(stop)
                return
            try:
                async for e in self._compact():
                    yield e
                complete: TurnComplete | None = None
                async for e in self._model_turn():
                    if isinstance(e, TurnComplete):
                        complete = e
                    else:
                        yield e
            except (ProviderError, CompactionFailed) as err:
                yield self._emit(ev.Failed(str(err), "error_during_execution", self.stats.num_turns))
                return
            assert complete is not None
            msg = complete.message
            yield self._emit(ev.AssistantMessage(msg.to_dict()))
            cost = self.cost_of(complete.usage)
            self.stats.add_usage(complete.usage, cost)
            if self.compactor is not None and hasattr(self.compactor, "record_usage"):
                self.compactor.record_usage(complete.usage.total_input)
            yield self._emit(ev.Usage(complete.usage.input_tokens, complete.usage.output_tokens,
                                      complete.usage.cache_read_input_tokens,
                                      complete.usage.cache_creation_input_tokens, self.stats.cost_usd))
            uses = msg.tool_uses
            if not uses:
                yield self._emit(ev.Done(msg.text.strip(), "success", self.stats.num_turns))
                return
            async for e in self._run_tools(uses):
                yield e

    async def compact(self, focus: str | None = None) -> AsyncIterator[ev.Event]:
        """/compact [focus]: summarise now; yields Compaction events (none without a compactor)."""
        if self.compactor is None or not hasattr(self.compactor, "compact_now"):
            return
        new_messages, cevents = await self.compactor.compact_now(self.system, self._tool_dicts, self.messages,
                                                                 focus=focus)
        for c in cevents:
            yield self._emit(ev.Compaction(c.stage, c.tokens_before, c.tokens_after, c.detail))
        self._adopt(new_messages, cevents)

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

    async def _compact(self) -> AsyncIterator[ev.Event]:
        if self.compactor is None:
            return
        new_messages, cevents = await self.compactor.prepare(self.system, self._tool_dicts, self.messages)
        for c in cevents:
            yield self._emit(ev.Compaction(c.stage, c.tokens_before, c.tokens_after, c.detail))
        self._adopt(new_messages, cevents)

    def _adopt(self, new_messages: list[Message], cevents: list[Any]) -> None:
        if new_messages is self.messages:
            return
        self.messages[:] = new_messages
        # Summaries cost a model call: keep the rebuilt transcript in the session so --resume starts from it.
        if self.session is not None and any(c.stage in ("collapse", "auto_compact") for c in cevents):
            self.session.append({"type": "transcript_replaced", "messages": [m.to_dict() for m in self.messages]})

    async def _model_turn(self) -> AsyncIterator[Any]:
        """One model call with streaming; on a context-length error, compact reactively and retry (bounded)."""
        self.stats.num_turns += 1
        yield self._emit(ev.TurnStarted(self.stats.num_turns))
        failures = 0
        while True:
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
                failures += 1
                if self.compactor is None or failures > MAX_CONTEXT_RETRIES:
                    raise ProviderError(
                        f"the conversation no longer fits the model's context window ({err}); "
                        f"start a new session or raise the window in config"
                    ) from None
                new_messages, cevents = await self.compactor.on_context_error(
                    self.system, self._tool_dicts, self.messages, err.limit)
                for c in cevents:
                    yield self._emit(ev.Compaction(c.stage, c.tokens_before, c.tokens_after, c.detail))
                self._adopt(new_messages, cevents)

    async def _decide(self, name: str, args: dict[str, Any]) -> tuple[bool, str]:
        """Ask the policy; 'ask' goes to the approval callback, or is denied when nobody can answer."""
        if self.policy is None or name not in self.tools_by_name:
            return True, ""
        decision = self.policy.evaluate(name, args, mode=self.ctx.sandbox_mode, approval=self.ctx.approval,
                                        workspace=self.ctx.workspace)
        if decision.action == "allow":
            return True, ""
        if decision.action == "deny":
            return False, f"denied by the sandbox policy: {decision.reason}"
        if self.ctx.approve is None:
            return False, (f"this action needs the user's approval ({decision.reason}), and none can be given in "
                           f"a headless run; find another way that needs no approval, or stop and explain")
        ok = await self.ctx.approve(name, args, decision.reason)
        return ok, "" if ok else f"the user declined this action ({decision.reason})"

    async def _run_tools(self, uses: list[Any]) -> AsyncIterator[ev.Event]:
        from tools.registry import run_tool_calls

        allowed: list[tuple[str, str, dict[str, Any]]] = []
        denied: dict[str, str] = {}
        for u in uses:
            yield self._emit(ev.ToolCall(u.id, u.name, u.input))
            bad_args = malformed_arguments(u.input)
            if bad_args is not None:
                denied[u.id] = bad_args
                continue
            ok, why = await self._decide(u.name, u.input)
            if ok:
                allowed.append((u.id, u.name, u.input))
            else:
                denied[u.id] = why
                yield self._emit(ev.ApprovalNeeded(u.name, u.input, why, "denied"))
        writes = [c for c in allowed if c[1] in self.tools_by_name and not self.tools_by_name[c[1]].read_only]
        if writes and self.checkpoints is not None:
            label = f"{self.session.id if self.session else 'run'}:{self.stats.num_turns}"
            try:
                await asyncio.to_thread(self.checkpoints.snapshot, label)
            except Exception:  # a failed snapshot must not stop the work; undo just has one point less
                pass
        results: dict[str, ToolResult] = {}
        if allowed:
            outs = await run_tool_calls(allowed, self.tools, self.ctx)
            results = {c[0]: r for c, r in zip(allowed, outs, strict=True)}
        for u in uses:
            if u.id in denied:
                r = ToolResult(denied[u.id], is_error=True,
                               meta={"malformed": True} if malformed_arguments(u.input) else {"denied": True})
            else:
                r = results[u.id]
                self._track(u.name, u.input, r)
            if r.meta.get("diff"):
                yield self._emit(ev.Diff(str(r.meta.get("path", u.input.get("path", ""))), r.meta["diff"]))
            yield self._emit(ev.ToolResultEvent(u.id, u.name, r.content, r.is_error, _json_safe(r.meta)))

    def _track(self, name: str, args: dict[str, Any], r: ToolResult) -> None:
        path = r.meta.get("path") or args.get("path")
        if name in ("write", "edit") and not r.is_error and path:
            full = os.path.normpath(os.path.join(self.ctx.cwd, str(path)))
            if full not in self.stats.files_changed:
                self.stats.files_changed.append(full)
        if name == "bash" and "exit_code" in r.meta:
            self.stats.commands.append({"command": args.get("command", ""), "exit_code": r.meta["exit_code"]})
        if name == "edit" and args.get("path") and self.failure_tracker is not None:
            full = os.path.realpath(os.path.join(self.ctx.cwd, str(args["path"])))
            if self.failure_tracker.record(full, not r.is_error):
                # After repeated failures, ask for the whole file; the write tool checks it for truncation.
                self.ctx.extras.setdefault(REWRITE_PENDING, set()).add(full)
                r.content += "\n\n" + self.failure_tracker.message(str(args["path"]))


def _json_safe(meta: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in meta.items():
        if isinstance(v, (str, int, float, bool)) or v is None:
            out[k] = v
        elif isinstance(v, (list, tuple)):
            out[k] = [x if isinstance(x, (str, int, float, bool)) or x is None else str(x) for x in v]
        elif isinstance(v, dict):
            out[k] = _json_safe(v)
        else:
            out[k] = str(v)
    return out
