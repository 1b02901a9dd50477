"""Stage 4, collapse (above `collapse_at`, or when microcompact cannot get back under `micro_at`): everything
before the recent window becomes one summary message — the summary merged with the deterministic ledger (the
source of truth for facts) and where the full outputs are. The recent window is what fits under
`collapse_target`; instructions that are not part of the system prompt are re-injected at the head."""

from __future__ import annotations

from typing import Any, Callable

from ghostline.compaction.blocks import stub_kind
from ghostline.compaction.ledger import Ledger
from ghostline.compaction.run import RunContext
from ghostline.compaction.stages.summarise import SummaryWriter
from ghostline.compaction.summary import merge
from ghostline.compaction.toolcalls import describe_call
from ghostline.compaction.transcript import Message, SummaryBlock, TextBlock

HEAD_OVERHEAD = 80  # tokens of the summary message's own text
OUTPUT_LINE_TOKENS = 40  # tokens of one "latest summarised outputs" line


class Collapser:
    def __init__(self, ledger: Ledger, save_ledger: Callable[[], str | None], instructions: str,
                 summaries: SummaryWriter):
        self.ledger = ledger
        self.save_ledger = save_ledger
        self.instructions = instructions
        self.summaries = summaries

    async def collapse(self, run: RunContext, msgs: list[Message], recent_budget: int, *, focus: str | None = None,
                       force: bool = False, stage: str = "collapse", reason: str = "") -> list[Message]:
        before = run.tokens
        ledger_text = self.ledger.render(run.counter.count, run.cfg.ledger_budget(run.eff), self.save_ledger())
        cut = self.choose_cut(run, msgs, self._recent_budget(run, ledger_text, recent_budget, asked=force))
        if cut is None:
            return msgs
        prefix, recent = msgs[:cut], msgs[cut:]
        saved = _store_outputs(run, prefix)
        run.store.flush()
        summary, how = await self.summaries.summary_for(run, prefix, focus, ledger_text)
        out = [self._summary_message(run, summary, ledger_text, saved)] + recent
        after = run.measure(out)
        if after >= before and not force:
            run.measure(msgs)  # a summary bigger than what it replaces: keep the turns as they are
            return msgs
        n_turns = sum(1 for m in prefix if m.role == "assistant")
        detail = f"{n_turns} earlier turn(s) summarised ({how}) + ledger; kept {len(recent)} recent message(s)"
        if focus:
            detail += f"; focus: {focus}"
        if reason:
            detail = f"{reason}: {detail}"
        run.emit(stage, before, after, detail)
        return out

    def _reinjects(self, run: RunContext) -> bool:
        return bool(self.instructions) and self.instructions not in run.system

    def _recent_budget(self, run: RunContext, ledger_text: str, wanted: int, *, asked: bool = False) -> int:
        """The recent window gets what is left under the collapse target once the stable prefix (system, tools),
        the instructions, the summary and the ledger are counted (never less than 5% of the window, unless the
        user asked for the compaction: then `wanted` is what they get)."""
        cfg = run.cfg
        head_tokens = (run.counter.count(ledger_text) + cfg.summary_budget(run.eff) + HEAD_OVERHEAD
                       + OUTPUT_LINE_TOKENS * cfg.summary_recent_outputs)
        if self._reinjects(run):
            head_tokens += run.counter.count(self.instructions)
        avail = int(cfg.collapse_target * run.eff) - run.acct.calibrated(run.base + head_tokens)
        return min(wanted, avail) if asked else max(int(0.05 * run.eff), min(wanted, avail))

    def choose_cut(self, run: RunContext, msgs: list[Message], recent_budget: int) -> int | None:
        """Index of the first message kept verbatim: an assistant message, with the tail within budget when
        possible; always keeps the last assistant message and what follows it."""
        candidates = [i for i, m in enumerate(msgs) if m.role == "assistant" and i >= 1]
        if not candidates:
            return None
        suffix = [0] * (len(msgs) + 1)
        for i in range(len(msgs) - 1, -1, -1):
            suffix[i] = suffix[i + 1] + run.counter.message_tokens(msgs[i])
        cut = candidates[-1]
        for i in reversed(candidates):
            if int(suffix[i] * run.acct.factor) <= recent_budget:
                cut = i
            else:
                break
        prefix = msgs[:cut]
        if all(isinstance(b, SummaryBlock) or self._is_instructions(b) for m in prefix for b in m.content):
            return None  # only an earlier summary before the cut: nothing to collapse
        return cut

    def _is_instructions(self, b: Any) -> bool:
        return bool(self.instructions) and isinstance(b, TextBlock) and b.text.strip() == self.instructions

    def _summary_message(self, run: RunContext, summary: str, ledger_text: str,
                         saved: list[tuple[str, str]]) -> Message:
        budget = run.cfg.summary_budget(run.eff)
        truncated = run.counter.count(summary) > budget
        if truncated:
            summary = run.counter.truncate(summary, budget)
        text = merge(summary, ledger_text, outputs_index=run.store.index_path if run.store.entries else None,
                     truncated=truncated, recent_outputs=saved[::-1][:run.cfg.summary_recent_outputs])
        head: list[Any] = [TextBlock(self.instructions)] if self._reinjects(run) else []
        head.append(SummaryBlock(text))
        return Message("user", head)


def _store_outputs(run: RunContext, prefix: list[Message]) -> list[tuple[str, str]]:
    """Save (or index) the outputs of the turns being summarised; returns (description, path) of each."""
    idx = run.index(prefix)
    saved: list[tuple[str, str]] = []
    for _mi, _bi, b in idx.results:
        desc = describe_call(idx.name(b.tool_use_id), idx.input(b.tool_use_id), b.meta)
        path = None
        if b.meta.get("full_output_path"):
            path = run.store.register(b.tool_use_id, b.meta["full_output_path"], desc)
        elif not stub_kind(b) and run.counter.count(b.content) >= run.cfg.store_min_tokens:
            path = run.store.save(b.tool_use_id, b.content, desc)
        if path:
            saved.append((desc, path))
    return saved
