"""The `bash` tool: run a shell command in the working directory through the sandbox."""

from __future__ import annotations

from typing import Any

from ghostline import sandbox
from ghostline.sandbox.policy import Action
from ghostline.tools.base import BaseTool, Preview, ToolContext, ToolError, ToolKind, ToolResult

DEFAULT_TIMEOUT_S = 120.0
MAX_TIMEOUT_S = 600.0
OUTPUT_LIMIT = 30000


class BashTool(BaseTool):
    name = "bash"
    kind: ToolKind = "shell"
    subject_key = "command"
    description = (
        "Run a command with `bash -c` in the working directory and return its output (stdout and stderr "
        "interleaved) and exit code. Each call starts a fresh shell: `cd` and variables do not carry over "
        "to the next call (chain with `&&`). No standard input: do not run interactive programs. "
        f"`timeout` in seconds (default {DEFAULT_TIMEOUT_S:.0f}, max {MAX_TIMEOUT_S:.0f}); on timeout the "
        "command and everything it started is killed. Long output keeps its head and tail. The command "
        "runs in a sandbox that may refuse writes outside the workspace and network access. Use `read`, "
        "`grep`, `glob`, `edit` and `write` rather than cat/grep/find/sed/echo for files."
    )
    input_schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "command": {"type": "string", "description": "The command line to run."},
            "timeout": {"type": "number", "minimum": 0, "description": "Seconds before the command is killed."},
        },
        "required": ["command"],
        "additionalProperties": False,
    }

    def action(self, args: dict[str, Any]) -> Action:
        return Action(self.name, self.kind, command=str(args.get("command", "")))

    def preview(self, args: dict[str, Any], ctx: ToolContext) -> Preview | None:
        return Preview("command", str(args.get("command", "")))

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        command: str = args["command"]
        if not command.strip():
            raise ToolError("command must not be empty")
        timeout = args.get("timeout")
        timeout = DEFAULT_TIMEOUT_S if timeout is None or timeout <= 0 else min(float(timeout), MAX_TIMEOUT_S)
        try:
            run = ctx.run_command or sandbox.run_command
            res = await run(
                command,
                cwd=ctx.cwd,
                workspace=ctx.workspace,
                mode=ctx.sandbox_mode,
                network=ctx.network,
                timeout=timeout,
                output_limit=OUTPUT_LIMIT,
                env=ctx.env,
                output_dir=ctx.output_dir,
                on_output=ctx.progress,
            )
        except sandbox.SandboxError as exc:
            raise ToolError(f"the sandbox could not run the command: {exc}") from None
        parts = [res.output.rstrip("\n")] if res.output.strip() else ["(no output)"]
        if res.timed_out:
            parts.append(f"[timed out after {timeout:g}s; the command was killed (exit code {res.exit_code})]")
        else:
            parts.append(f"[exit code {res.exit_code}]")
        if res.truncated:
            where = f"; full output in {res.full_output_path}" if res.full_output_path else ""
            parts.append(f"[output was cut, head and tail kept{where}]")
        meta: dict[str, Any] = {
            "exit_code": res.exit_code,
            "command": command,
            "timed_out": res.timed_out,
            "duration_ms": res.duration_ms,
            "truncated": res.truncated,
        }
        if getattr(res, "full_output_path", None):
            meta["full_output_path"] = res.full_output_path
        if getattr(res, "level", None):
            meta["sandbox_level"] = res.level
        return ToolResult("\n".join(parts), is_error=res.timed_out, meta=meta)
