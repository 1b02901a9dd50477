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

from ghostline.agent import events as ev
from ghostline.agent.providers.base import (
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
from ghostline.agent.session import INTERRUPTED, Session, apply_event, close_dangling_tool_uses
from ghostline.compaction import CompactionFailed
from ghostline.compaction.transcript import Message
from ghostline.tools.base import REWRITE_PENDING, Tool, ToolContext, ToolResult

MAX_CONTEXT_RETRIES = 3

# --verify: what the model is shown of a failing command's output (its end, where the errors usually are).
VERIFY_TAIL_BYTES = 4096
VERIFY_TAIL_LINES = 100
VERIFY_OUTPUT_LIMIT = 30000  # captured in memory (head + tail); the whole output goes beside the session
DEFAULT_VERIFY_ATTEMPTS = 2
DEFAULT_VERIFY_TIMEOUT_S = 600.0


@dataclass
class Verification:
    """`agent run --verify CMD`: run CMD when the model says it is done; on failure, send it back to fix."""

    command: str
    attempts: int = DEFAULT_VERIFY_ATTEMPTS  # extra attempts after the first failure (0: verify once)
    timeout_s: float = DEFAULT_VERIFY_TIMEOUT_S

    @property
    def max_runs(self) -> int:
        return 1 + self.attempts


def output_tail(text: str, max_bytes: int = VERIFY_TAIL_BYTES, max_lines: int = VERIFY_TAIL_LINES
                ) -> tuple[str, bool]:
    """The end of a command's output: at most `max_lines` lines and `max_bytes` UTF-8 bytes, starting on a line
    boundary where possible (a single over-long last line keeps its end). Returns (tail, cut): cut is True when
    anything but trailing whitespace was left out."""
    text = text.rstrip()
    if not text:
        return "", False
    lines = text.split("\n")
    cut = len(lines) > max_lines
    tail = "\n".join(lines[-max_lines:]) if cut else text
    raw = tail.encode("utf-8", errors="replace")
    if len(raw) > max_bytes:
        cut = True
        piece = raw[-max_bytes:]
        # Skip continuation bytes: never start inside a multi-byte character.
        start = 0
        while start < len(piece) and (piece[start] & 0xC0) == 0x80:
            start += 1
        tail = piece[start:].decode("utf-8", errors="replace")
        nl = tail.find("\n")
        if 0 <= nl < len(tail) - 1:
            tail = tail[nl + 1:]  # drop the partial first line
    return tail, cut


def verification_feedback(r: ev.VerificationResult, max_runs: int, timeout_s: float) -> str:
    """The user message that sends a failed verification back to the model."""
    if r.timed_out:
        how = f"timed out after {timeout_s:g}s and was killed (exit code {r.exit_code})"
    else:
        how = f"failed with exit code {r.exit_code}"
    parts = [f"The verification command `{r.command}` {how} (attempt {r.attempt} of {max_runs})."]
    if r.output_tail:
        note = ""
        if r.tail_cut:
            note = " (earlier output was cut"
            note += f"; the full output is in {r.full_output_path})" if r.full_output_path else ")"
        parts.append(f"The end of its output{note}:\n```\n{r.output_tail}\n```")
    else:
        parts.append("It printed nothing.")
    parts.append("Find and fix the cause of the failure (do not weaken or skip the check), then end your turn; "
                 "the command runs again when you are done.")
    return "\n".join(parts)


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
        verification: Verification | None = None,
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
        self.verification = verification
        self.verify_runs = 0  # verification runs started in this run (not counting earlier runs of a session)
        self.verify_last: ev.VerificationResult | None = None
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
        """Add the user's message (None: continue as is) and drive turns until done, a budget, or an error.

        With a verification, "done" means the model ended its turn with no tool calls *and* the command
        passed; a failure goes back to the model as a user message while attempts are left."""
        if user_text:
            yield self._emit(ev.UserMessage(user_text))
        # A resumed session whose model had already finished (a run killed mid-verification): verify first.
        verify_now = (not user_text and self.verification is not None and bool(self.messages)
                      and self.messages[-1].role == "assistant" and not self.messages[-1].tool_uses)
        while True:
            if verify_now:
                verify_now = False
                final_text = self._last_text()
            else:
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
                if uses:
                    async for e in self._run_tools(uses):
                        yield e
                    continue
                final_text = msg.text.strip()
            if self.verification is None:
                yield self._emit(ev.Done(final_text, "success", self.stats.num_turns))
                return
            result: ev.VerificationResult | None = None
            async for e in self._verify():
                yield e
                if isinstance(e, ev.Failed):
                    return
                if isinstance(e, ev.VerificationResult):
                    result = e
            assert result is not None
            if result.passed:
                yield self._emit(ev.Done(final_text, "success", self.stats.num_turns))
                return
            v = self.verification
            if self.verify_runs >= v.max_runs:
                how = "timed out" if result.timed_out else f"exited with code {result.exit_code}"
                yield self._emit(ev.Done(
                    f"verification still fails after {self.verify_runs} attempt{'s' * (self.verify_runs != 1)}: "
                    f"`{v.command}` {how}", "error_verification", self.stats.num_turns))
                return
            # Same loop, same budgets: the top of the loop stops here if a budget ran out.
            yield self._emit(ev.UserMessage(verification_feedback(result, v.max_runs, v.timeout_s)))

    async def _verify(self) -> AsyncIterator[ev.Event]:
        """Run the verification command once, through the same sandbox as the bash tool."""
        from ghostline import sandbox

        v = self.verification
        assert v is not None
        self.verify_runs += 1
        yield self._emit(ev.VerificationStarted(v.command, self.verify_runs, v.max_runs))
        try:
            res = await sandbox.run_command(
                v.command, cwd=self.ctx.cwd, workspace=self.ctx.workspace, mode=self.ctx.sandbox_mode,
                network=self.ctx.network, timeout=v.timeout_s, output_limit=VERIFY_OUTPUT_LIMIT, env=self.ctx.env,
                output_dir=self.ctx.output_dir,
            )
        except sandbox.SandboxError as exc:
            yield self._emit(ev.Failed(f"the sandbox could not run the verification command: {exc}",
                                       "error_during_execution", self.stats.num_turns))
            return
        tail, cut = output_tail(res.output)
        passed = res.exit_code == 0 and not res.timed_out
        self.verify_last = ev.VerificationResult(
            v.command, self.verify_runs, res.exit_code, passed, res.duration_ms, tail, cut or res.truncated,
            res.timed_out, res.full_output_path)
        yield self._emit(self.verify_last)

    def verification_report(self) -> dict[str, Any] | None:
        """For the result object: None without --verify."""
        v = self.verification
        if v is None:
            return None
        last = self.verify_last
        return {"command": v.command, "passed": bool(last and last.passed and last.attempt == self.verify_runs),
                "attempts": self.verify_runs, "max_attempts": v.max_runs,
                "last_exit_code": last.exit_code if last else None}

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
        from ghostline.tools.registry import run_tool_calls

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
