"""The five-stage compaction pipeline, run before every model call (cheapest stage first).

Public API (all the loop needs)::

    c = Compactor(CompactionConfig(), window=200_000, reserved_output=8192, store_dir=session_dir,
                  summarize=async_fn, instructions=agent_md_text, provider="anthropic")
    messages, events = await c.prepare(system, tools, messages)          # before each model call
    messages, events = await c.on_context_error(system, tools, messages, limit)  # provider said: too long
    messages, events = await c.compact_now(system, tools, messages, focus)       # /compact [focus]
    c.observe(event_dict)            # every loop event (keeps the ledger)
    c.record_usage(reported_input_tokens, estimated=None)  # calibrates the estimate after each call

`events` are `CompactionEvent(stage, tokens_before, tokens_after, detail)`; stages are ``budget``, ``snip``,
``microcompact``, ``collapse`` and ``auto_compact``. `tools` are plain dicts (name, description, input_schema).
`summarize(prompt_messages) -> str` is an async callable that asks the model; a `ContextOverflow` (or an
exception that `is_overflow` accepts) means the summary prompt was too long: the oldest items are dropped and it
retries; after `max_summary_attempts` failures `CompactionFailed` is raised.
Without a summariser, collapse writes a deterministic summary from the ledger.

Stages (thresholds are fractions of the effective window = window − reserved output):

1. budget (always): tool results over the per-result cap (or a turn over the per-turn cap) are saved in full
   under ``store_dir/outputs/`` and replaced by head + tail + size + exit code + path.
2. snip (> snip_at): empty results and denied calls are dropped (pair and all), superseded reads stubbed.
3. microcompact (> micro_at): observations outside the last N tool turns become one-line stubs naming their
   saved full output; user messages, the latest todo and the latest read of an edited file stay (the latter
   and the recent turns, down to `micro_min_keep`, only go when nothing else gets it under its target).
4. collapse (> collapse_at, or when microcompact cannot get back under micro_at): everything before the recent
   window becomes one summary message (model summary merged with the deterministic ledger, which is the source
   of truth for facts, plus where the full outputs are); the recent window is what fits under collapse_target.
5. auto_compact (> hard_at, or on a context-length error): rebuild from summary + ledger + a smaller recent
   window; on repeated errors the recent window halves each time; bounded, never loops.

Every stage stops once under its target; tool_use/tool_result pairs stay valid; the system prompt and tools
are never touched; the same input gives the same output, and running it again on its output changes nothing.
When `instructions` (AGENT.md) are not part of `system`, they are re-injected at the head of the transcript
after every collapse.

Files written under `store_dir`: ``outputs/<tool-call-id>.txt`` (full outputs, written once),
``outputs/INDEX.md`` (one line per saved output, including outputs a tool saved itself via
``meta["full_output_path"]``) and ``ledger.json`` (the full ledger; reloaded when a Compactor is created on the
same directory, e.g. on --resume). `CompactionFailed` is a RuntimeError: the caller should turn it into a
one-line failure (the ledger path is in the message).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Awaitable, Callable

from ghostline.compaction.errors import ContextOverflow
from ghostline.compaction.ledger import (
    EDIT_TOOLS,
    READ_TOOLS,
    TODO_TOOLS,
    WRITE_TOOLS,
    Ledger,
    describe_call,
    error_line,
    exit_code_of,
    is_denied,
    tool_path,
)
from ghostline.compaction.store import OutputStore
from ghostline.compaction.summary import (
    build_prompt,
    carry_forward,
    fallback_summary,
    merge,
    transcript_items,
)
from ghostline.compaction.tokens import TokenAccountant, TokenCounter
from ghostline.compaction.transcript import Message, SummaryBlock, TextBlock, ToolResultBlock, ToolUseBlock

Summarizer = Callable[[list[Message]], Awaitable[str]]

STUB_KINDS = ("budget", "snipped", "superseded", "cleared")


class CompactionFailed(RuntimeError):
    """Compaction could not bring the conversation under the window (the message says what to do)."""


@dataclass
class CompactionEvent:
    stage: str
    tokens_before: int
    tokens_after: int
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "tokens_before": self.tokens_before, "tokens_after": self.tokens_after,
                "detail": self.detail}


@dataclass
class CompactionConfig:
    """All thresholds are fractions of the effective window (window − reserved output)."""

    snip_at: float = 0.5
    micro_at: float = 0.6
    collapse_at: float = 0.7
    hard_at: float = 0.85
    snip_target: float = 0.45
    micro_target: float = 0.4
    collapse_target: float = 0.4
    result_cap_tokens: int = 12000
    result_cap_fraction: float = 0.1
    turn_cap_tokens: int = 24000
    turn_cap_fraction: float = 0.35
    head_fraction: float = 0.25
    tail_fraction: float = 0.25
    keep_tool_turns: int = 3
    micro_min_keep: int = 1  # when older ones are not enough, observations of recent tool turns go too, down to this
    recent_min_tokens: int = 15000
    recent_fraction: float = 0.1
    recent_max_fraction: float = 0.3
    summary_max_tokens: int = 3000
    summary_fraction: float = 0.1
    ledger_max_tokens: int = 3000
    ledger_fraction: float = 0.12
    summary_item_tokens: int = 300
    summary_prompt_fraction: float = 0.8
    summary_output_tokens: int = 4096  # what the summary call reserves for its answer
    summary_recent_outputs: int = 8  # paths of the latest summarised outputs listed in the summary
    store_min_tokens: int = 40
    max_summary_attempts: int = 3
    max_context_retries: int = 3
    enabled: bool = True

    def __post_init__(self) -> None:
        # a stage can be switched off by raising its threshold to 1.0 (so no ordering is imposed)
        if not all(0 < x <= 1 for x in (self.snip_at, self.micro_at, self.collapse_at, self.hard_at)):
            raise ValueError("compaction thresholds (snip_at, micro_at, collapse_at, hard_at) must be in (0, 1]")
        for name in ("snip_target", "micro_target", "collapse_target", "head_fraction", "tail_fraction",
                     "recent_fraction", "recent_max_fraction", "summary_fraction", "ledger_fraction",
                     "result_cap_fraction", "turn_cap_fraction", "summary_prompt_fraction"):
            v = getattr(self, name)
            if not 0 < v <= 1:
                raise ValueError(f"compaction setting {name} must be a fraction in (0, 1], got {v}")
        if self.keep_tool_turns < 0 or self.max_summary_attempts < 1:
            raise ValueError("compaction keep_tool_turns must be >= 0 and max_summary_attempts >= 1")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CompactionConfig:
        """From a config table; unknown keys raise ValueError naming them."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown compaction setting(s): {', '.join(unknown)}")
        return cls(**d)

    def result_cap(self, eff: int) -> int:
        return max(200, min(self.result_cap_tokens, int(eff * self.result_cap_fraction)))

    def turn_cap(self, eff: int) -> int:
        return max(400, min(self.turn_cap_tokens, int(eff * self.turn_cap_fraction)))

    def recent_budget(self, eff: int) -> int:
        return int(min(max(self.recent_min_tokens, eff * self.recent_fraction), eff * self.recent_max_fraction))

    def summary_budget(self, eff: int) -> int:
        return max(150, min(self.summary_max_tokens, int(eff * self.summary_fraction)))

    def ledger_budget(self, eff: int) -> int:
        return max(200, min(self.ledger_max_tokens, int(eff * self.ledger_fraction)))


