"""The TUI's input box (until the prompt module lands)."""

from __future__ import annotations

from typing import Any

from textual import events
from textual.message import Message
from textual.widgets import TextArea


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
