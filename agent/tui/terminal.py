"""The terminal before Textual takes it over: keys typed while `agent` starts are kept, as typed.

Until Textual's driver puts the terminal in raw mode, the kernel's line discipline owns the keys: it echoes them,
turns Enter (CR) into a line feed (ICRNL) — which Textual reads as Ctrl+J, a new line in the input box, so a
message typed at once was never sent — and turns Ctrl+C into SIGINT (a traceback while starting). `hold()`, the
first thing the TUI does, switches to the driver's own raw mode at once; bytes typed even earlier (already
translated) are read off and handed to the driver (`take_early_input`), Enter restored, before its input thread
starts. `release()` restores the terminal as it was when `agent` started, whatever happened in between.
"""

from __future__ import annotations

import os
import select
import sys
from contextlib import suppress
from typing import Any

try:
    import termios
except ImportError:  # Windows: nothing to hold
    termios = None  # type: ignore[assignment]

_LFLAG_OFF = ("ECHO", "ICANON", "IEXTEN", "ISIG")
_IFLAG_OFF = ("IXON", "IXOFF", "ICRNL", "INLCR", "IGNCR")  # the flags Textual's LinuxDriver clears


class _Held:
    def __init__(self, fd: int, saved: list[Any], translated_enter: bool) -> None:
        self.fd = fd
        self.saved = saved
        self.translated_enter = translated_enter
        self.early = b""


_held: _Held | None = None


def _raw(attrs: list[Any]) -> list[Any]:
    new = [list(a) if isinstance(a, list) else a for a in attrs]
    for name in _LFLAG_OFF:
        new[3] &= ~getattr(termios, name)
    for name in _IFLAG_OFF:
        new[0] &= ~getattr(termios, name)
    new[6][termios.VMIN] = 1
    new[6][termios.VTIME] = 0
    return new


def hold() -> bool:
    """Raw mode now, keeping what was already typed. False when stdin is not a terminal (nothing to hold)."""
    global _held
    if _held is not None:
        return True
    try:
        fd = sys.stdin.fileno()
    except (OSError, ValueError):  # replaced by something without a descriptor (a test's capture)
        return False
    if termios is None or not os.isatty(fd):
        return False
    try:
        saved = termios.tcgetattr(fd)
        termios.tcsetattr(fd, termios.TCSANOW, _raw(saved))
    except termios.error:
        return False
    _held = _Held(fd, saved, bool(saved[0] & termios.ICRNL))
    _held.early = _drain(fd)
    return True


def _drain(fd: int) -> bytes:
    data = b""
    while select.select([fd], [], [], 0)[0]:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data


def take_early_input() -> str:
    """What was typed before raw mode, as a terminal in raw mode would have sent it (once; "" after)."""
    if _held is None or not _held.early:
        return ""
    data, _held.early = _held.early, b""
    if _held.translated_enter:
        data = data.replace(b"\n", b"\r")
    return data.decode(errors="replace")


def saved_attributes() -> list[Any] | None:
    """The terminal's settings from before `hold()` (what the driver restores on exit and suspend)."""
    return None if _held is None else _held.saved


def release() -> None:
    """Restore the terminal as it was when held (idempotent)."""
    global _held
    if _held is None:
        return
    held, _held = _held, None
    with suppress(termios.error):
        termios.tcsetattr(held.fd, termios.TCSANOW, held.saved)