# -- transcript helpers --------------------------------------------------------------------------------------

def validate_pairs(messages: list[Message]) -> list[str]:
    """Problems with tool_use/tool_result pairing (empty when valid): every tool_use is answered in the next
    message, and every tool_result answers a tool_use of the previous message."""
    problems = []
    for i, m in enumerate(messages):
        if m.role == "assistant":
            ids = [u.id for u in m.tool_uses]
            if ids:
                nxt = messages[i + 1] if i + 1 < len(messages) else None
                got = {r.tool_use_id for r in nxt.tool_results} if nxt is not None and nxt.role == "user" else set()
                missing = [x for x in ids if x not in got]
                if missing and nxt is not None:
                    problems.append(f"message {i}: tool_use without result: {missing}")
        else:
            prev = messages[i - 1] if i > 0 else None
            uses = {u.id for u in prev.tool_uses} if prev is not None and prev.role == "assistant" else set()
            orphans = [r.tool_use_id for r in m.tool_results if r.tool_use_id not in uses]
            if orphans:
                problems.append(f"message {i}: tool_result without tool_use: {orphans}")
        if not m.content:
            problems.append(f"message {i}: empty")
    return problems


def _stub_kind(b: ToolResultBlock) -> str | None:
    k = b.meta.get("compaction") if b.meta else None
    return k if k in STUB_KINDS else None


def _fingerprint(messages: list[Message]) -> int:
    parts = []
    for m in messages:
        for b in m.content:
            if isinstance(b, ToolUseBlock):
                parts.append((m.role, "u", b.id, b.name, json.dumps(b.input, sort_keys=True, default=str)))
            elif isinstance(b, ToolResultBlock):
                parts.append((m.role, "r", b.tool_use_id, b.content, b.is_error))
            else:
                parts.append((m.role, b.type, getattr(b, "text", "")))
    return hash(tuple(parts))


class _Index:
    """Where each tool call and result sits in a transcript."""

    def __init__(self, msgs: list[Message]):
        self.uses: dict[str, tuple[int, ToolUseBlock]] = {}
        self.results: list[tuple[int, int, ToolResultBlock]] = []
        self.turn_of_msg: dict[int, int] = {}  # assistant message index with tool uses -> tool-turn ordinal
        n = 0
        for mi, m in enumerate(msgs):
            if m.role == "assistant":
                us = [b for b in m.content if isinstance(b, ToolUseBlock)]
                if us:
                    self.turn_of_msg[mi] = n
                    n += 1
                for b in us:
                    self.uses[b.id] = (mi, b)
            else:
                for bi, b in enumerate(m.content):
                    if isinstance(b, ToolResultBlock):
                        self.results.append((mi, bi, b))
        self.n_tool_turns = n

    def name(self, call_id: str) -> str:
        u = self.uses.get(call_id)
        return u[1].name if u else "tool"

    def input(self, call_id: str) -> dict[str, Any]:
        u = self.uses.get(call_id)
        return u[1].input if u else {}

    def tool_turn(self, call_id: str) -> int:
        u = self.uses.get(call_id)
        return self.turn_of_msg.get(u[0], -1) if u else -1


