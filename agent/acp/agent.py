"""Ghostline as an ACP agent: each ACP session is a Ghostline run (prepare_run), driven through the loop's
public methods and its event stream only, like every other front end.

Errors a user can cause (no model, a missing key, an unknown session) are JSON-RPC errors with one clear
message; nothing a client sends stops the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acp import PROTOCOL_VERSION, RequestError
from acp import helpers as h
from acp.schema import (
    AgentCapabilities,
    AuthenticateResponse,
    ClientCapabilities,
    Implementation,
    InitializeResponse,
    LoadSessionResponse,
    McpCapabilities,
    NewSessionResponse,
    PromptCapabilities,
    PromptResponse,
    SessionMode,
    SessionModeState,
    SetSessionModeResponse,
)

from ghostline.agent import __version__
from ghostline.agent import events as ev
from ghostline.agent.acp.editor import EditorFiles, EditorTerminal, permission_approver
from ghostline.agent.acp.prompt import editor_servers, prompt_images, prompt_text
from ghostline.agent.acp.updates import Translator, replay, stop_reason
from ghostline.agent.options import RunOptions, UsageError
from ghostline.agent.providers.base import ConfigError
from ghostline.agent.runner import PreparedRun, close_quietly, finish_run, prepare_run
from ghostline.sandbox.modes import APPROVAL_MODES
from ghostline.sandbox.runner import detect_level
from ghostline.tools import ApprovalAnswer, ApprovalRequest

log = logging.getLogger(__name__)
CONFIG_ERROR = -32000  # the session cannot be made as configured (no model, a missing key): a server error code

MODE_TEXT = {"plan": ("Plan", "Only read and plan; nothing changes until you accept the plan"),
             "ask": ("Ask", "Ask before edits, commands and other actions"),
             "auto-edit": ("Auto-edit", "Edit files in the workspace freely; ask before commands"),
             "auto": ("Auto", "Act within the sandbox without asking")}


@dataclass
class AcpSession:
    id: str
    run: PreparedRun
    notes: list[str] = field(default_factory=list)  # said with the first prompt (servers left out, ...)
    task: asyncio.Task[Any] | None = None
    cancelled: bool = False
    final: ev.Event | None = None  # how the last prompt ended (the result record written at the end)
    interrupted: bool = False


class GhostlineAgent:
    def __init__(self, base: RunOptions | None = None) -> None:
        self.base = base or RunOptions()
        self.conn: Any = None
        self.caps = ClientCapabilities()
        self.sessions: dict[str, AcpSession] = {}

    def on_connect(self, conn: Any) -> None:
        self.conn = conn

    async def initialize(self, protocol_version: int, client_capabilities: ClientCapabilities | None = None,
                         client_info: Any = None, **_: Any) -> InitializeResponse:
        self.caps = client_capabilities or ClientCapabilities()
        caps = AgentCapabilities(load_session=True,
                                 prompt_capabilities=PromptCapabilities(image=True, embedded_context=True),
                                 mcp_capabilities=McpCapabilities(http=True, sse=False))
        return InitializeResponse(protocol_version=min(protocol_version, PROTOCOL_VERSION), agent_capabilities=caps,
                                  agent_info=Implementation(name="ghostline", title="Ghostline", version=__version__))

    async def authenticate(self, method_id: str, **_: Any) -> AuthenticateResponse:
        return AuthenticateResponse()  # keys come from the environment and config, as for `agent run`

    # -- sessions ------------------------------------------------------------------------------------------

    async def new_session(self, cwd: str, mcp_servers: list[Any] | None = None, **_: Any) -> NewSessionResponse:
        session = await self._open(cwd, None, mcp_servers)
        return NewSessionResponse(session_id=session.id, modes=_modes(session.run))

    async def load_session(self, cwd: str, session_id: str, mcp_servers: list[Any] | None = None,
                           **_: Any) -> LoadSessionResponse:
        if session_id in self.sessions:
            raise RequestError.invalid_request({"message": f"session {session_id} is already open"})
        session = await self._open(cwd, session_id, mcp_servers)
        for update in replay(session.run.session.records(), session.run.cwd):
            await self.conn.session_update(session_id=session.id, update=update)
        return LoadSessionResponse(modes=_modes(session.run))

    async def _open(self, cwd: str, resume: str | None, mcp_servers: list[Any] | None) -> AcpSession:
        if not Path(cwd).is_absolute():
            raise RequestError.invalid_params({"message": f"cwd must be an absolute path (got {cwd!r})"})
        try:
            extra = editor_servers(mcp_servers or [])
        except ValueError as exc:
            raise RequestError.invalid_params({"message": str(exc)}) from None
        approver = _LateApprover()
        opts = RunOptions(**{**self.base.__dict__, "cwd": Path(cwd), "resume": resume})
        try:
            run = await asyncio.to_thread(prepare_run, opts, headless=False, approver=approver)
        except (UsageError, ConfigError) as exc:
            raise RequestError(CONFIG_ERROR, str(exc)) from None
        session = AcpSession(run.session.id, run)
        approver.inner = permission_approver(self.conn, session.id)
        self._lend_editor(session)
        session.notes = await run.start(None, extra)
        self.sessions[session.id] = session
        return session

    def _lend_editor(self, session: AcpSession) -> None:
        fs = self.caps.fs
        files = EditorFiles(self.conn, session.id) if fs and fs.read_text_file and fs.write_text_file else None
        terminal = None
        if self.caps.terminal and _terminal_wanted(session.run):
            terminal = EditorTerminal(self.conn, session.id)
        session.run.lend_editor(files, terminal)

    def _session(self, session_id: str) -> AcpSession:
        session = self.sessions.get(session_id)
        if session is None:
            raise RequestError.invalid_params({"message": f"no session {session_id!r} (session/new or session/load "
                                                          f"first)"})
        return session

    async def set_session_mode(self, session_id: str, mode_id: str, **_: Any) -> SetSessionModeResponse:
        session = self._session(session_id)
        if mode_id not in APPROVAL_MODES:
            raise RequestError.invalid_params({"message": f"mode must be one of {', '.join(APPROVAL_MODES)}"})
        session.run.loop.set_approval_mode(mode_id)
        session.run.sandbox_report["approval"] = mode_id
        return SetSessionModeResponse()

    # -- prompts -------------------------------------------------------------------------------------------

    async def prompt(self, session_id: str, prompt: list[Any], **_: Any) -> PromptResponse:
        session = self._session(session_id)
        if session.task is not None and not session.task.done():
            raise RequestError.invalid_request({"message": "a prompt is already running in this session"})
        text = prompt_text(prompt)
        run = session.run
        images, problems = prompt_images(prompt, run.loop.ctx.images, run.session.output_dir, run.model_label)
        if not text.strip() and images:
            text = "(see the attached image)"
        if not text.strip():
            raise RequestError.invalid_params({"message": "; ".join(problems) or "the prompt is empty"})
        run.loop.attach_images(images)
        session.notes.extend(problems)
        session.cancelled = session.interrupted = False
        session.run.record_start()
        session.task = asyncio.ensure_future(self._drive(session, text))
        try:
            final = await session.task
        except asyncio.CancelledError:
            if not session.cancelled:
                raise
            session.run.loop.mark_interrupted()
            session.interrupted = True
            return PromptResponse(stop_reason="cancelled")
        if isinstance(final, ev.Failed):
            raise RequestError.internal_error({"message": final.error})
        return PromptResponse(stop_reason=stop_reason(final))  # type: ignore[arg-type]

    async def _drive(self, session: AcpSession, text: str) -> ev.Event | None:
        run = session.run
        translator = Translator(run.cwd, _text_reader(run))
        for note in session.notes:
            await self.conn.session_update(session_id=session.id, update=h.update_agent_message_text(note + "\n"))
        session.notes.clear()
        final: ev.Event | None = None
        async for e in run.loop.run(text):
            for update in await translator.updates(e):
                await self.conn.session_update(session_id=session.id, update=update)
            if isinstance(e, (ev.Done, ev.Failed)):
                final = session.final = e
        return final

    async def cancel(self, session_id: str, **_: Any) -> None:
        """Like Ctrl-C: the running prompt stops (its command is killed), the session stays."""
        session = self.sessions.get(session_id)
        if session is not None and session.task is not None and not session.task.done():
            session.cancelled = True
            session.task.cancel()

    # -- the end -------------------------------------------------------------------------------------------

    async def close(self) -> None:
        for session in list(self.sessions.values()):
            await self._close_session(session)
        self.sessions.clear()

    async def _close_session(self, session: AcpSession) -> None:
        run = session.run
        if session.task is not None and not session.task.done():
            session.task.cancel()
            with contextlib.suppress(BaseException):
                await session.task
        with contextlib.suppress(Exception):
            if run.session.exists:
                finish_run(run, session.final, session.interrupted)
        run.session.close()
        await run.stop()
        await close_quietly(run.loop.provider)


class _LateApprover:
    """The approver prepare_run needs before the session (and so the editor's question) has an id."""

    inner: Any = None

    async def __call__(self, request: ApprovalRequest) -> ApprovalAnswer:
        return await self.inner(request) if self.inner is not None else ApprovalAnswer.deny()


def _modes(run: PreparedRun) -> SessionModeState:
    return SessionModeState(current_mode_id=run.sandbox_report["approval"], available_modes=[
        SessionMode(id=mode, name=MODE_TEXT[mode][0], description=MODE_TEXT[mode][1]) for mode in APPROVAL_MODES])


def _terminal_wanted(run: PreparedRun) -> bool:
    """`[acp] terminal`: "editor", "sandbox", or "auto" (default): the editor's terminal only where Ghostline's
    sandbox would confine nothing anyway (full-access mode, or no OS layer here)."""
    choice = str((run.config.acp or {}).get("terminal", "auto"))
    if choice in ("editor", "sandbox"):
        return choice == "editor"
    if run.sandbox_report["mode"] == "full-access":
        return True
    try:
        return detect_level() == "none"
    except Exception:  # noqa: BLE001 - no layer known: the sandbox is not confining either
        return True


def _text_reader(run: PreparedRun) -> Any:
    """A file's text now, as the tools see it (the editor's buffer when it keeps the files), for diffs."""
    files = run.loop.ctx.files

    async def read(path: str) -> str | None:
        if files is not None:
            text = await files.read_text(Path(path))
            if text is not None:
                return text
        try:
            return await asyncio.to_thread(Path(path).read_text, encoding="utf-8", errors="replace")
        except OSError:
            return None

    return read
