"""The interactive TUI (`agent`, `agent tui`): a Textual front end that consumes the loop's events.

Textual is imported only when the TUI starts, so `agent --help` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ghostline.agent.options import RunOptions


def run_tui(opts: RunOptions) -> int:
    """Start the TUI for `opts` (model, sandbox, approval, resume...). Returns the process exit code."""
    from ghostline.agent.tui.launch import run_tui as _run

    return _run(opts)


__all__ = ["run_tui"]