def _with_blocks(msgs: list[Message], edits: dict[tuple[int, int], Any]) -> list[Message]:
    """A copy of `msgs` with blocks replaced (value a block) or removed (value None); other messages are shared."""
    by_msg: dict[int, dict[int, Any]] = {}
    for (mi, bi), v in edits.items():
        by_msg.setdefault(mi, {})[bi] = v
    out = list(msgs)
    for mi, repl in by_msg.items():
        content = []
        for bi, b in enumerate(msgs[mi].content):
            if bi in repl:
                if repl[bi] is not None:
                    content.append(repl[bi])
            else:
                content.append(b)
        out[mi] = Message(msgs[mi].role, content)
    return [m for m in out if m.content]


def _merge_adjacent_assistants(msgs: list[Message]) -> list[Message]:
    out: list[Message] = []
    for m in msgs:
        if out and m.role == "assistant" and out[-1].role == "assistant":
            out[-1] = Message("assistant", list(out[-1].content) + list(m.content))
        else:
            out.append(m)
    return out


# -- the compactor ---------------------------------------------------------------------------------------

class Compactor:
    def __init__(
        self,
        config: CompactionConfig | None = None,
        *,
        window: int,
        reserved_output: int,
        store_dir: Path | str | None = None,
        summarize: Summarizer | None = None,
        instructions: str = "",
        provider: str = "default",
        counter: TokenCounter | None = None,
        is_overflow: Callable[[BaseException], bool] | None = None,
    ):
        self.config = config or CompactionConfig()
        self.accountant = TokenAccountant(window, reserved_output, provider=provider, counter=counter)
        self.counter = self.accountant.counter
        self.store = OutputStore(store_dir)
        self.summarize = summarize
        self.instructions = instructions.strip()
        self.is_overflow = is_overflow
        self.ledger = Ledger(ignore_texts=[self.instructions] if self.instructions else [])
        self._load_ledger()
        self._summaries: dict[int, tuple[str, bool]] = {}  # prefix fingerprint -> (summary text, model-written)
        self._context_failures = 0
        self.stage_counts: dict[str, int] = {}
        self.summary_calls = 0
        self.summary_prompt_tokens = 0
        self.last_tokens = 0

    # -- public API ----------------------------------------------------------------------------------------

    @property
    def window(self) -> int:
        return self.accountant.window

    @property
    def effective_window(self) -> int:
        return self.accountant.effective_window

    def adopt_window(self, limit: int | None) -> bool:
        return self.accountant.adopt_window(limit)

    def estimate(self, system: str, tools: list[dict[str, Any]], messages: list[Message]) -> int:
        return self.accountant.estimate(system, tools, messages)

    def observe(self, event: dict[str, Any]) -> None:
        """Feed every loop event dict: the ledger is kept from tool calls, results, user messages, approvals."""
        self.ledger.observe(event)
        if event.get("type") == "assistant_message":
            self._context_failures = 0

    def record_usage(self, reported_input_tokens: int, estimated: int | None = None) -> float:
        """The provider's reported input tokens for the last request; returns the new calibration factor."""
        self._context_failures = 0
        return self.accountant.record_usage(reported_input_tokens, estimated)

    async def prepare(self, system: str, tools: list[dict[str, Any]], messages: list[Message]
                      ) -> tuple[list[Message], list[CompactionEvent]]:
        """Stages 1-4 as needed, then stage 5 if still above the hard threshold. Returns the messages to send
        (the same list object when nothing changed) and one event per stage that changed something."""
        self.ledger.ingest(messages)
        if not self.config.enabled:
            self.last_tokens = self.estimate(system, tools, messages)
            return messages, []
        run = _Run(self, system, tools)
        msgs = run.budget(messages)
        cfg = self.config
        if run.fill() > cfg.snip_at:
            msgs = run.snip(msgs, cfg.snip_target)
        micro_exhausted = False
        if run.fill() > cfg.micro_at:
            msgs = run.microcompact(msgs, cfg.micro_target)
            # stubs pile up: when clearing cannot even get back under micro_at, clearing one result per turn
            # would break the prompt cache every turn; collapse instead (cheapest stage that still works)
            micro_exhausted = run.fill() > cfg.micro_at
        if run.fill() > cfg.collapse_at or micro_exhausted:
            msgs = await run.collapse(msgs, cfg.recent_budget(self.effective_window),
                                      reason="" if run.fill() > cfg.collapse_at else
                                      "microcompact could not get under its threshold")
        for attempt in range(3):  # each attempt keeps less; bounded, never loops
            if run.fill() <= cfg.hard_at:
                break
            msgs = await run.auto_compact(msgs, attempt, reason="above the hard threshold")
        return run.finish(messages, msgs)

    async def on_context_error(self, system: str, tools: list[dict[str, Any]], messages: list[Message],
                               limit: int | None = None) -> tuple[list[Message], list[CompactionEvent]]:
        """Stage 5, reactive: the provider rejected the request as too long. Adopts a revealed smaller window,
        rebuilds with a recent window that halves on each consecutive error; raises CompactionFailed after
        `max_context_retries` consecutive errors."""
        self.ledger.ingest(messages)
        self._context_failures += 1
        if self._context_failures > self.config.max_context_retries:
            raise CompactionFailed(
                f"the conversation still does not fit the context window after {self.config.max_context_retries} "
                f"compactions; start a new session (the ledger is at {self._ledger_path() or 'n/a'})")
        est_before = self.accountant.estimate(system, tools, messages)
        detail = []
        if limit:
            if self.accountant.adopt_window(limit):
                detail.append(f"adopted window {limit}")
        elif est_before <= self.effective_window:
            # Our estimate said it fits; the provider disagrees: the real window must be smaller than we think.
            inferred = int((est_before + self.accountant.reserved_output) * 0.9)
            if self.accountant.adopt_window(inferred):
                detail.append(f"inferred window {inferred}")
        run = _Run(self, system, tools)
        msgs = run.budget(messages)
        msgs = await run.auto_compact(msgs, self._context_failures - 1,
                                      reason="context-length error" + (f" ({'; '.join(detail)})" if detail else ""),
                                      force=True)
        return run.finish(messages, msgs)

    async def compact_now(self, system: str, tools: list[dict[str, Any]], messages: list[Message],
                          focus: str | None = None) -> tuple[list[Message], list[CompactionEvent]]:
        """/compact [focus]: collapse now (stage 4), then stage 5 if still above the hard threshold."""
        self.ledger.ingest(messages)
        run = _Run(self, system, tools)
        msgs = run.budget(messages)
        msgs = await run.collapse(msgs, self.config.recent_budget(self.effective_window), focus=focus, force=True)
        if run.fill() > self.config.hard_at:
            msgs = await run.auto_compact(msgs, 0, reason="above the hard threshold", focus=focus)
        return run.finish(messages, msgs)

    # -- internals ---------------------------------------------------------------------------------------

    def _ledger_path(self) -> str | None:
        return str(self.store.root / "ledger.json") if self.store.root is not None else None

    def _load_ledger(self) -> None:
        p = self._ledger_path()
        if p and Path(p).exists():
            try:
                self.ledger = Ledger.from_dict(json.loads(Path(p).read_text(encoding="utf-8")))
                if self.instructions and self.instructions not in self.ledger.ignore_texts:
                    self.ledger.ignore_texts.append(self.instructions)
            except (ValueError, TypeError, OSError):
                pass

    def _save_ledger(self) -> str | None:
        try:
            return self.store.write_text("ledger.json", self.ledger.to_json())
        except OSError:
            return None

    def _overflowed(self, exc: BaseException) -> bool:
        if self.is_overflow is not None and self.is_overflow(exc):
            return True
        return isinstance(exc, ContextOverflow)


