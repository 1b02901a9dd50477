"""Compaction settings (thresholds are fractions of the effective window) and the event each stage reports."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


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
