"""Run by test_terminal.py in a pseudo-terminal: the input box in a real Textual driver. Says "ready" (an OSC
title) once the box has focus, writes what it submits to the file named by argv[1], and exits."""

from __future__ import annotations

import os
import sys

from textual.app import App, ComposeResult

from ghostline.agent.tui.keyboard import modified_keys_driver
from ghostline.agent.tui.prompt import PromptInput

READY = b"\x1b]2;prompt-ready\x07"


class PtyHost(App[None]):
    def __init__(self) -> None:
        super().__init__(driver_class=modified_keys_driver())

    def compose(self) -> ComposeResult:
        yield PromptInput()

    def on_mount(self) -> None:
        self.query_one(PromptInput).focus()
        self.call_after_refresh(os.write, sys.__stdout__.fileno(), READY)

    def on_prompt_input_submitted(self, message: PromptInput.Submitted) -> None:
        with open(sys.argv[1], "w", encoding="utf-8") as fh:
            fh.write(message.text)
        self.exit()


if __name__ == "__main__":
    PtyHost().run()
