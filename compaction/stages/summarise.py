"""The summary of a collapsed prefix: asked of the model when the caller gave a summariser, else written from the
ledger; cached per prefix, so the same input gives the same output."""

from __future__ import annotations

from typing import Awaitable, Callable

from ghostline.compaction.blocks import fingerprint
from ghostline.compaction.config import CompactionConfig
from ghostline.compaction.errors import CompactionFailed, ContextOverflow
from ghostline.compaction.ledger import Ledger
from ghostline.compaction.run import RunContext
from ghostline.compaction.summary import build_prompt, carry_forward, fallback_summary, transcript_items
from ghostline.compaction.transcript import Message, SummaryBlock

Summarizer = Callable[[list[Message]], Awaitable[str]]
PREVIOUS_SUMMARY = "[previous summary]"


class SummaryWriter:
    """Writes collapse summaries. A summary request that overflows (a `ContextOverflow`, or what `is_overflow`
    accepts) is retried with the oldest items dropped; after `max_summary_attempts` it raises CompactionFailed.
    Any other summariser error, or an empty answer, falls back to the deterministic summary."""

    def __init__(self, config: CompactionConfig, ledger: Ledger, summarize: Summarizer | None,
                 is_overflow: Callable[[BaseException], bool] | None):
        self.cfg = config
        self.ledger = ledger
        self.summarize = summarize
        self.is_overflow = is_overflow
        self.cache: dict[int, tuple[str, bool]] = {}  # prefix fingerprint -> (summary text, model-written)
        self.calls = 0
        self.prompt_tokens = 0

    async def summary_for(self, run: RunContext, prefix: list[Message], focus: str | None,
                          ledger_text: str) -> tuple[str, str]:
        """(summary text, how it was written) for the collapsed part."""
        key = hash((fingerprint(prefix), focus or ""))
        cached = self.cache.get(key)
        if cached is not None:
            return cached[0], "cached"
        if self.summarize is None:
            return self._remember(key, fallback_summary(self.ledger, prefix, run.trunc), False), "deterministic"
        text, failure = await self._ask(run, prefix, focus, ledger_text)
        text = (text or "").strip()
        if not text:
            fallback = fallback_summary(self.ledger, prefix, run.trunc)
            return self._remember(key, fallback, False), f"deterministic ({failure or 'empty summary'})"
        previous = [b.text for m in prefix for b in m.content if isinstance(b, SummaryBlock)]
        if previous:
            text = carry_forward(previous[-1], text)
        return self._remember(key, text, True), "model"

    def _remember(self, key: int, text: str, by_model: bool) -> str:
        self.cache[key] = (text, by_model)
        return text

    async def _ask(self, run: RunContext, prefix: list[Message], focus: str | None,
                   ledger_text: str) -> tuple[str | None, str]:
        """The model's answer, or (None, why) when the summariser failed for a reason other than an overflow."""
        assert self.summarize is not None
        items = transcript_items(prefix, run.trunc, self.cfg.summary_item_tokens)
        # items that are previous summaries are never dropped; otherwise the oldest go until the prompt fits
        fixed = [it for it in items if it.startswith(PREVIOUS_SUMMARY)]
        rest = [it for it in items if not it.startswith(PREVIOUS_SUMMARY)]

        def prompt_for(rest_items: list[str]) -> list[Message]:
            return build_prompt(fixed + rest_items, focus=focus, ledger_text=ledger_text)

        budget = self._prompt_budget(run)
        while rest and run.counter.messages_tokens(prompt_for(rest)) > budget:
            rest = rest[max(1, len(rest) // 8):]
        failures = 0
        while True:
            prompt = prompt_for(rest)
            self.calls += 1
            self.prompt_tokens += run.counter.messages_tokens(prompt)
            try:
                return await self.summarize(prompt), ""
            except Exception as exc:  # noqa: BLE001 - the summariser is the caller's code
                if not self._overflowed(exc):
                    return None, f"summariser failed: {type(exc).__name__}"
                failures += 1
                if failures >= self.cfg.max_summary_attempts:
                    raise CompactionFailed(
                        f"the summary request overflowed the context window {failures} times ({exc}); "
                        f"start a new session or use a model with a larger window") from exc
                rest = rest[max(1, len(rest) // 3):] if rest else rest

    def _prompt_budget(self, run: RunContext) -> int:
        """Raw tokens the summary request may use: it must fit the window with the summariser's output reserved."""
        window = run.acct.window
        fits = window - min(self.cfg.summary_output_tokens, window // 4) - 256
        return int(min(self.cfg.summary_prompt_fraction * run.eff, fits) / run.acct.factor)

    def _overflowed(self, exc: BaseException) -> bool:
        if self.is_overflow is not None and self.is_overflow(exc):
            return True
        return isinstance(exc, ContextOverflow)
