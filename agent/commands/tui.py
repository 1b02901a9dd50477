"""`agent tui`: the interactive terminal UI; bare `agent` on a terminal takes the same options."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ghostline.agent.commands.run import (
    APPROVAL_OPT,
    BASE_URL_OPT,
    CONTINUE_OPT,
    CWD_OPT,
    MAX_COST_OPT,
    MAX_TOKENS_OPT,
    MAX_TURNS_OPT,
    MODEL_OPT,
    NETWORK_OPT,
    RESUME_OPT,
    SANDBOX_OPT,
    WORKTREE_OPT,
)
from ghostline.sandbox.modes import ApprovalMode, SandboxMode


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
    model: str = MODEL_OPT,
    base_url: str = BASE_URL_OPT,
    max_turns: int = MAX_TURNS_OPT,
    max_tokens: int = MAX_TOKENS_OPT,
    max_cost: float = MAX_COST_OPT,
    approval: ApprovalMode = APPROVAL_OPT,
    sandbox: SandboxMode = SANDBOX_OPT,
    network: bool = NETWORK_OPT,
    resume: str = RESUME_OPT,
    cont: bool = CONTINUE_OPT,
    worktree: str = WORKTREE_OPT,
    cwd: Path = CWD_OPT,
) -> None:
    """Open the interactive TUI: chat with the agent, approve its actions, undo its turns."""
    if needs_terminal():
        raise typer.Exit(2)
    raise typer.Exit(open_tui(task, model=model, base_url=base_url, max_turns=max_turns, max_tokens=max_tokens,
                              max_cost=max_cost, approval=approval, sandbox=sandbox, network=network,
                              resume=resume, cont=cont, worktree=worktree, cwd=cwd))


def register(app: typer.Typer) -> None:
    app.command("tui")(tui)
