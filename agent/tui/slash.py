"""Slash commands typed in the TUI's input box: the table, parsing and help text (no Textual here).

The same table feeds the completion popup as `/` is typed and the command palette (Ctrl+P).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CommandSpec:
    name: str
    args: str
    description: str
    while_busy: bool = False  # may run while a turn runs (the others wait for it, or for Ctrl+C)


BUILTIN: tuple[CommandSpec, ...] = (
    CommandSpec("help", "", "the commands and keys", while_busy=True),
    CommandSpec("model", "[PROVIDER:NAME]", "show or switch the model for the next turns"),
    CommandSpec("approval", "[plan|ask|auto-edit|auto]", "show or switch the approval mode (Shift+Tab cycles)",
                while_busy=True),
    CommandSpec("plan", "[task]", "plan mode: only what reads runs and the model ends with a plan, which you "
                "accept or refine"),
    CommandSpec("compact", "[focus]", "summarise the conversation now, optionally focusing the summary"),
    CommandSpec("context", "", "what fills the context window, by part", while_busy=True),
    CommandSpec("cost", "", "tokens and cost of this session", while_busy=True),
    CommandSpec("diff", "", "every change this session made to the files, coloured"),
    CommandSpec("undo", "[N]", "restore the files as they were before the last N turns that changed them"),
    CommandSpec("init", "", "ask the agent to draft an AGENT.md for this repository"),
    CommandSpec("sessions", "", "the saved sessions of this directory", while_busy=True),
    CommandSpec("resume", "ID", "switch to a saved session"),
    CommandSpec("new", "", "start a new session (this one stays saved)"),
    CommandSpec("clear", "", "start afresh: a new session with an empty conversation"),
    CommandSpec("exit", "", "leave (also Ctrl+D on an empty input, Ctrl+C twice)", while_busy=True),
)
ALIASES = {"quit": "exit", "q": "exit", "?": "help", "reset": "clear"}


@dataclass
class Invocation:
    name: str  # canonical name, or the unknown name as typed
    arg: str
    spec: CommandSpec | None

    @property
    def known(self) -> bool:
        return self.spec is not None


def parse(text: str, commands: tuple[CommandSpec, ...] = BUILTIN) -> Invocation | None:
    """`/name rest` → Invocation; None when the text is not a slash command (`//x` sends `/x` as text)."""
    s = text.strip()
    if not s.startswith("/") or s.startswith("//") or len(s) == 1:
        return None
    head, _, rest = s[1:].partition(" ")
    name = ALIASES.get(head.lower(), head.lower())
    spec = next((c for c in commands if c.name == name), None)
    return Invocation(name, rest.strip(), spec)


def is_message(text: str, commands: tuple[CommandSpec, ...] = BUILTIN) -> bool:
    """Text for the model: neither a /command nor a !command."""
    return parse(text, commands) is None and not (text.lstrip().startswith("!") and len(text.strip()) > 1)


def joined_messages(texts: list[str], commands: tuple[CommandSpec, ...] = BUILTIN) -> list[str]:
    """What was sent while nothing could run, in order: consecutive messages go as one (as queued ones do),
    commands keep their place."""
    out: list[str] = []
    for text in texts:
        if out and is_message(text, commands) and is_message(out[-1], commands):
            out[-1] = f"{out[-1]}\n\n{text}"
        else:
            out.append(text)
    return out


def unescape(text: str) -> str:
    """A message starting with `//` is sent with one slash (to talk about a path like /etc)."""
    s = text.lstrip()
    return s[1:] if s.startswith("//") else text


KEYS = (
    "Keys: Enter sends · Alt+Enter / Ctrl+J / Shift+Enter add a line · Esc or Ctrl+C interrupts the running turn "
    "· Ctrl+C twice or Ctrl+D on an empty input quits · Shift+Tab cycles the approval mode (plan, ask, auto-edit, "
    "auto) · Ctrl+O shows the latest tool output · PageUp/PageDown scroll, End jumps to the latest · Ctrl+P opens "
    "the command palette.",
    "Input: @path attaches a file (Tab completes it) · / completes commands · Up/Down walk the history, Ctrl+R "
    "searches it · !command runs a shell command (its output goes to the model) · a message typed while a turn "
    "runs is queued · // sends a leading slash.",
)


def help_text(commands: tuple[CommandSpec, ...] = BUILTIN) -> str:
    lines = ["Commands:"]
    for c in commands:
        lines.append(f"  /{c.name}{(' ' + c.args) if c.args else ''}  —  {c.description}")
    return "\n".join([*lines, *KEYS])


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
