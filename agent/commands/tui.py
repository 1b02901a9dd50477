"""`agent tui`: the interactive terminal UI (also what `agent` with no command starts on a terminal)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from agent.commands.run import Approval, SandboxMode


def register(app: typer.Typer) -> None:
    @app.command("tui")
    def tui(
        task: str = typer.Argument(None, help="Optional first message to send when the TUI opens."),
        model: str = typer.Option(None, "--model", "-m", help="PROVIDER:NAME, e.g. anthropic:claude-sonnet-4-5, "
                                  "openai:gpt-4.1 (also GHOSTLINE_MODEL or `model` in config)."),
        base_url: str = typer.Option(None, "--base-url", help="Base URL of the provider's API (e.g. an "
                                     "OpenAI-compatible vLLM, SGLang, Ollama or llama.cpp server)."),
        max_turns: int = typer.Option(None, "--max-turns", min=1, help="Stop a task after N model calls."),
        max_tokens: int = typer.Option(None, "--max-tokens", min=1, help="Stop once input+output tokens "
                                       "reach N."),
        max_cost: float = typer.Option(None, "--max-cost", min=0.0, help="Stop once the cost reaches USD."),
        approval: Approval = typer.Option(None, "--approval", help="ask | auto-edit | auto (default ask)."),
        sandbox: SandboxMode = typer.Option(None, "--sandbox", help="read-only | workspace-write | full-access "
                                            "(default workspace-write)."),
        network: bool = typer.Option(None, "--network/--no-network", help="Allow network for commands "
                                     "(off by default in sandboxed modes)."),
        resume: str = typer.Option(None, "--resume", "-r", help="Continue the session with this ID."),
        cont: bool = typer.Option(False, "--continue", "-c", help="Continue the latest session in this directory."),
        worktree: str = typer.Option(None, "--worktree", help="Work in a new git worktree on a new branch "
                                     "(--worktree or --worktree=NAME)."),
        cwd: Path = typer.Option(None, "--cwd", help="Work in this directory instead of the current one."),
    ) -> None:
        """Open the interactive TUI: chat with the agent, approve its actions, undo its turns."""
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            sys.stderr.write("agent: the TUI needs a terminal; for scripts and CI use `agent run \"task\"`\n")
            raise typer.Exit(2)
        from agent.runner import RunOptions
        from agent.tui import run_tui

        raise typer.Exit(run_tui(RunOptions(
            task=task, model=model, base_url=base_url, max_turns=max_turns, max_tokens=max_tokens,
            max_cost=max_cost, approval=approval.value if approval else None,
            sandbox=sandbox.value if sandbox else None, network=network, resume=resume, cont=cont,
            worktree=worktree, cwd=cwd,
        )))
