"""The CLI's subcommands, one module each (registered by agent.cli)."""

from __future__ import annotations

import typer


def fail(msg: str, code: int = 2) -> typer.Exit:
    """Write the one line every command error gets (`agent: <msg>`, as the runner and the crash report do) and
    return the exit to raise: 2 for a usage error, 1 for a failure."""
    typer.echo(f"agent: {msg}", err=True)
    return typer.Exit(code)
