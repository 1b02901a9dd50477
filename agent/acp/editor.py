"""What the editor lends a session: approvals (session/request_permission), its buffers (fs/*) and its terminal
(terminal/*). Each is a seam the rest of Ghostline already has: the registry's approver, `ToolContext.files`,
`ToolContext.run_command`."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from acp import RequestError
from acp import helpers as h
from acp.schema import AllowedOutcome, EnvVariable, PermissionOption, ToolCallUpdate

from ghostline.agent.acp.updates import KINDS
from ghostline.sandbox.runner import CommandResult
from ghostline.tools import ApprovalAnswer, ApprovalRequest, Approver

ALLOW_ONCE, ALLOW_ALWAYS, REJECT = "allow-once", "allow-always", "reject"
TERMINAL_OUTPUT_LIMIT = 1_000_000


def permission_approver(conn: Any, session_id: str) -> Approver:
    """The gate's approver: asks the editor with allow-once / allow-always (the rule the TUI would store) /
    reject. A cancelled request (the prompt was cancelled) denies."""

    async def approve(request: ApprovalRequest) -> ApprovalAnswer:
        options = [PermissionOption(option_id=ALLOW_ONCE, name="Allow once", kind="allow_once"),
                   PermissionOption(option_id=ALLOW_ALWAYS, name=f"Always allow `{request.suggested_rule}`",
                                    kind="allow_always"),
                   PermissionOption(option_id=REJECT, name="Reject", kind="reject_once")]
        response = await conn.request_permission(session_id=session_id, tool_call=_call_update(request),
                                                 options=options)
        outcome = response.outcome
        if not isinstance(outcome, AllowedOutcome) or outcome.option_id == REJECT:
            return ApprovalAnswer.deny()
        return ApprovalAnswer(True, always=outcome.option_id == ALLOW_ALWAYS)

    return approve


def _call_update(request: ApprovalRequest) -> ToolCallUpdate:
    content = None
    if request.preview is not None:
        content = [h.tool_content(h.text_block(request.preview.text))]
    return ToolCallUpdate(tool_call_id=request.call_id, title=request.title, status="pending",
                          kind=KINDS.get(request.kind, "other"), raw_input=request.args,  # type: ignore[arg-type]
                          content=content)


class EditorFiles:
    """`ToolContext.files` through the editor: its unsaved buffers are what the tools read and change."""

    def __init__(self, conn: Any, session_id: str) -> None:
        self.conn = conn
        self.session_id = session_id

    async def read_text(self, path: Path) -> str | None:
        if path.exists() and not path.is_file():
            return None
        try:
            response = await self.conn.read_text_file(session_id=self.session_id, path=str(path))
        except RequestError:  # no such file there (or one it cannot show as text): the disk decides
            return None
        return response.content

    async def write_text(self, path: Path, text: str) -> None:
        try:
            await self.conn.write_text_file(session_id=self.session_id, path=str(path), content=text)
        except RequestError as exc:
            raise OSError(f"the editor refused the write: {exc}") from None


class EditorTerminal:
    """`ToolContext.run_command` in the editor's terminal (terminal/create, wait, output, kill, release): the
    user sees the command run where they work. The editor runs it unconfined, so a session using it tells
    the policy there is no OS sandbox (commands that may write are asked about). Its output reaches the tool
    call as it comes, like a sandboxed command's."""

    POLL_S = 0.5

    def __init__(self, conn: Any, session_id: str) -> None:
        self.conn = conn
        self.session_id = session_id

    async def __call__(self, command: str, *, cwd: Path, timeout: float, output_limit: int = 30000,
                       env: dict[str, str] | None = None, on_output: Any = None, **_: Any) -> CommandResult:
        started = time.monotonic()
        created = await self.conn.create_terminal(
            session_id=self.session_id, command="bash", args=["-c", command], cwd=str(cwd),
            env=[EnvVariable(name=k, value=v) for k, v in (env or {}).items()],
            output_byte_limit=TERMINAL_OUTPUT_LIMIT)
        terminal = created.terminal_id
        timed_out = False
        try:
            try:
                status = await asyncio.wait_for(self._wait(terminal, on_output), timeout)
            except TimeoutError:
                timed_out = True
                await self.conn.kill_terminal(session_id=self.session_id, terminal_id=terminal)
                status = None
            out = await self.conn.terminal_output(session_id=self.session_id, terminal_id=terminal)
        except asyncio.CancelledError:
            await asyncio.shield(self.conn.kill_terminal(session_id=self.session_id, terminal_id=terminal))
            raise
        finally:
            await asyncio.shield(self.conn.release_terminal(session_id=self.session_id, terminal_id=terminal))
        exit_code = status.exit_code if status is not None and status.exit_code is not None else -1
        output = out.output
        truncated = out.truncated or len(output) > output_limit
        if len(output) > output_limit:
            half = output_limit // 2
            output = output[:half] + "\n[...]\n" + output[-half:]
        return CommandResult(exit_code=exit_code, output=output, timed_out=timed_out, truncated=truncated,
                             duration_ms=int((time.monotonic() - started) * 1000), level="editor-terminal",
                             full_output_path=None)

    async def _wait(self, terminal: str, on_output: Any) -> Any:
        """The exit status; meanwhile what the command prints goes to `on_output`."""
        exited = asyncio.ensure_future(self.conn.wait_for_terminal_exit(session_id=self.session_id,
                                                                        terminal_id=terminal))
        sent = 0
        try:
            while not exited.done():
                await asyncio.wait({exited}, timeout=self.POLL_S)
                if on_output is not None:
                    out = await self.conn.terminal_output(session_id=self.session_id, terminal_id=terminal)
                    if len(out.output) > sent:
                        on_output(out.output[sent:])
                        sent = len(out.output)
            return exited.result()
        finally:
            exited.cancel()
