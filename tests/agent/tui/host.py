"""A minimal host app for the input box: records what it submits and clears the box, as the TUI does."""

from __future__ import annotations

from typing import Any

from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from ghostline.agent.tui.prompt import PromptInput

COMMANDS = [("help", "", "show the commands"), ("compact", "[focus]", "summarise now"),
            ("clear", "", "start a new session")]


class Host(App[None]):
    CSS = "#log { height: 1fr; } #footer { height: 1; }"

    def __init__(self, **prompt_kw: Any) -> None:
        super().__init__()
        self.prompt_kw = prompt_kw
        self.sent: list[str] = []

    def compose(self) -> ComposeResult:
        yield VerticalScroll(id="log")
        yield Static("footer", id="footer")
        yield PromptInput(id="input", **self.prompt_kw)

    def on_mount(self) -> None:
        self.box.focus()

    @property
    def box(self) -> PromptInput:
        return self.query_one(PromptInput)

    def on_prompt_input_submitted(self, message: PromptInput.Submitted) -> None:
        self.sent.append(message.text)  # the box has emptied itself, as for the app
