"""The status line: model, sandbox, approval mode, context fill, cost and turns, in one line that fits the width.

Parts have priorities: when the terminal is narrow the least useful go first (never the model or the context
fill), and what is left is shortened before anything wraps.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static


@dataclass
class StatusInfo:
    model: str = ""
    sandbox: str = ""
    level: str = ""
    approval: str = ""
    context_tokens: int | None = None
    context_window: int | None = None
    cost_usd: float | None = None
    turns: int = 0
    session: str = ""

    @property
    def context_fraction(self) -> float | None:
        if self.context_tokens is None or not self.context_window:
            return None
        return self.context_tokens / self.context_window


def tokens(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 10_000:
        return f"{n / 1000:.0f}k"
    if n >= 1000:
        return f"{n / 1000:.1f}k"
    return str(n)


def _context_part(info: StatusInfo) -> tuple[str, str]:
    frac = info.context_fraction
    if frac is None:
        return "ctx —", "dim"
    style = "red" if frac >= 0.85 else "yellow" if frac >= 0.6 else "green"
    return f"ctx {tokens(info.context_tokens or 0)}/{tokens(info.context_window or 0)} ({frac:.0%})", style


def _parts(info: StatusInfo) -> list[tuple[int, str, str]]:
    """(priority: lower is kept longer, text, style) in display order."""
    sandbox = f"{info.sandbox}/{info.level}" if info.level and info.level != info.sandbox else info.sandbox
    ctx, ctx_style = _context_part(info)
    parts = [
        (0, info.model, "bold"),
        (1, ctx, ctx_style),
        (2, f"approval {info.approval}", "cyan" if info.approval != "auto" else "magenta"),
        (4, sandbox, ""),
        (3, f"${info.cost_usd:.4f}" if info.cost_usd is not None else "", ""),
        (5, f"{info.turns} turn{'s' * (info.turns != 1)}", "dim"),
        (6, info.session, "dim"),
    ]
    return [p for p in parts if p[1]]


def status_text(info: StatusInfo, width: int) -> Text:
    """One line, at most `width` cells: drop the least important parts until it fits, then cut the model name."""
    parts = _parts(info)
    sep = " · "
    while len(parts) > 2 and sum(len(t) for _, t, _ in parts) + len(sep) * (len(parts) - 1) > width:
        parts.remove(max(parts, key=lambda p: p[0]))
    line = Text(no_wrap=True, overflow="ellipsis")
    for i, (_, text, style) in enumerate(parts):
        if i:
            line.append(sep, "dim")
        line.append(text, style)
    line.truncate(max(width, 1), overflow="ellipsis")
    return line


STARTING = "starting · type away: what you send goes when the session is ready"
READY = "ready · /help for commands · Shift+Tab: approval mode"


def footer_text(ready: bool, job: str) -> Text:
    """The footer: the running job ("working 3s · Esc interrupts"), else whether the session is ready."""
    return Text(job if ready and job else READY if ready else STARTING, no_wrap=True, overflow="ellipsis")


def waiting_hint(pending: int, queued: int) -> str:
    """What the input box's border says about messages not sent yet ("" when none wait)."""
    n = pending or queued
    if not n:
        return ""
    s = "s" * (n != 1)
    return (f"{n} message{s} waiting · sent when the session is ready" if pending
            else f"{n} message{s} queued · sent when the turn ends")


class OneLine(Static):
    """A one-row line that repaints only when what it says changed (timers refresh it every second), and never
    asks for a layout: its size cannot change."""

    def __init__(self, **kw: object) -> None:
        super().__init__("", **kw)  # type: ignore[arg-type]
        self._shown: Text | None = None

    def show(self, text: Text) -> None:
        if text != self._shown:
            self._shown = text
            self.update(text, layout=False)
