"""The five-stage compaction pipeline, run before every model call (cheapest stage first).

Public API (all the loop needs)::

    c = Compactor(CompactionConfig(), window=200_000, reserved_output=8192, store_dir=session_dir,
                  summarize=async_fn, instructions=agent_md_text, provider="anthropic",
                  kind_of=registry_kind_lookup)
    messages, events = await c.prepare(system, tools, messages)          # before each model call
    messages, events = await c.on_context_error(system, tools, messages, limit)  # provider said: too long
    messages, events = await c.compact_now(system, tools, messages, focus)       # /compact [focus]
    c.observe(event_dict)            # every loop event (keeps the ledger)
    c.record_usage(reported_input_tokens, estimated=None)  # calibrates the estimate after each call

`events` are `CompactionEvent(stage, tokens_before, tokens_after, detail)`; stages are ``budget``, ``snip``,
``microcompact``, ``collapse`` and ``auto_compact``. `tools` are plain dicts (name, description, input_schema).
`summarize(prompt_messages) -> str` is an async callable that asks the model; a `ContextOverflow` (or an
exception that `is_overflow` accepts) means the summary prompt was too long: the oldest items are dropped and it
retries; after `max_summary_attempts` failures `CompactionFailed` is raised. Without a summariser, collapse
writes a deterministic summary from the ledger. `kind_of(tool_name)` gives a tool's kind (``read``, ``edit``,
``shell`` or ``other``; see `compaction.toolcalls` for the kinds and the result meta compaction reads); without
it every tool is ``other``, so nothing is treated as a file read or a command.

Stages (each in `compaction.stages`; thresholds are fractions of the effective window = window − reserved output):

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
from pathlib import Path
from typing import Any, Callable

from ghostline.compaction.config import CompactionConfig, CompactionEvent
from ghostline.compaction.errors import CompactionFailed
from ghostline.compaction.ledger import Ledger
from ghostline.compaction.run import RunContext
from ghostline.compaction.stages.auto_compact import auto_compact
from ghostline.compaction.stages.budget import budget
from ghostline.compaction.stages.collapse import Collapser
from ghostline.compaction.stages.microcompact import microcompact
from ghostline.compaction.stages.snip import snip
from ghostline.compaction.stages.summarise import Summarizer, SummaryWriter
from ghostline.compaction.store import OutputStore
from ghostline.compaction.tokens import ByteBound, TokenAccountant, TokenCounter
from ghostline.compaction.toolcalls import KindOf, every_tool_other
from ghostline.compaction.transcript import Message, ToolResultBlock

LEDGER_FILE = "ledger.json"
MAX_PROACTIVE_ATTEMPTS = 3  # auto-compact attempts above the hard threshold, each keeping less

Result = tuple[list[Message], list[CompactionEvent]]


# The verbatim tail a /compact keeps (tokens); the rest becomes the summary.
FORCED_RECENT_TOKENS = 4000


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
        kind_of: KindOf | None = None,
    ):
        self.config = config or CompactionConfig()
        self.accountant = TokenAccountant(window, reserved_output, provider=provider, counter=counter)
        self.counter = self.accountant.counter
        self.store = OutputStore(store_dir)
        self.instructions = instructions.strip()
        self.kind_of: KindOf = kind_of or every_tool_other
        self.ledger = self._load_ledger() or Ledger(ignore_texts=[self.instructions] if self.instructions else [],
                                                    kind_of=self.kind_of)
        self._summaries = SummaryWriter(self.config, self.ledger, summarize, is_overflow)
        self._collapser = Collapser(self.ledger, self._save_ledger, self.instructions, self._summaries)
        self._context_failures = 0
        self.stage_counts: dict[str, int] = {}
        self.last_tokens = 0
        self._bytes = ByteBound()  # the size bound that spares waiting for the encoding (`_surely_below`)

    # -- public API ----------------------------------------------------------------------------------------

    @property
    def window(self) -> int:
        return self.accountant.window

    @property
    def effective_window(self) -> int:
        return self.accountant.effective_window

    @property
    def summarize(self) -> Summarizer | None:
        return self._summaries.summarize

    @property
    def summary_calls(self) -> int:
        return self._summaries.calls

    @property
    def summary_prompt_tokens(self) -> int:
        return self._summaries.prompt_tokens

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

    def summary_due(self, system: str, tools: list[dict[str, Any]], messages: list[Message]) -> bool:
        """Whether `prepare` may summarise now: the request is past the collapse threshold before the cheap stages
        run (they may still avoid it). For callers that announce a compaction first (PreCompact hooks)."""
        if not self.config.enabled:
            return False
        return self.estimate(system, tools, messages) > self.config.collapse_at * self.effective_window

    async def prepare(self, system: str, tools: list[dict[str, Any]], messages: list[Message]) -> Result:
        """Stages 1-4 as needed, then stage 5 if still above the hard threshold. Returns the messages to send
        (the same list object when nothing changed) and one event per stage that changed something."""
        self.ledger.ingest(messages)
        if self.config.enabled and not self.counter.ready and self._surely_below(system, tools, messages):
            # Not counted: nothing to calibrate with. The encoding loads (~0.07 s) once a request is big enough
            # for a stage to matter; a run that stays small never loads it.
            self.accountant.last_raw_estimate = 0
            return messages, []
        if not self.config.enabled:
            self.last_tokens = self.estimate(system, tools, messages)
            return messages, []
        run = self._run(system, tools)
        msgs = budget(run, messages)
        cfg = self.config
        if run.fill() > cfg.snip_at:
            msgs = snip(run, msgs, cfg.snip_target)
        micro_exhausted = False
        if run.fill() > cfg.micro_at:
            msgs = microcompact(run, msgs, cfg.micro_target)
            # stubs pile up: when clearing cannot even get back under micro_at, clearing one result per turn
            # would break the prompt cache every turn; collapse instead (cheapest stage that still works)
            micro_exhausted = run.fill() > cfg.micro_at
        if run.fill() > cfg.collapse_at or micro_exhausted:
            msgs = await self._collapser.collapse(
                run, msgs, cfg.recent_budget(self.effective_window),
                reason="" if run.fill() > cfg.collapse_at else "microcompact could not get under its threshold")
        for attempt in range(MAX_PROACTIVE_ATTEMPTS):  # each attempt keeps less; bounded, never loops
            if run.fill() <= cfg.hard_at:
                break
            msgs = await auto_compact(run, self._collapser, msgs, attempt, reason="above the hard threshold")
        return self._finish(run, messages, msgs)

    async def on_context_error(self, system: str, tools: list[dict[str, Any]], messages: list[Message],
                               limit: int | None = None) -> Result:
        """Stage 5, reactive: the provider rejected the request as too long. Adopts a revealed smaller window,
        rebuilds with a recent window that halves on each consecutive error; raises CompactionFailed after
        `max_context_retries` consecutive errors."""
        self.ledger.ingest(messages)
        self._context_failures += 1
        if self._context_failures > self.config.max_context_retries:
            raise CompactionFailed(
                f"the conversation still does not fit the context window after {self.config.max_context_retries} "
                f"compactions; start a new session (the ledger is at {self._ledger_path() or 'n/a'})")
        detail = self._learn_window(system, tools, messages, limit)
        run = self._run(system, tools)
        msgs = budget(run, messages)
        msgs = await auto_compact(run, self._collapser, msgs, self._context_failures - 1,
                                  reason="context-length error" + (f" ({detail})" if detail else ""), force=True)
        return self._finish(run, messages, msgs)

    async def compact_now(self, system: str, tools: list[dict[str, Any]], messages: list[Message],
                          focus: str | None = None) -> Result:
        """/compact [focus]: collapse now (stage 4), then stage 5 if still above the hard threshold."""
        self.ledger.ingest(messages)
        run = self._run(system, tools)
        msgs = budget(run, messages)
        # Asked for, compaction summarises all but the last exchanges, however large the window: with a 1M-token
        # model the automatic recent window would hold the whole conversation and nothing would shrink.
        recent = min(self.config.recent_budget(self.effective_window), FORCED_RECENT_TOKENS)
        msgs = await self._collapser.collapse(run, msgs, recent, focus=focus, force=True)
        if run.fill() > self.config.hard_at:
            msgs = await auto_compact(run, self._collapser, msgs, 0, reason="above the hard threshold", focus=focus)
        return self._finish(run, messages, msgs)

    # -- internals ---------------------------------------------------------------------------------------

    def _surely_below(self, system: str, tools: list[dict[str, Any]], messages: list[Message]) -> bool:
        """Whether no stage could act on this request, told from its size in bytes (which no token count
        exceeds): then the first request does not wait for the encoding to load."""
        cfg, eff, bound = self.config, self.effective_window, self._bytes
        lowest = min(cfg.snip_at, cfg.micro_at, cfg.collapse_at, cfg.hard_at)
        if self.accountant.calibrated(bound.request_tokens(system, tools, messages)) > lowest * eff:
            return False
        cap, turn_cap = cfg.result_cap(eff), cfg.turn_cap(eff)
        for m in messages:
            sizes = [bound.count(b.content) for b in m.content if isinstance(b, ToolResultBlock)]
            if sizes and (max(sizes) > cap or sum(sizes) > turn_cap):
                return False
        return True

    def _run(self, system: str, tools: list[dict[str, Any]]) -> RunContext:
        return RunContext(self.config, self.accountant, self.store, self.kind_of, system, tools, self.stage_counts)

    def _finish(self, run: RunContext, original: list[Message], msgs: list[Message]) -> Result:
        self.store.flush()
        self.last_tokens = run.tokens
        if not run.events:
            return original, []
        return msgs, run.events

    def _learn_window(self, system: str, tools: list[dict[str, Any]], messages: list[Message],
                      limit: int | None) -> str:
        """Adopt the smaller window a context-length error revealed (or implies); says what it adopted."""
        est_before = self.accountant.estimate(system, tools, messages)
        if limit:
            return f"adopted window {limit}" if self.accountant.adopt_window(limit) else ""
        if est_before <= self.effective_window:
            # Our estimate said it fits; the provider disagrees: the real window must be smaller than we think.
            inferred = int((est_before + self.accountant.reserved_output) * 0.9)
            if self.accountant.adopt_window(inferred):
                return f"inferred window {inferred}"
        return ""

    def _ledger_path(self) -> str | None:
        return str(self.store.root / LEDGER_FILE) if self.store.root is not None else None

    def _load_ledger(self) -> Ledger | None:
        """The ledger a previous Compactor saved on the same directory (a resumed session), if readable."""
        p = self._ledger_path()
        if not p or not Path(p).exists():
            return None
        try:
            ledger = Ledger.from_dict(json.loads(Path(p).read_text(encoding="utf-8")), kind_of=self.kind_of)
        except (ValueError, TypeError, OSError):
            return None
        if self.instructions and self.instructions not in ledger.ignore_texts:
            ledger.ignore_texts.append(self.instructions)
        return ledger

    def _save_ledger(self) -> str | None:
        try:
            return self.store.write_text(LEDGER_FILE, self.ledger.to_json())
        except OSError:
            return None
