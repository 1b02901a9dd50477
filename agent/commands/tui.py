"""`agent tui`: the interactive terminal UI; bare `agent` on a terminal takes the same options."""

from __future__ import annotations

import sys
from typing import Any

import typer

from ghostline.agent.commands.run import with_session_options


def open_tui(task: str | None = None, **options: object) -> int:
    """Start the TUI with the options `agent tui` takes (the caller checked for a terminal)."""
    from ghostline.agent.options import RunOptions
    from ghostline.agent.tui import run_tui

    return run_tui(RunOptions(task=task, **options))  # type: ignore[arg-type]


def needs_terminal() -> bool:
    if sys.stdin.isatty() and sys.stdout.isatty():
        return False
    sys.stderr.write("agent: the TUI needs a terminal; for scripts and CI use `agent run \"task\"`\n")
    return True


def tui(
    task: str = typer.Argument(None, help="Optional first message to send when the TUI opens."),
    session: dict[str, Any] | None = None,
) -> None:
    """Open the interactive TUI: chat with the agent, approve its actions, undo its turns."""
    if needs_terminal():
        raise typer.Exit(2)
    raise typer.Exit(open_tui(task, **(session or {})))


def register(app: typer.Typer) -> None:
    app.command("tui")(with_session_options(tui))
