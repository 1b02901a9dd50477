"""Which keys a terminal can tell apart from Enter, and how the TUI gets to see them.

Terminals send Alt+Enter as ESC CR. Textual 8's xterm parser has no entry for that pair: it waits for more
input, then re-issues the CR as a plain `enter` (the Alt is dropped), so Alt+Enter would send the message.
`install_alt_enter()` gives the pair its own entry (`alt+enter`), which also makes it arrive at once.

Shift+Enter and Ctrl+Enter exist only where the terminal reports modified keys:
* kitty's keyboard protocol (kitty, ghostty, wezterm, foot, iTerm2...): Textual already pushes it at start
  (`CSI > 25 u`) and pops it at exit, and parses `CSI 13;2u` as `shift+enter`;
* xterm's modifyOtherKeys, which is also how a program asks tmux for modified keys (tmux ignores the kitty
  push; with `set -s extended-keys on` it reports them once asked): `ModifiedKeysDriver` asks at start
  (`CSI > 4;1 m`) and resets at exit and on suspend (`CSI > 4 m`). xterm's form of the report
  (`CSI 27;2;13~`) reaches widgets as `shift+\\r`, Alt+Enter's as a bare `\\r`: `is_newline_key` knows them.

The driver also takes the keys typed while `agent` started (agent/tui/terminal.py): it parses them before its
input thread reads anything newer, and restores the terminal settings from before `agent` held the keys.
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textual.driver import Driver

ALT_ENTER_SEQUENCE = "\x1b\r"
MODIFY_OTHER_KEYS_ON = "\x1b[>4;1m"
MODIFY_OTHER_KEYS_RESET = "\x1b[>4m"


class _ExtraKey(StrEnum):
    """Key names for sequences Textual's table lacks (the table maps sequences to enum members)."""

    ALT_ENTER = "alt+enter"


def install_alt_enter() -> None:
    """Let Textual's parser read ESC CR as `alt+enter` (idempotent; keeps an entry Textual may add itself)."""
    from textual._ansi_sequences import ANSI_SEQUENCES_KEYS

    table = ANSI_SEQUENCES_KEYS
    if ALT_ENTER_SEQUENCE not in table and isinstance(table, dict):
        table[ALT_ENTER_SEQUENCE] = (_ExtraKey.ALT_ENTER,)


def is_newline_key(key: str) -> bool:
    """Whether a key adds a line in the input box: Enter with any modifier, and Ctrl+J (a bare LF)."""
    if key == "ctrl+j":
        return True
    base = key.rpartition("+")[2]
    return key != "enter" and base in ("enter", "\r")


def modified_keys_driver() -> type[Driver] | None:
    """The driver class for `App(driver_class=...)`: on POSIX terminals, Textual's own plus modifyOtherKeys;
    None (Textual's choice) on Windows or when TEXTUAL_DRIVER names another driver."""
    if sys.platform == "win32" or os.environ.get("TEXTUAL_DRIVER"):
        return None
    from textual._xterm_parser import XTermParser
    from textual.drivers.linux_driver import LinuxDriver

    from ghostline.agent.tui import terminal

    class ModifiedKeysDriver(LinuxDriver):
        def start_application_mode(self) -> None:
            install_alt_enter()
            early = terminal.take_early_input()
            if early:  # before the input thread starts, so they come first
                parser = XTermParser()
                for event in (*parser.feed(early), *parser.tick()):
                    self.process_message(event)
            super().start_application_mode()
            saved = terminal.saved_attributes()
            if saved is not None:  # held in raw mode since the start: restore what the user had
                self.attrs_before = saved
            self.write(MODIFY_OTHER_KEYS_ON)
            self.flush()

        def stop_application_mode(self) -> None:
            self.write(MODIFY_OTHER_KEYS_RESET)
            super().stop_application_mode()

    return ModifiedKeysDriver
