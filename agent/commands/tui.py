"""`agent tui`: the interactive terminal UI (also what `agent` with no command starts on a terminal)."""

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
    Approval,
    SandboxMode,
)


def register(app: typer.Typer) -> None:
    @app.command("tui")
    def tui(
        task: str = typer.Argument(None, help="Optional first message to send when the TUI opens."),
        model: str = MODEL_OPT,
        base_url: str = BASE_URL_OPT,
        max_turns: int = MAX_TURNS_OPT,
        max_tokens: int = MAX_TOKENS_OPT,
        max_cost: float = MAX_COST_OPT,
        approval: Approval = APPROVAL_OPT,
        sandbox: SandboxMode = SANDBOX_OPT,
        network: bool = NETWORK_OPT,
        resume: str = RESUME_OPT,
        cont: bool = CONTINUE_OPT,
        worktree: str = WORKTREE_OPT,
        cwd: Path = CWD_OPT,
    ) -> None:
        """Open the interactive TUI: chat with the agent, approve its actions, undo its turns."""
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            sys.stderr.write("agent: the TUI needs a terminal; for scripts and CI use `agent run \"task\"`\n")
            raise typer.Exit(2)
        from ghostline.agent.runner import RunOptions
        from ghostline.agent.tui import run_tui

        raise typer.Exit(run_tui(RunOptions(
            task=task, model=model, base_url=base_url, max_turns=max_turns, max_tokens=max_tokens,
            max_cost=max_cost, approval=approval.value if approval else None,
            sandbox=sandbox.value if sandbox else None, network=network, resume=resume, cont=cont,
            worktree=worktree, cwd=cwd,
        )))
