"""The `agent` command line. Subcommands live in agent/commands/; heavy imports happen inside commands."""

from __future__ import annotations

import sys
from typing import Any

import typer

from ghostline.agent import __version__
from ghostline.agent.commands.run import with_session_options
from ghostline.agent.commands.tui import open_tui

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


def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    session: dict[str, Any] | None = None,
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
    raise typer.Exit(open_tui(None, **(session or {})))


app.callback()(with_session_options(_root))

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
