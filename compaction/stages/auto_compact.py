"""Stage 5, auto-compact: on a context-length error or above `hard_at`, rebuild from instructions + summary +
ledger + a recent window that halves with each attempt; bounded, never loops."""

from __future__ import annotations

from ghostline.compaction.run import RunContext
from ghostline.compaction.stages.collapse import Collapser
from ghostline.compaction.stages.microcompact import microcompact
from ghostline.compaction.transcript import Message

STAGE = "auto_compact"


async def auto_compact(run: RunContext, collapser: Collapser, msgs: list[Message], attempt: int, *, reason: str,
                       focus: str | None = None, force: bool = False) -> list[Message]:
    if not run.tokens:
        run.measure(msgs)
    recent = int(run.cfg.recent_budget(run.eff) * (0.5 ** (attempt + 1)))
    n_before = len(run.events)
    before = run.tokens
    out = await collapser.collapse(run, msgs, recent, focus=focus, stage=STAGE, reason=reason)
    if run.tokens > run.target_tokens(run.cfg.collapse_target):
        # observations inside the recent window go too, except the last tool turn
        out = microcompact(run, out, run.cfg.collapse_target, keep=1 if attempt == 0 else 0, stage=STAGE)
    if force and len(run.events) == n_before:
        # nothing could be removed by the usual means: cut every tool result hard, down to the last one
        out = microcompact(run, out, 0.0001, keep=0, stage=STAGE)
        if len(run.events) == n_before:
            run.emit(STAGE, before, run.tokens, f"{reason}: nothing left to compact")
    return out
