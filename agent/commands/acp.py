"""`agent acp`: Ghostline as an Agent Client Protocol agent on stdio, for editors (Zed, JetBrains, Neovim, ...)."""

from __future__ import annotations

import typer

from ghostline.agent.commands.run import APPROVAL_OPT, BASE_URL_OPT, MODEL_OPT, SANDBOX_OPT
from ghostline.sandbox.modes import ApprovalMode, SandboxMode


def acp_cmd(model: str = MODEL_OPT, base_url: str = BASE_URL_OPT, approval: ApprovalMode = APPROVAL_OPT,
            sandbox: SandboxMode = SANDBOX_OPT) -> None:
    """Speak the Agent Client Protocol on stdin/stdout (an editor starts this; see the README). The model and
    options come from the usual config unless given here; the session's approval mode is the editor's to switch."""
    from ghostline.agent.acp import serve
    from ghostline.agent.options import RunOptions

    raise typer.Exit(serve(RunOptions(model=model, base_url=base_url, approval=approval, sandbox=sandbox)))


def register(app: typer.Typer) -> None:
    app.command("acp")(acp_cmd)
