"""The TUI's widgets: header/footer lines, conversation entries (user, assistant, tool calls, notices), input."""

from __future__ import annotations

from typing import Any

from rich.syntax import Syntax
from rich.text import Text
from textual import events
from textual.content import Content
from textual.message import Message
from textual.widgets import Collapsible, Markdown, Static, TextArea

MAX_OUTPUT_CHARS = 20_000
MAX_OUTPUT_LINES = 300


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


class Line(Static):
    """One plain-text entry of the conversation (never parsed as markup)."""

    DEFAULT_CSS = """
    Line { width: 100%; padding: 0 1; }
    Line.user { color: $text; background: $boost; margin-top: 1; text-style: bold; }
    Line.notice { color: $text-muted; }
    Line.error { color: $error; }
    Line.warning { color: $warning; }
    Line.help { color: $text; padding: 0 2; }
    """

    def __init__(self, text: str, kind: str = "notice") -> None:
        super().__init__(Text(text), classes=kind)
        self.kind = kind
        self.plain = text


class AssistantView(Markdown):
    """Assistant text, streamed: deltas are appended through Textual's MarkdownStream, which batches them
    while a render is in progress, so a long answer is not re-parsed from the start on every delta."""

    DEFAULT_CSS = """
    AssistantView { margin: 0 0 0 1; padding: 0 1; background: transparent; }
    """

    def __init__(self) -> None:
        super().__init__("")
        self.text = ""
        self.deltas = 0
        self._stream: Any = None

    async def add(self, delta: str) -> None:
        self.text += delta
        self.deltas += 1
        if self._stream is None:
            self._stream = Markdown.get_stream(self)
        await self._stream.write(delta)

    async def finish(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await stream.stop()


STATUS_ICON = {"running": "…", "ok": "✓", "error": "✗", "denied": "⊘", "interrupted": "■"}


class ToolCallView(Collapsible):
    """One line per tool call with its status; expands to the output (and the diff of an edit)."""

    DEFAULT_CSS = """
    ToolCallView { border: none; padding: 0; margin: 0 0 0 1; background: transparent; }
    ToolCallView > Contents { padding: 0 0 0 3; }
    ToolCallView.error CollapsibleTitle, ToolCallView.denied CollapsibleTitle { color: $error; }
    ToolCallView.ok CollapsibleTitle { color: $text-muted; }
    ToolCallView.running CollapsibleTitle { color: $accent; }
    ToolCallView .output { color: $text-muted; }
    """

    def __init__(self, call_id: str, name: str, args: dict[str, Any], title: str = "") -> None:
        self.call_id = call_id
        self.tool_name = name
        self.args = args
        self.call_title = title or name
        self.status = "running"
        self.summary = ""
        self.output = ""
        self.diff = ""
        self._body = Static("", classes="output")
        super().__init__(self._body, title="", collapsed=True)
        self.add_class("running")
        self._retitle()

    def headline(self) -> str:
        line = f"{STATUS_ICON[self.status]} {self.call_title}"
        return f"{line}  — {self.summary}" if self.summary else line

    def _retitle(self) -> None:
        self.title = Content(self.headline())  # Content: never parsed as markup

    def set_result(self, content: str, is_error: bool, meta: dict[str, Any], diff: str = "") -> None:
        self.output, self.diff = content, diff or str(meta.get("diff") or "")
        if meta.get("denied"):
            status, summary = "denied", content.splitlines()[0] if content else "denied"
        elif meta.get("interrupted"):
            status, summary = "interrupted", "interrupted"
        elif is_error:
            status, summary = "error", (content.strip().splitlines() or ["error"])[0]
        else:
            status, summary = "ok", _summary(self.tool_name, content, meta)
        self.set_status(status, summary)
        if self.diff:
            self._body.update(Syntax(clip_output(self.diff), "diff", theme="ansi_dark", word_wrap=True))
        else:
            self._body.update(Text(clip_output(content) or "(no output)"))

    def set_status(self, status: str, summary: str = "") -> None:
        self.remove_class(self.status)
        self.status = status
        self.add_class(status)
        self.summary = summary[:160]
        self._retitle()


def _summary(name: str, content: str, meta: dict[str, Any]) -> str:
    if "exit_code" in meta:
        return f"exit {meta['exit_code']}"
    if meta.get("diff"):
        diff = str(meta["diff"])
        add = sum(1 for x in diff.splitlines() if x.startswith("+") and not x.startswith("+++"))
        rem = sum(1 for x in diff.splitlines() if x.startswith("-") and not x.startswith("---"))
        return f"+{add} −{rem}"
    n = len(content.splitlines())
    return f"{n} line{'s' if n != 1 else ''}"


class PromptInput(TextArea):
    """The input box: Enter submits; Shift+Enter (where the terminal reports it), Alt+Enter or Ctrl+J add a line."""

    DEFAULT_CSS = """
    PromptInput { height: auto; min-height: 3; max-height: 12; border: round $accent; padding: 0 1; }
    """

    NEWLINE_KEYS = ("shift+enter", "alt+enter", "ctrl+j", "ctrl+enter")

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, **kw: Any) -> None:
        super().__init__(soft_wrap=True, show_line_numbers=False, tab_behavior="focus", **kw)
        self.sent: list[str] = []
        self._browse: int | None = None  # index into history while Up/Down walk it
        self._draft = ""

    def remember(self, text: str) -> None:
        if text.strip() and (not self.sent or self.sent[-1] != text):
            self.sent.append(text)
        self._browse = None

    def _recall(self, index: int | None) -> None:
        self._browse = index
        self.text = self._draft if index is None else self.sent[index]
        self.move_cursor(self.document.end)

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.post_message(self.Submitted(self.text))
            return
        if event.key == "up" and self.sent and self.cursor_location[0] == 0:
            event.stop()
            event.prevent_default()
            if self._browse is None:
                self._draft = self.text
                self._recall(len(self.sent) - 1)
            elif self._browse > 0:
                self._recall(self._browse - 1)
            return
        if event.key == "down" and self._browse is not None and self.cursor_location[0] == self.document.line_count - 1:
            event.stop()
            event.prevent_default()
            self._recall(self._browse + 1 if self._browse + 1 < len(self.sent) else None)
            return
        if event.key in self.NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        await super()._on_key(event)


def format_usage(totals: dict[str, Any]) -> str:
    cost = totals.get("cost_usd")
    parts = [f"turns {totals.get('turns', 0)}",
             f"in {totals.get('input', 0):,} tok ({totals.get('cached', 0):,} cached)",
             f"out {totals.get('output', 0):,} tok"]
    if cost is not None:
        parts.append(f"${cost:.4f}")
    return " · ".join(parts)

