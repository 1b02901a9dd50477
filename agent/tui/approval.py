"""The approval modal: what the tool is about to do (command, or a diff preview), Allow once / Deny."""

from __future__ import annotations

import json

from ghostline.tools import ApprovalAnswer, ApprovalRequest
from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ApprovalScreen(ModalScreen[ApprovalAnswer]):
    """Dismisses with the answer: allow once, or deny."""

    DEFAULT_CSS = """
    ApprovalScreen { align: center middle; }
    ApprovalScreen > Vertical { width: 90%; max-width: 130; height: auto; max-height: 90%;
                                border: thick $warning; background: $surface; padding: 1 2; }
    ApprovalScreen #title { text-style: bold; color: $warning; }
    ApprovalScreen #reason { color: $text-muted; margin-bottom: 1; }
    ApprovalScreen VerticalScroll { height: auto; max-height: 30; border: round $panel; }
    ApprovalScreen Horizontal { height: auto; margin-top: 1; align-horizontal: right; }
    ApprovalScreen Button { margin-left: 2; }
    """

    BINDINGS = [
        Binding("y", "allow", "Allow once"),
        Binding("n", "deny", "Deny"),
        Binding("escape", "deny", "Deny", show=False),
    ]

    def __init__(self, request: ApprovalRequest) -> None:
        super().__init__()
        self.request = request
        self.reason = request.reason
        preview = request.preview
        self.kind = preview.kind if preview else "text"
        self.preview_text = preview.text if preview else json.dumps(request.args, indent=2, ensure_ascii=False)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(f"Allow {self.request.title}?"), id="title")
            yield Static(Text(f"Needs approval: {self.reason}"), id="reason")
            with VerticalScroll():
                if self.kind == "diff":
                    yield Static(Syntax(self.preview_text, "diff", theme="ansi_dark", word_wrap=True), id="preview")
                elif self.kind == "command":
                    yield Static(Syntax(self.preview_text, "bash", theme="ansi_dark", word_wrap=True),
                                 id="preview")
                else:
                    yield Static(Text(self.preview_text), id="preview")
            with Horizontal():
                yield Button("Allow once (y)", variant="success", id="allow")
                yield Button("Deny (n)", variant="error", id="deny")

    def on_mount(self) -> None:
        self.query_one("#deny", Button).focus()  # Enter alone never allows

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(ApprovalAnswer(event.button.id == "allow"))

    def action_allow(self) -> None:
        self.dismiss(ApprovalAnswer(True))

    def action_deny(self) -> None:
        self.dismiss(ApprovalAnswer.deny())
