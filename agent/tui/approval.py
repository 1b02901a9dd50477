"""The approval modal: what the tool is about to do (command, or a diff preview), Allow once / Deny."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ghostline.agent.render import describe_call
from ghostline.agent.tui.preview import preview
from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ApprovalScreen(ModalScreen[bool]):
    """Dismisses with True (allow once) or False (deny)."""

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

    def __init__(self, tool: str, args: dict[str, Any], reason: str, cwd: Path) -> None:
        super().__init__()
        self.tool = tool
        self.args = args
        self.reason = reason
        self.kind, self.preview_text = preview(tool, args, cwd)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(f"Allow {describe_call(self.tool, self.args)}?"), id="title")
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
        self.dismiss(event.button.id == "allow")

    def action_allow(self) -> None:
        self.dismiss(True)

    def action_deny(self) -> None:
        self.dismiss(False)
