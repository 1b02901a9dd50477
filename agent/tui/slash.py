"""Slash commands typed in the TUI's input box: parsing and help text (no Textual here)."""

from __future__ import annotations

from dataclasses import dataclass

COMMANDS: dict[str, tuple[str, str]] = {
    "help": ("", "show this list"),
    "undo": ("[N]", "restore the files as they were before the last N turns that changed them (default 1)"),
    "compact": ("[focus]", "summarise the conversation now, optionally focusing the summary on something"),
    "sessions": ("", "list the saved sessions of this directory"),
    "resume": ("ID", "switch to a saved session"),
    "new": ("", "start a new session (this one stays saved)"),
    "quit": ("", "leave (also /exit, Ctrl+D on an empty input, Ctrl+C twice)"),
}
ALIASES = {"exit": "quit", "q": "quit", "?": "help", "clear": "new"}


@dataclass
class SlashCommand:
    name: str  # canonical name, or the unknown name as typed
    arg: str
    known: bool


def parse(text: str) -> SlashCommand | None:
    """`/name rest` → SlashCommand; None when the text is not a slash command (`//x` sends `/x` as text)."""
    s = text.strip()
    if not s.startswith("/") or s.startswith("//") or len(s) == 1:
        return None
    head, _, rest = s[1:].partition(" ")
    name = head.lower()
    name = ALIASES.get(name, name)
    return SlashCommand(name, rest.strip(), name in COMMANDS)


def unescape(text: str) -> str:
    """A message starting with `//` is sent with one slash (to talk about a path like /etc)."""
    s = text.lstrip()
    return s[1:] if s.startswith("//") else text


def help_text() -> str:
    lines = ["Commands:"]
    for name, (args, desc) in COMMANDS.items():
        lines.append(f"  /{name}{(' ' + args) if args else ''}  —  {desc}")
    lines += [
        "Keys: Enter sends · Shift+Enter / Ctrl+J / Alt+Enter adds a line · Ctrl+C cancels the running turn "
        "(twice quits) · Ctrl+D on an empty input quits · Tab/Enter on a tool line shows its output.",
        "Start a message with // to send a leading slash.",
    ]
    return "\n".join(lines)


def parse_count(arg: str, default: int = 1) -> int:
    """`/undo 3` → 3. Raises ValueError with a one-line message."""
    if not arg:
        return default
    try:
        n = int(arg)
    except ValueError:
        raise ValueError(f"expected a number of turns, got {arg!r}") from None
    if n < 1:
        raise ValueError("the number of turns must be at least 1")
    return n
