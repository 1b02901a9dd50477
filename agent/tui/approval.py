"""The approval dialog: what the call would do (the command, or a diff), and the four answers.

y allows once, a allows and remembers the suggested rule (shown), n or Esc denies, r denies with a reason the
model is told. The preview scrolls inside the dialog; the key hints stay on screen at any size.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from ghostline.tools import ApprovalAnswer, ApprovalRequest


class ApprovalScreen(ModalScreen[ApprovalAnswer]):
    DEFAULT_CSS = """
    ApprovalScreen { align: center middle; }
    ApprovalScreen > Vertical { width: 96%; max-width: 140; height: auto; max-height: 100%;
                                border: thick $warning; background: $surface; padding: 0 1; }
    ApprovalScreen #title { text-style: bold; color: $warning; height: auto; }
    ApprovalScreen #reason { color: $text-muted; height: auto; }
    ApprovalScreen #preview-box { height: auto; max-height: 100%; border: round $panel; }
    ApprovalScreen #keys { dock: bottom; height: auto; color: $text; background: $boost; }
    ApprovalScreen #why { dock: bottom; }
    """

    BINDINGS = [
        Binding("y", "allow", "Allow once"),
        Binding("a", "always", "Always allow"),
        Binding("n", "deny", "Deny"),
        Binding("escape", "deny", "Deny", show=False),
        Binding("r", "explain", "Deny with a reason"),
        Binding("pageup", "scroll(-1)", show=False),
        Binding("pagedown", "scroll(1)", show=False),
    ]

    def __init__(self, request: ApprovalRequest) -> None:
        super().__init__()
        self.request = request

    def compose(self) -> ComposeResult:
        r = self.request
        with Vertical():
            yield Static(Text(f"Allow {r.title}?"), id="title")
            yield Static(Text(f"why: {r.reason}"), id="reason")
            yield Static(self._keys(), id="keys")
            with VerticalScroll(id="preview-box"):
                yield Static(self._preview(), id="preview")

    def _keys(self) -> Text:
        keys = Text()
        for key, label in (("y", "allow once"), ("a", f"always allow `{self.request.suggested_rule}`"),
                           ("n", "deny"), ("r", "deny with a reason")):
            keys.append(f" {key} ", "reverse bold")
            keys.append(f" {label}  ")
        return keys

    def _preview(self) -> Syntax | Text:
        p = self.request.preview
        if p is None:
            return Text(json.dumps(self.request.args, indent=2, ensure_ascii=False))
        if p.kind == "diff":
            return Syntax(p.text, "diff", theme="ansi_dark", word_wrap=True)
        if p.kind == "command":
            return Syntax(p.text, "bash", theme="ansi_dark", word_wrap=True)
        return Text(p.text)

    def action_allow(self) -> None:
        self.dismiss(ApprovalAnswer(True))

    def action_always(self) -> None:
        self.dismiss(ApprovalAnswer(True, always=True))

    async def action_deny(self) -> None:
        why = self.query("#why")
        if why:  # Esc while typing a reason: back to the choice
            await why.remove()
            self.query_one("#preview-box").focus()
            return
        self.dismiss(ApprovalAnswer.deny())

    async def action_explain(self) -> None:
        if not self.query("#why"):
            box = Input(placeholder="why not? (Enter sends the denial and this reason to the model; Esc goes back)",
                        id="why")
            await self.query_one(Vertical).mount(box)
            box.focus()

    def action_scroll(self, pages: int) -> None:
        box = self.query_one("#preview-box", VerticalScroll)
        box.scroll_to(y=box.scroll_y + pages * max(box.size.height - 1, 1), animate=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(ApprovalAnswer.deny(event.value.strip()))


async def ask(app: Any, request: ApprovalRequest) -> ApprovalAnswer:
    """Show the dialog over `app` and wait for the answer (a turn cancelled meanwhile takes the dialog away)."""
    fut: asyncio.Future[ApprovalAnswer] = asyncio.get_running_loop().create_future()
    screen = ApprovalScreen(request)

    def answered(result: ApprovalAnswer | None) -> None:
        if not fut.done():
            fut.set_result(result or ApprovalAnswer.deny())

    try:
        await app.push_screen(screen, callback=answered)
        return await fut
    finally:
        if screen.is_attached and app.screen is screen:
            app.pop_screen()