class _Run:
    """One pipeline run: the working estimate and the events of each stage."""

    def __init__(self, c: Compactor, system: str, tools: list[dict[str, Any]]):
        self.c = c
        self.cfg = c.config
        self.counter = c.counter
        self.acct = c.accountant
        self.eff = c.effective_window
        self.base = self.counter.count(system) + self.counter.tools_tokens(tools)
        self.system = system
        self.events: list[CompactionEvent] = []
        self.tokens = 0  # calibrated estimate of the current working transcript

    # -- accounting ------------------------------------------------------------------------------------

    def measure(self, msgs: list[Message]) -> int:
        raw = self.base + self.counter.messages_tokens(msgs)
        self.acct.last_raw_estimate = raw
        self.tokens = self.acct.calibrated(raw)
        return self.tokens

    def fill(self) -> float:
        return self.tokens / self.eff

    def target_tokens(self, frac: float) -> int:
        return int(frac * self.eff)

    def _emit(self, stage: str, before: int, after: int, detail: str) -> None:
        self.events.append(CompactionEvent(stage, before, after, detail))
        self.c.stage_counts[stage] = self.c.stage_counts.get(stage, 0) + 1

    def finish(self, original: list[Message], msgs: list[Message]) -> tuple[list[Message], list[CompactionEvent]]:
        self.c.store.flush()
        self.c.last_tokens = self.tokens
        if not self.events:
            return original, []
        return msgs, self.events

    # -- stage 1: budget ----------------------------------------------------------------------------------

    def _stub_budget(self, b: ToolResultBlock, cap: int, idx: _Index) -> ToolResultBlock:
        cfg = self.cfg
        content = b.content
        n = self.counter.count(content)
        name, inp = idx.name(b.tool_use_id), idx.input(b.tool_use_id)
        desc = describe_call(name, inp, b.meta)
        if b.meta.get("full_output_path"):
            path = self.c.store.register(b.tool_use_id, b.meta["full_output_path"], desc)
        else:
            path = self.c.store.save(b.tool_use_id, content, desc)
        lines = b.meta.get("original_lines") or content.count("\n") + 1
        orig_tokens = b.meta.get("original_tokens") or n
        code = exit_code_of(b.meta)
        info = f"[output truncated by compaction: {orig_tokens} tokens, {lines} lines"
        if code is not None:
            info += f", exit code {code}"
        info += (f"; full output: {path} — read it with the read tool (offset/limit) if you need the middle]"
                 if path else "; the full output was not kept]")
        head, tail = self.counter.head_tail(content, int(cap * cfg.head_fraction), int(cap * cfg.tail_fraction))
        if b.meta.get("compaction") == "budget" and head.startswith("[output truncated by compaction"):
            head = head.split("\n", 1)[1] if "\n" in head else ""
        text = f"{info}\n{head}\n[… {max(0, n - self.counter.count(head) - self.counter.count(tail))} tokens omitted …]\n{tail}"
        meta = {**b.meta, "compaction": "budget", "original_tokens": orig_tokens, "original_lines": lines}
        if path:
            meta["full_output_path"] = path
        return ToolResultBlock(b.tool_use_id, text, b.is_error, meta)

    def budget(self, msgs: list[Message]) -> list[Message]:
        before = self.measure(msgs)
        cap, turn_cap = self.cfg.result_cap(self.eff), self.cfg.turn_cap(self.eff)
        stub_overhead = 90
        idx: _Index | None = None
        edits: dict[tuple[int, int], Any] = {}
        for mi, m in enumerate(msgs):
            if m.role != "user":
                continue
            results = [(bi, b) for bi, b in enumerate(m.content) if isinstance(b, ToolResultBlock)]
            if not results:
                continue
            sizes = {bi: self.counter.count(b.content) for bi, b in results}
            caps: dict[int, int] = {bi: cap for bi, _ in results if sizes[bi] > cap}

            def after(bi: int, caps: dict[int, int] = caps, sizes: dict[int, int] = sizes) -> int:
                if bi not in caps:
                    return sizes[bi]
                return min(sizes[bi], int(caps[bi] * (self.cfg.head_fraction + self.cfg.tail_fraction)) + stub_overhead)

            total = sum(after(bi) for bi, _ in results)
            if total > turn_cap:
                per = max(200, turn_cap // len(results))
                for bi, _ in sorted(results, key=lambda r: (-sizes[r[0]], r[0])):
                    if total <= turn_cap:
                        break
                    if after(bi) <= per:
                        continue
                    old = after(bi)
                    caps[bi] = min(caps.get(bi, cap), per)
                    total += after(bi) - old
            for bi, b in results:
                if bi in caps and sizes[bi] > int(caps[bi] * (self.cfg.head_fraction + self.cfg.tail_fraction)) \
                        + stub_overhead:
                    if idx is None:
                        idx = _Index(msgs)
                    edits[(mi, bi)] = self._stub_budget(b, caps[bi], idx)
        if not edits:
            return msgs
        out = _with_blocks(msgs, edits)
        after_t = self.measure(out)
        self._emit("budget", before, after_t, f"{len(edits)} oversized tool result(s) cut to head + tail "
                   f"(cap {cap} tokens/result, {turn_cap}/turn); full outputs saved")
        return out

    # -- stage 2: snip -----------------------------------------------------------------------------------

    def snip(self, msgs: list[Message], target_frac: float) -> list[Message]:
        before = self.tokens
        target = self.target_tokens(target_frac)
        idx = _Index(msgs)
        # candidates, oldest first: (result position, kind)
        cands: list[tuple[int, int, ToolResultBlock, str]] = []
        last_full_read: dict[str, int] = {}
        for k, (_mi, _bi, b) in enumerate(idx.results):
            name = idx.name(b.tool_use_id).lower()
            inp = idx.input(b.tool_use_id)
            if name in READ_TOOLS or name in WRITE_TOOLS:
                p = tool_path(name, inp, b.meta)
                partial = bool(b.meta.get("partial")) or any(
                    inp.get(x) for x in ("offset", "limit", "start_line", "end_line", "line_range"))
                if p and not b.is_error and not partial:
                    last_full_read[p] = k
        for k, (mi, bi, b) in enumerate(idx.results):
            if _stub_kind(b):
                continue
            name = idx.name(b.tool_use_id).lower()
            inp = idx.input(b.tool_use_id)
            if is_denied(b.content, b.is_error, b.meta):
                cands.append((mi, bi, b, "denied"))
            elif not b.content.strip():
                cands.append((mi, bi, b, "empty"))
            elif name in READ_TOOLS and not b.is_error:
                p = tool_path(name, inp, b.meta)
                if p and last_full_read.get(p, k) > k:
                    cands.append((mi, bi, b, "superseded"))
        if not cands:
            return msgs
        edits: dict[tuple[int, int], Any] = {}
        kinds: dict[str, int] = {}
        factor = self.acct.factor
        cur = self.tokens
        dropped_pairs = False
        for mi, bi, b, kind in cands:
            if cur <= target:
                break
            old = self.counter.block_tokens(b)
            if kind in ("denied", "empty"):
                umi, use = idx.uses.get(b.tool_use_id, (None, None))
                amsg = msgs[umi] if umi is not None else None
                # drop the pair; a message left empty goes too (and the assistant messages around it merge),
                # except in the last message (the model is about to read it)
                if amsg is not None and use is not None and umi == mi - 1 and mi < len(msgs) - 1:
                    dropped_pairs = True
                    edits[(mi, bi)] = None
                    edits[(umi, amsg.content.index(use))] = None
                    cur -= int((old + self.counter.block_tokens(use)) * factor)
                    kinds[kind] = kinds.get(kind, 0) + 1
                    continue
                if kind == "empty":
                    continue  # nothing to gain by stubbing an empty result
                text = f"[snipped: denied call — {error_line(b.content, 160)}]"
                new = ToolResultBlock(b.tool_use_id, text, b.is_error, {**b.meta, "compaction": "snipped"})
            else:
                p = tool_path(idx.name(b.tool_use_id), idx.input(b.tool_use_id), b.meta)
                text = f"[superseded: an older read of {p}; a later read or write of this file follows]"
                new = ToolResultBlock(b.tool_use_id, text, b.is_error, {**b.meta, "compaction": "superseded"})
            if self.counter.block_tokens(new) >= old:
                continue
            edits[(mi, bi)] = new
            cur -= int((old - self.counter.block_tokens(new)) * factor)
            kinds[kind] = kinds.get(kind, 0) + 1
        if not edits:
            return msgs
        out = _with_blocks(msgs, edits)
        if dropped_pairs:
            out = _merge_adjacent_assistants(out)
        after = self.measure(out)
        self._emit("snip", before, after, ", ".join(f"{v} {k}" for k, v in sorted(kinds.items())))
        return out

    # -- stage 3: microcompact ------------------------------------------------------------------------

    def _clear_stub(self, b: ToolResultBlock, idx: _Index) -> ToolResultBlock:
        name, inp = idx.name(b.tool_use_id), idx.input(b.tool_use_id)
        desc = describe_call(name, inp, b.meta)
        path = b.meta.get("full_output_path")
        n_tokens = b.meta.get("original_tokens") or self.counter.count(b.content)
        if path:
            self.c.store.register(b.tool_use_id, path, desc)
        elif n_tokens >= self.cfg.store_min_tokens:
            path = self.c.store.save(b.tool_use_id, b.content, desc)
        lines = b.meta.get("original_lines") or b.content.count("\n") + 1
        code = exit_code_of(b.meta)
        status = f"exit {code}" if code is not None else ("error" if b.is_error else "ok")
        text = f"[cleared: {desc} → {status}, {lines} lines"
        if b.is_error or (code not in (None, 0)):
            err = error_line(b.content, 160)
            if err:
                text += f"; error: {err}"
        text += f"; full output at {path}]" if path else "]"
        meta = {**b.meta, "compaction": "cleared"}
        if path:
            meta["full_output_path"] = path
        return ToolResultBlock(b.tool_use_id, text, b.is_error, meta)

    def microcompact(self, msgs: list[Message], target_frac: float, keep: int | None = None,
                     stage: str = "microcompact") -> list[Message]:
        before = self.tokens
        target = self.target_tokens(target_frac)
        keep = self.cfg.keep_tool_turns if keep is None else keep
        idx = _Index(msgs)
        horizon = idx.n_tool_turns - keep  # tool turns with ordinal < horizon are "old"
        edited: set[str] = set()
        latest_read: dict[str, str] = {}
        latest_todo: str | None = None
        for _mi, _bi, b in idx.results:
            name = idx.name(b.tool_use_id).lower()
            p = tool_path(name, idx.input(b.tool_use_id), b.meta)
            if name in EDIT_TOOLS or name in WRITE_TOOLS:
                if p:
                    edited.add(p)
            elif name in READ_TOOLS and p and not b.is_error and not _stub_kind(b):
                latest_read[p] = b.tool_use_id
            if name in TODO_TOOLS:
                latest_todo = b.tool_use_id
        protected_reads = {latest_read[p] for p in edited if p in latest_read}
        first: list[tuple[int, int, ToolResultBlock]] = []
        second: list[tuple[int, int, ToolResultBlock]] = []
        third: list[tuple[int, int, ToolResultBlock]] = []  # inside the last N tool turns (a last resort)
        min_horizon = idx.n_tool_turns - min(keep, self.cfg.micro_min_keep)
        for mi, bi, b in idx.results:
            if _stub_kind(b) in ("cleared", "snipped", "superseded") or b.tool_use_id == latest_todo:
                continue
            ordinal = idx.tool_turn(b.tool_use_id)
            if ordinal >= horizon:
                if ordinal < min_horizon:
                    third.append((mi, bi, b))
                continue
            (second if b.tool_use_id in protected_reads else first).append((mi, bi, b))
        # large tool_use inputs (whole-file writes) of old turns
        big_inputs: list[tuple[int, int, ToolUseBlock]] = []
        for mi, ordinal in idx.turn_of_msg.items():
            if ordinal >= horizon:
                continue
            for bi, u in enumerate(msgs[mi].content):
                if isinstance(u, ToolUseBlock) and any(
                        isinstance(v, str) and len(v) > 1600 for v in u.input.values()):
                    big_inputs.append((mi, bi, u))
        edits: dict[tuple[int, int], Any] = {}
        factor = self.acct.factor
        cur = self.tokens
        n_res = n_in = 0
        kept_from = 0  # tool turns from this ordinal on are untouched
        merged = sorted([(mi, bi, b) for mi, bi, b in first] + [(mi, bi, u) for mi, bi, u in big_inputs],
                        key=lambda t: (t[0], t[1]))
        for group in (merged, second, third):
            for mi, bi, b in group:
                if cur <= target:
                    break
                old = self.counter.block_tokens(b)
                if isinstance(b, ToolUseBlock):
                    new_input = {k: (f"[cleared: {v.count(chr(10)) + 1} lines, {len(v)} chars]"
                                     if isinstance(v, str) and len(v) > 1600 else v) for k, v in b.input.items()}
                    new: Any = ToolUseBlock(b.id, b.name, new_input)
                else:
                    new = self._clear_stub(b, idx)
                gain = old - self.counter.block_tokens(new)
                if gain <= 0:
                    continue
                edits[(mi, bi)] = new
                cur -= int(gain * factor)
                if isinstance(b, ToolUseBlock):
                    n_in += 1
                else:
                    n_res += 1
                    kept_from = max(kept_from, idx.tool_turn(b.tool_use_id) + 1)
        if not edits:
            return msgs
        out = _with_blocks(msgs, edits)
        after = self.measure(out)
        detail = f"{n_res} old tool result(s) cleared to one-line stubs"
        if n_in:
            detail += f", {n_in} large call input(s) cleared"
        kept = min(keep, idx.n_tool_turns - kept_from)
        detail += f" (kept the last {kept} tool turn(s) verbatim)"
        self._emit(stage, before, after, detail)
        return out

    # -- stage 4: collapse ----------------------------------------------------------------------------

    def _choose_cut(self, msgs: list[Message], recent_budget: int) -> int | None:
        """Index of the first message kept verbatim: an assistant message, with the tail within budget when
        possible; always keeps the last assistant message and what follows it."""
        candidates = [i for i, m in enumerate(msgs) if m.role == "assistant" and i >= 1]
        if not candidates:
            return None
        suffix = [0] * (len(msgs) + 1)
        for i in range(len(msgs) - 1, -1, -1):
            suffix[i] = suffix[i + 1] + self.counter.message_tokens(msgs[i])
        cut = candidates[-1]
        for i in reversed(candidates):
            if int(suffix[i] * self.acct.factor) <= recent_budget:
                cut = i
            else:
                break
        prefix = msgs[:cut]
        if all(isinstance(b, SummaryBlock) or self._is_instructions(b) for m in prefix for b in m.content):
            return None  # only an earlier summary before the cut: nothing to collapse
        return cut

    def _is_instructions(self, b: Any) -> bool:
        return bool(self.c.instructions) and isinstance(b, TextBlock) and b.text.strip() == self.c.instructions

    async def _summary_for(self, prefix: list[Message], focus: str | None, ledger_text: str) -> tuple[str, str]:
        """(summary text, how) for the collapsed part; cached per prefix so the same input gives the same output."""
        c = self.c
        key = hash((_fingerprint(prefix), focus or ""))
        cached = c._summaries.get(key)
        if cached is not None:
            return cached[0], "cached"
        trunc = self._trunc
        if c.summarize is None:
            text = fallback_summary(c.ledger, prefix, trunc)
            c._summaries[key] = (text, False)
            return text, "deterministic"
        items = transcript_items(prefix, trunc, self.cfg.summary_item_tokens)
        # the summary request must fit the window with the summariser's own output reserved
        window = self.acct.window
        prompt_budget = int(min(self.cfg.summary_prompt_fraction * self.eff,
                                window - min(self.cfg.summary_output_tokens, window // 4) - 256) / self.acct.factor)
        # items that are previous summaries are never dropped; otherwise drop the oldest until it fits
        keep_first = [i for i, it in enumerate(items) if it.startswith("[previous summary]")]
        fixed = [items[i] for i in keep_first]
        rest = [it for i, it in enumerate(items) if i not in set(keep_first)]

        def prompt_for(rest_items: list[str]) -> list[Message]:
            return build_prompt(fixed + rest_items, focus=focus, ledger_text=ledger_text)

        def size(rest_items: list[str]) -> int:
            return self.counter.messages_tokens(prompt_for(rest_items))

        while rest and size(rest) > prompt_budget:
            rest = rest[max(1, len(rest) // 8):]
        failures = 0
        last_err: BaseException | None = None
        while True:
            prompt = prompt_for(rest)
            c.summary_calls += 1
            c.summary_prompt_tokens += self.counter.messages_tokens(prompt)
            try:
                text = await c.summarize(prompt)
            except Exception as exc:  # noqa: BLE001 - the summariser is the caller's code
                if not c._overflowed(exc):
                    text = fallback_summary(c.ledger, prefix, trunc)
                    c._summaries[key] = (text, False)
                    return text, f"deterministic (summariser failed: {type(exc).__name__})"
                failures += 1
                last_err = exc
                if failures >= self.cfg.max_summary_attempts:
                    raise CompactionFailed(
                        f"the summary request overflowed the context window {failures} times ({last_err}); "
                        f"start a new session or use a model with a larger window") from exc
                rest = rest[max(1, len(rest) // 3):] if rest else rest
                continue
            text = (text or "").strip()
            if not text:
                text = fallback_summary(c.ledger, prefix, trunc)
                c._summaries[key] = (text, False)
                return text, "deterministic (empty summary)"
            prev = [b.text for m in prefix for b in m.content if isinstance(b, SummaryBlock)]
            if prev:
                text = carry_forward(prev[-1], text)
            c._summaries[key] = (text, True)
            return text, "model"

    def _trunc(self, text: str, n: int) -> str:
        """Head + tail of `text` within about n tokens."""
        if self.counter.count(text) <= n:
            return text
        h = self.counter.truncate(text, n // 2)
        t = self.counter.truncate(text, n // 2, from_end=True)
        return f"{h}\n[…]\n{t}"

    def _store_prefix_outputs(self, prefix: list[Message]) -> list[tuple[str, str]]:
        """Save (or index) the outputs of the turns being summarised; returns (description, path) of each."""
        idx = _Index(prefix)
        saved: list[tuple[str, str]] = []
        for _mi, _bi, b in idx.results:
            desc = describe_call(idx.name(b.tool_use_id), idx.input(b.tool_use_id), b.meta)
            path = None
            if b.meta.get("full_output_path"):
                path = self.c.store.register(b.tool_use_id, b.meta["full_output_path"], desc)
            elif not _stub_kind(b) and self.counter.count(b.content) >= self.cfg.store_min_tokens:
                path = self.c.store.save(b.tool_use_id, b.content, desc)
            if path:
                saved.append((desc, path))
        return saved

    async def collapse(self, msgs: list[Message], recent_budget: int, *, focus: str | None = None,
                       force: bool = False, stage: str = "collapse", reason: str = "") -> list[Message]:
        before = self.tokens
        ledger_path = self.c._save_ledger()
        ledger_text = self.c.ledger.render(self.counter.count, self.cfg.ledger_budget(self.eff), ledger_path)
        # the recent window gets what is left under the collapse target once the stable prefix (system, tools),
        # the instructions, the summary and the ledger are counted (never less than 5% of the window)
        head_tokens = (self.counter.count(ledger_text) + self.cfg.summary_budget(self.eff) + 80
                       + 40 * self.cfg.summary_recent_outputs)
        if self.c.instructions and self.c.instructions not in self.system:
            head_tokens += self.counter.count(self.c.instructions)
        avail = int(self.cfg.collapse_target * self.eff) - self.acct.calibrated(self.base + head_tokens)
        recent_budget = max(int(0.05 * self.eff), min(recent_budget, avail))
        cut = self._choose_cut(msgs, recent_budget)
        if cut is None:
            return msgs
        prefix, recent = msgs[:cut], msgs[cut:]
        saved = self._store_prefix_outputs(prefix)
        self.c.store.flush()
        summary, how = await self._summary_for(prefix, focus, ledger_text)
        sb = self.cfg.summary_budget(self.eff)
        truncated = self.counter.count(summary) > sb
        if truncated:
            summary = self.counter.truncate(summary, sb)
        text = merge(summary, ledger_text, outputs_index=self.c.store.index_path if self.c.store.entries else None,
                     truncated=truncated, recent_outputs=saved[::-1][:self.cfg.summary_recent_outputs])
        head: list[Any] = []
        if self.c.instructions and self.c.instructions not in self.system:
            head.append(TextBlock(self.c.instructions))
        head.append(SummaryBlock(text))
        out = [Message("user", head)] + recent
        after = self.measure(out)
        if after >= before and not force:
            self.measure(msgs)  # a summary bigger than what it replaces: keep the turns as they are
            return msgs
        n_turns = sum(1 for m in prefix if m.role == "assistant")
        detail = f"{n_turns} earlier turn(s) summarised ({how}) + ledger; kept {len(recent)} recent message(s)"
        if focus:
            detail += f"; focus: {focus}"
        if reason:
            detail = f"{reason}: {detail}"
        self._emit(stage, before, after, detail)
        return out

    # -- stage 5: auto-compact ---------------------------------------------------------------------

    async def auto_compact(self, msgs: list[Message], attempt: int, *, reason: str, focus: str | None = None,
                           force: bool = False) -> list[Message]:
        """Rebuild from instructions + summary + ledger + a recent window that halves with each attempt."""
        if not self.tokens:
            self.measure(msgs)
        recent = int(self.cfg.recent_budget(self.eff) * (0.5 ** (attempt + 1)))
        n_before = len(self.events)
        before = self.tokens
        out = await self.collapse(msgs, recent, focus=focus, stage="auto_compact", reason=reason)
        target = self.target_tokens(self.cfg.collapse_target)
        if self.tokens > target:
            # observations inside the recent window go too, except the last tool turn
            out2 = self.microcompact(out, self.cfg.collapse_target, keep=1 if attempt == 0 else 0,
                                     stage="auto_compact")
            out = out2
        if force and len(self.events) == n_before:
            # nothing could be removed by the usual means: cut every tool result hard, down to the last one
            out = self.microcompact(out, 0.0001, keep=0, stage="auto_compact")
            if len(self.events) == n_before:
                self._emit("auto_compact", before, self.tokens, f"{reason}: nothing left to compact")
        return out

