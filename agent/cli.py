"""The `agent` command line. Subcommands live in agent/commands/; heavy imports happen inside commands."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ghostline.agent import __version__
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
from ghostline.agent.commands.tui import open_tui
from ghostline.sandbox.modes import ApprovalMode, SandboxMode

app = typer.Typer(
    name="agent",
    help="Ghostline: a terminal coding agent and a local ghost-text completion daemon.",
    invoke_without_command=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"ghostline {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
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
    """Ghostline: a terminal coding agent and a local ghost-text completion daemon.

    With no command on a terminal, starts the interactive TUI (the options above are `agent tui`'s)."""
    if ctx.invoked_subcommand is not None:
        given = [p.opts[0] for p in ctx.command.params
                 if p.name not in ("version",) and ctx.params.get(p.name) not in (None, False)]
        if given:
            raise typer.BadParameter(f"put {', '.join(given)} after the command: agent {ctx.invoked_subcommand} "
                                     f"{given[0]} ...")
        return
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        typer.echo(ctx.get_help())
        raise typer.Exit(0)
    raise typer.Exit(open_tui(None, model=model, base_url=base_url, max_turns=max_turns, max_tokens=max_tokens,
                              max_cost=max_cost, approval=approval, sandbox=sandbox, network=network,
                              resume=resume, cont=cont, worktree=worktree, cwd=cwd))


COMMAND_MODULES = ("run", "batch", "tui", "apply", "sandbox", "index", "daemon", "mcp", "acp", "warm")


def _register_all() -> None:
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(f"ghostline.agent.commands.{name}").register(app)


_register_all()


def _normalise_argv(argv: list[str]) -> list[str]:
    # `--worktree` takes an optional name; a bare flag means "pick a name".
    return ["--worktree=" if a == "--worktree" else a for a in argv]


def run_cli() -> None:
    app(args=_normalise_argv(sys.argv[1:]), prog_name="agent")
