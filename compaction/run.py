"""The context one pipeline run shares between its stages: the working estimate and the stage events."""

from __future__ import annotations

from typing import Any

from ghostline.compaction.blocks import ToolCallIndex
from ghostline.compaction.config import CompactionConfig, CompactionEvent
from ghostline.compaction.store import OutputStore
from ghostline.compaction.tokens import TokenAccountant
from ghostline.compaction.toolcalls import KindOf
from ghostline.compaction.transcript import Message


class RunContext:
    """One pipeline run over one request (system prompt + tools + transcript).

    `tokens` is the calibrated estimate of the request with the current working transcript; each stage
    re-measures after it changed something and reports a `CompactionEvent` through `emit`."""

    def __init__(self, config: CompactionConfig, accountant: TokenAccountant, store: OutputStore, kind_of: KindOf,
                 system: str, tools: list[dict[str, Any]], stage_counts: dict[str, int]):
        self.cfg = config
        self.acct = accountant
        self.counter = accountant.counter
        self.store = store
        self.kind_of = kind_of
        self.system = system
        self.eff = accountant.effective_window
        self.base = self.counter.count(system) + self.counter.tools_tokens(tools)  # never compacted
        self.events: list[CompactionEvent] = []
        self.tokens = 0
        self._stage_counts = stage_counts

    def measure(self, msgs: list[Message]) -> int:
        raw = self.base + self.counter.messages_tokens(msgs)
        self.acct.last_raw_estimate = raw
        self.tokens = self.acct.calibrated(raw)
        return self.tokens

    def fill(self) -> float:
        return self.tokens / self.eff

    def target_tokens(self, frac: float) -> int:
        return int(frac * self.eff)

    def index(self, msgs: list[Message]) -> ToolCallIndex:
        return ToolCallIndex(msgs, self.kind_of)

    def emit(self, stage: str, before: int, after: int, detail: str) -> None:
        self.events.append(CompactionEvent(stage, before, after, detail))
        self._stage_counts[stage] = self._stage_counts.get(stage, 0) + 1

    def trunc(self, text: str, n: int) -> str:
        """Head + tail of `text` within about n tokens."""
        if self.counter.count(text) <= n:
            return text
        h = self.counter.truncate(text, n // 2)
        t = self.counter.truncate(text, n // 2, from_end=True)
        return f"{h}\n[…]\n{t}"
