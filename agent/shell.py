"""`!command` in the TUI: a command the user runs themselves, through the same sandbox as the bash tool."""

from __future__ import annotations

from collections.abc import Callable

from ghostline.agent import events as ev
from ghostline.sandbox import SandboxError, run_command
from ghostline.tools.base import ToolContext

USER_SHELL_TIMEOUT_S = 600.0
USER_SHELL_OUTPUT_LIMIT = 30000


async def run_user_shell(command: str, call_id: str, ctx: ToolContext,
                         on_output: Callable[[str], None] | None = None) -> ev.ShellRun:
    """Run `command` in the run's sandbox mode (the user typed it, so nothing asks). Raises SandboxError."""
    res = await run_command(command, cwd=ctx.cwd, workspace=ctx.workspace, mode=ctx.sandbox_mode,
                            network=ctx.network, timeout=USER_SHELL_TIMEOUT_S, output_limit=USER_SHELL_OUTPUT_LIMIT,
                            env=ctx.env, output_dir=ctx.output_dir, on_output=on_output)
    return ev.ShellRun(call_id, command, res.exit_code, res.output, res.duration_ms, res.timed_out)


__all__ = ["SandboxError", "run_user_shell"]
