"""`agent acp`: Ghostline as an Agent Client Protocol agent on stdio, for editors (Zed, JetBrains, Neovim, ...)."""

from __future__ import annotations

import typer


def acp_cmd() -> None:
    """Speak the Agent Client Protocol on stdin/stdout (an editor starts this; see the README)."""
    from ghostline.agent.acp import serve

    raise typer.Exit(serve())


def register(app: typer.Typer) -> None:
    app.command("acp")(acp_cmd)
