"""The conversation's entries: plain lines and one row per tool call (the assistant's text is answer.py's).

A tool row is one line (status icon, the tool's title, a summary, the duration) that expands to the output or the
diff. While a command runs the row shows its elapsed time and the last lines of its output as they arrive.
"""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.containers import Vertical
from textual.widgets import Static

from ghostline.agent.tui.status import OneLine

MAX_OUTPUT_CHARS = 20_000
MAX_OUTPUT_LINES = 300
LIVE_TAIL_LINES = 6
LIVE_TAIL_CHARS = 8_000

ICON = {"running": "⋯", "ok": "✓", "error": "✗", "denied": "⊘", "interrupted": "■"}


def clip_output(text: str) -> str:
    """Keep the head of a long output (the full output stays in the session)."""
    lines = text.splitlines()
    cut = False
    if len(lines) > MAX_OUTPUT_LINES:
        lines, cut = lines[:MAX_OUTPUT_LINES], True
    out = "\n".join(lines)
    if len(out) > MAX_OUTPUT_CHARS:
        out, cut = out[:MAX_OUTPUT_CHARS], True
    return out + ("\n… (output clipped here; the full output is in the session)" if cut else "")


def seconds(ms: float) -> str:
    s = ms / 1000
    if s < 10:
        return f"{s:.1f}s"
    if s < 60:
        return f"{s:.0f}s"
    return f"{int(s // 60)}m{int(s % 60):02d}s"


class Line(Static):
    """One plain-text entry of the conversation (never parsed as markup)."""

    DEFAULT_CSS = """
    Line { width: 100%; padding: 0 1; }
    Line.user { color: $text; background: $boost; margin-top: 1; text-style: bold; }
    Line.queued { color: $text-muted; background: $boost; text-style: italic; }
    Line.notice { color: $text-muted; }
    Line.error { color: $error; }
    Line.warning { color: $warning; }
    Line.help { color: $text; padding: 0 2; }
    """

    def __init__(self, text: str, kind: str = "notice") -> None:
        super().__init__(Text(text), classes=kind)
        self.kind = kind
        self.plain = text

    def scrollback(self) -> Text:
        """The entry as printed in the terminal's scrollback after the TUI closes."""
        return Text(self.plain, style={"user": "bold", "error": "red", "warning": "yellow"}.get(self.kind, "dim"))


def _status_of(is_error: bool, meta: dict[str, Any]) -> str:
    if meta.get("denied"):
        return "denied"
    if meta.get("interrupted"):
        return "interrupted"
    code = meta.get("exit_code")
    if is_error or (isinstance(code, int) and code != 0):
        return "error"
    return "ok"


def _summary(status: str, content: str, meta: dict[str, Any]) -> str:
    if status in ("denied", "error") and "exit_code" not in meta:
        return (content.strip().splitlines() or [status])[0]
    if meta.get("timed_out"):
        return "timed out"
    if "exit_code" in meta:
        return f"exit {meta['exit_code']}"
    if meta.get("diff"):
        diff = str(meta["diff"]).splitlines()
        add = sum(1 for x in diff if x.startswith("+") and not x.startswith("+++"))
        rem = sum(1 for x in diff if x.startswith("-") and not x.startswith("---"))
        return f"+{add} −{rem}"
    n = len(content.splitlines())
    return f"{n} line{'s' if n != 1 else ''}"


class ToolRow(Vertical):
    """One tool call (or `!command`). Click its line, or Ctrl+O for the latest, to show or hide the output."""

    DEFAULT_CSS = """
    ToolRow { height: auto; margin: 0 0 0 1; }
    ToolRow > .head { height: 1; }
    ToolRow > .tail { color: $text-muted; padding: 0 0 0 3; height: auto; }
    ToolRow > .body { color: $text-muted; padding: 0 0 0 3; height: auto; display: none; }
    ToolRow.expanded > .body { display: block; }
    ToolRow.running > .head { color: $accent; }
    ToolRow.ok > .head { color: $text-muted; }
    ToolRow.error > .head { color: $error; }
    ToolRow.denied > .head { color: $warning; }
    ToolRow.interrupted > .head { color: $warning; }
    """

    def __init__(self, call_id: str, title: str) -> None:
        super().__init__(classes="running")
        self.call_id = call_id
        self.title = title
        self.status = "running"
        self.summary = ""
        self.output = ""
        self.diff = ""
        self.started = time.monotonic()
        self.duration_ms: float | None = None
        self._live = ""
        self._ticker: Any = None
        self._head = OneLine(classes="head")
        self._tail = Static("", classes="tail")
        self._body = Static("", classes="body")

    def compose(self):  # type: ignore[override]
        yield self._head
        yield self._tail
        yield self._body

    def on_mount(self) -> None:
        self._render_head()
        if self.status == "running":  # the elapsed time, while it runs
            self._ticker = self.set_interval(1.0, self._render_head)

    def headline(self) -> str:
        elapsed = self.duration_ms if self.duration_ms is not None else (time.monotonic() - self.started) * 1000
        line = f"{ICON[self.status]} {self.title}"
        if self.summary:
            line += f"  — {self.summary}"
        if self.summary != "waiting for your answer" and (self.status != "running" or elapsed >= 1000):
            line += f"  ({seconds(elapsed)})"
        return line

    def _render_head(self) -> None:
        self._head.show(Text(self.headline(), no_wrap=True, overflow="ellipsis"))

    def awaiting_approval(self) -> None:
        self.summary = "waiting for your answer"
        self._render_head()

    def restart_clock(self) -> None:
        self.started = time.monotonic()
        self.summary = ""
        self._render_head()

    def add_output(self, text: str) -> None:
        """Live output while running: keep the last lines under the head."""
        self._live = (self._live + text)[-LIVE_TAIL_CHARS:]
        tail = "\n".join(self._live.rstrip("\n").splitlines()[-LIVE_TAIL_LINES:])
        self._tail.update(Text(tail))

    def set_result(self, content: str, is_error: bool, meta: dict[str, Any], diff: str = "") -> None:
        self.output, self.diff = content, diff or str(meta.get("diff") or "")
        if isinstance(meta.get("duration_ms"), (int, float)):
            self.duration_ms = float(meta["duration_ms"])
        status = _status_of(is_error, meta)
        self.set_status(status, _summary(status, content, meta))
        if self.diff:
            from rich.syntax import Syntax  # pygments: ~15 ms that the first paint need not wait for

            self._body.update(Syntax(clip_output(self.diff), "diff", theme="ansi_dark", word_wrap=True))
        else:
            self._body.update(Text(clip_output(content) or "(no output)"))

    def set_status(self, status: str, summary: str = "") -> None:
        if status != "running" and self.duration_ms is None:
            self.duration_ms = (time.monotonic() - self.started) * 1000
        if status != "running":
            self._tail.display = False
            if self._ticker is not None:
                self._ticker.stop()
        self.remove_class(self.status)
        self.status = status
        self.add_class(status)
        self.summary = summary[:160]
        self._render_head()

    def toggle(self) -> None:
        self.toggle_class("expanded")

    @property
    def expanded(self) -> bool:
        return self.has_class("expanded")

    def on_click(self) -> None:
        self.toggle()

    def scrollback(self) -> Text:
        """The row as printed in the terminal's scrollback after the TUI closes."""
        return Text(f"  {self.headline()}", style="red" if self.status == "error" else "dim")
