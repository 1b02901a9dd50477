"""`agent` on a terminal, from the first instant to the lines printed after the TUI closes.

The prompt comes first. The keys are held at once (terminal.py); the cheap checks run (start.py); then the app
paints and prepares the run (the loop, the tools, the provider's SDK) in a thread behind its first frame. A mistake
only that preparation finds (a missing API key) closes the app with the same one line and exit code.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from rich.console import Console

from ghostline.agent.options import EXIT_USAGE, RunOptions
from ghostline.agent.tui import terminal
from ghostline.agent.tui.start import START_ERRORS, preflight


def run_tui(opts: RunOptions) -> int:
    """Start the TUI for `opts` (the caller checked for a terminal). Returns the process exit code."""
    terminal.hold()
    try:
        return _run(opts)
    finally:
        terminal.release()


def _run(opts: RunOptions) -> int:
    try:
        start = preflight(opts)
    except START_ERRORS as e:
        return _usage_error(e)
    from ghostline.agent.tui.app import GhostlineApp  # Textual, only once the options are known to be good

    app = GhostlineApp(opts, start)
    try:
        app.run()
    finally:
        result = app.close_run()
        terminal.release()
    if app.start_error is not None:
        if isinstance(app.start_error, START_ERRORS):
            return _usage_error(app.start_error)
        raise app.start_error  # a bug: the console script reports it
    print_scrollback(app.scrollback)
    if result is not None:
        sys.stderr.write(f"session saved; resume with: agent --resume {result['session_id']}\n")
    return 0 if app.return_code in (0, None) else 1


def _usage_error(e: Exception) -> int:
    sys.stderr.write(f"agent: {e}\n")
    return EXIT_USAGE


def print_scrollback(renderables: Iterable[Any]) -> None:
    """After the TUI closes: the conversation, in the terminal's own scrollback (readable, copyable)."""
    console = Console(soft_wrap=False, highlight=False)
    for renderable in renderables:
        console.print(renderable)
