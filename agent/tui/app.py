"""The interactive TUI: a Textual app that drives AgentLoop.run() and renders its events, nothing else.

Layout: a header line (model, cwd, sandbox, approval, session), the scrolling conversation, a footer with usage
and state, and the input box. Turns run as Textual workers, so Ctrl+C can cancel one (the loop's running
command is killed by the cancellation) and the app stays. Anything the policy wants approved opens a modal.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from ghostline.agent import events as ev
from ghostline.agent.providers.base import ConfigError
from ghostline.agent.render import call_title
from ghostline.agent.runner import RunOptions, UsageError, finish_run, prepare_run
from ghostline.agent.tui import slash
from ghostline.agent.tui.approval import ApprovalScreen
from ghostline.agent.tui.widgets import AssistantView, Line, PromptInput, ToolCallView, format_usage
from ghostline.tools import ApprovalAnswer, ApprovalRequest
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Markdown, Static
from textual.worker import Worker

EXIT_USAGE = 2
QUIT_WINDOW_S = 3.0
REPLAY_MESSAGES = 60


class GhostlineApp(App[int]):
    TITLE = "ghostline"
    CSS = """
    Screen { layout: vertical; }
    #header { height: auto; max-height: 3; background: $primary-background; color: $text; padding: 0 1; }
    #conversation { height: 1fr; scrollbar-size-vertical: 1; }
    #footer { height: 1; color: $text-muted; padding: 0 1; }
    #footer.busy { color: $accent; }
    """
    BINDINGS = [
        Binding("ctrl+c", "interrupt", "Cancel turn / quit", priority=True),
        Binding("ctrl+d", "eof", "Quit on empty input", priority=True, show=False),
    ]

    def __init__(self, opts: RunOptions) -> None:
        super().__init__()
        self.opts = opts
        self.prepared: Any = None  # agent.runner.PreparedRun
        self.final: ev.Event | None = None
        self.interrupted = False
        self.job: Worker[Any] | None = None
        self.job_kind = ""
        self.totals: dict[str, Any] = {}
        self._run_closed = True
        self._quit_armed_at: float | None = None
        self._pending_note: str | None = None
        self._pending_diffs: list[str] = []
        self._tool_views: dict[str, ToolCallView] = {}
        self._last_tool_view: ToolCallView | None = None
        self._assistant: AssistantView | None = None
        self._approval: ApprovalScreen | None = None

    # -- the run ---------------------------------------------------------------------------------------

    def start_run(self, opts: RunOptions) -> None:
        """Prepare the loop and its session (raises UsageError/ConfigError before anything is shown)."""
        self.adopt_run(prepare_run(opts, headless=False, approver=self.approve), resumed=bool(opts.resume or
                                                                                              opts.cont))

    def adopt_run(self, prepared: Any, *, resumed: bool) -> None:
        self.prepared = prepared
        self.final = None
        self.interrupted = False
        self.totals = {"turns": 0, "input": 0, "cached": 0, "output": 0, "cost_usd": None}
        self._run_closed = False
        self._pending_note = None
        rep = prepared.sandbox_report
        start = ev.SessionStarted(prepared.session.id, prepared.model_label, str(prepared.cwd), rep["mode"],
                                  rep["approval"], rep["level"], resumed=resumed)
        prepared.session.append(start.to_dict())

    def close_run(self) -> dict[str, Any] | None:
        """Write the result record and close the session (idempotent)."""
        if self._run_closed or self.prepared is None:
            return None
        self._run_closed = True
        try:
            return finish_run(self.prepared, self.final, self.interrupted)
        finally:
            self.prepared.session.close()

    @property
    def busy(self) -> bool:
        return self.job is not None and not self.job.is_finished

    # -- layout ----------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static("", id="header")
        yield VerticalScroll(id="conversation")
        yield Static("", id="footer")
        yield PromptInput(id="input")

    async def on_unmount(self) -> None:
        # Close the SDK client inside Textual's event loop; its finaliser would complain after the loop is gone.
        if self.prepared is not None:
            from ghostline.agent.runner import close_quietly

            await close_quietly(self.prepared.loop.provider)

    async def on_mount(self) -> None:
        self.conversation.anchor()
        await self._show_run_start()
        self.query_one(PromptInput).focus()
        if self.opts.task:
            self.start_turn(self.opts.task)

    @property
    def conversation(self) -> VerticalScroll:
        return self.query_one("#conversation", VerticalScroll)

    def header_text(self) -> str:
        p = self.prepared
        rep = p.sandbox_report
        cwd = str(p.cwd)
        home = str(Path.home())
        if home not in ("", "/") and (cwd == home or cwd.startswith(home + "/")):
            cwd = "~" + cwd[len(home):]
        return (f"ghostline · {p.model_label} · {cwd} · sandbox {rep['mode']} ({rep['level']}) · "
                f"approval {rep['approval']} · session {p.session.id}")

    def _refresh_header(self) -> None:
        self.query_one("#header", Static).update(Text(self.header_text()))

    def _refresh_footer(self) -> None:
        footer = self.query_one("#footer", Static)
        working = bool(self.job_kind) and self.busy
        state = {"turn": "working… (Ctrl+C cancels)", "compact": "compacting… (Ctrl+C cancels)"}.get(
            self.job_kind, "working…") if working else "ready · /help for commands"
        footer.set_class(working, "busy")
        footer.update(Text(f"{format_usage(self.totals)} · {state}", overflow="ellipsis", no_wrap=True))

    async def _show(self, widget: Widget) -> Widget:
        await self.conversation.mount(widget)
        return widget

    async def say(self, text: str, kind: str = "notice") -> Line:
        line = Line(text, kind)
        await self._show(line)
        return line

    async def _show_run_start(self) -> None:
        self._refresh_header()
        self._refresh_footer()
        self._tool_views.clear()
        self._last_tool_view = None
        self._assistant = None
        if self.prepared.loop.messages:
            await self._replay(self.prepared.loop.messages)
            await self.say(f"[resumed session {self.prepared.session.id}]")

    async def _replay(self, messages: list[Any]) -> None:
        """Show the tail of a resumed conversation (from the transcript the loop starts from)."""
        results = {b.tool_use_id: b for m in messages for b in m.tool_results}
        shown = messages[-REPLAY_MESSAGES:]
        if len(shown) < len(messages):
            await self.say(f"[{len(messages) - len(shown)} earlier messages not shown]")
        for m in shown:
            for b in m.content:
                kind = getattr(b, "type", "")
                if kind == "summary":
                    await self.say("[earlier conversation summarised]")
                elif kind == "text" and b.text.strip():
                    if m.role == "user":
                        await self.say(f"› {b.text}", "user")
                    else:
                        await self._show(Markdown(b.text, classes="replayed"))
                elif kind == "tool_use":
                    view = ToolCallView(b.id, b.name, b.input, self.prepared.loop.registry.title_of(b.name, b.input))
                    await self._show(view)
                    r = results.get(b.id)
                    if r is not None:
                        view.set_result(r.content, r.is_error, r.meta)

    # -- events ----------------------------------------------------------------------------------------

    async def _end_assistant(self) -> None:
        if self._assistant is not None:
            a, self._assistant = self._assistant, None
            await a.finish()

    async def handle(self, e: ev.Event) -> None:
        """Render one loop event."""
        if isinstance(e, ev.UserMessage):
            await self.say(f"› {e.text}", "user")
        elif isinstance(e, ev.TurnStarted):
            await self._end_assistant()
        elif isinstance(e, ev.TextDelta):
            if self._assistant is None:
                self._assistant = AssistantView()
                await self._show(self._assistant)
            await self._assistant.add(e.text)
        elif isinstance(e, ev.AssistantMessage):
            streamed = self._assistant is not None
            await self._end_assistant()
            if not streamed:  # a provider that does not stream: show the text whole
                text = "".join(b.get("text", "") for b in e.message.get("content", []) if b.get("type") == "text")
                if text.strip():
                    view = AssistantView()
                    await self._show(view)
                    await view.add(text)
                    await view.finish()
        elif isinstance(e, ev.ToolCall):
            await self._end_assistant()
            view = ToolCallView(e.id, e.name, e.input, call_title(e))
            self._tool_views[e.id] = view
            self._last_tool_view = view
            await self._show(view)
        elif isinstance(e, ev.ApprovalNeeded):
            if e.decision == "denied" and self._last_tool_view is not None:
                self._last_tool_view.set_status("denied", e.reason)
        elif isinstance(e, ev.Diff):
            self._pending_diffs.append(e.diff)
        elif isinstance(e, ev.ToolResultEvent):
            diff = self._pending_diffs.pop(0) if self._pending_diffs and e.meta.get("diff") else ""
            view = self._tool_views.get(e.id)
            if view is not None:
                view.set_result(e.content, e.is_error, e.meta, diff)
        elif isinstance(e, ev.Compaction):
            detail = f" · {e.detail}" if e.detail else ""
            await self.say(f"[compaction: {e.stage} {e.tokens_before:,} → {e.tokens_after:,} tokens{detail}]")
        elif isinstance(e, ev.Retry):
            await self.say(f"[retrying the turn (attempt {e.attempt}) in {e.delay_s:.1f}s: {e.error}]", "warning")
        elif isinstance(e, ev.Usage):
            t = self.totals
            t["input"] += e.input_tokens + e.cache_read_input_tokens + e.cache_creation_input_tokens
            t["cached"] += e.cache_read_input_tokens
            t["output"] += e.output_tokens
            t["cost_usd"] = e.cost_usd
        elif isinstance(e, ev.Done):
            await self._end_assistant()
            self.final = e
            if e.subtype == "error_max_turns":
                await self.say(f"stopped: reached the turn limit ({e.num_turns} turns)", "warning")
            elif e.subtype == "error_budget":
                await self.say("stopped: reached the token or cost budget", "warning")
        elif isinstance(e, ev.Failed):
            await self._end_assistant()
            self.final = e
            await self.say(f"error: {e.error}", "error")
        if isinstance(e, (ev.TurnStarted, ev.Usage)):
            if isinstance(e, ev.TurnStarted):
                self.totals["turns"] += 1
            self._refresh_footer()

    # -- approval --------------------------------------------------------------------------------------

    async def approve(self, request: ApprovalRequest) -> ApprovalAnswer:
        """The gate's approver: show the modal and wait for the answer."""
        fut: asyncio.Future[ApprovalAnswer] = asyncio.get_running_loop().create_future()
        screen = ApprovalScreen(request)

        def answered(result: ApprovalAnswer | None) -> None:
            if not fut.done():
                fut.set_result(result or ApprovalAnswer.deny())

        self._approval = screen
        try:
            await self.push_screen(screen, callback=answered)
            return await fut
        finally:
            self._approval = None
            if screen.is_attached and self.screen is screen:  # the turn was cancelled while asking
                self.pop_screen()

    # -- jobs (turns, /compact) ------------------------------------------------------------------------

    def _start_job(self, kind: str, make: Callable[[], Awaitable[None]]) -> None:
        self.job_kind = kind
        self.job = self.run_worker(self._job(make), group="job", exit_on_error=False)
        self._refresh_footer()

    async def _job(self, make: Callable[[], Awaitable[None]]) -> None:
        prepared = self.prepared
        try:
            await make()
        except asyncio.CancelledError:
            self.interrupted = True
            with suppress(Exception):
                _settle_interrupted(prepared)
            with suppress(Exception):
                await self.say("[interrupted]", "warning")
            raise
        except Exception as e:  # a bug or an unexpected failure: show it, keep the app and the session
            self.final = ev.Failed(f"{type(e).__name__}: {e}")
            with suppress(Exception):
                prepared.session.append({"type": "tui_error", "error": f"{type(e).__name__}: {e}",
                                         "traceback": traceback.format_exc()[-4000:]})
            with suppress(Exception):
                await self.say(f"error: {type(e).__name__}: {e}", "error")
        finally:
            with suppress(Exception):
                await self._end_assistant()
            for view in self._tool_views.values():
                if view.status == "running":
                    view.set_status("interrupted", "interrupted")
            self._pending_diffs.clear()
            self.job_kind = ""
            self.call_later(self._refresh_footer)

    def start_turn(self, text: str) -> None:
        note, self._pending_note = self._pending_note, None
        if note:
            text = f"{note}\n\n{text}"
        self.interrupted = False
        self._quit_armed_at = None

        async def turn() -> None:
            async for e in self.prepared.loop.run(text):
                await self.handle(e)

        self._start_job("turn", turn)

    async def cancel_job(self) -> None:
        job = self.job
        if job is None or job.is_finished:
            return
        job.cancel()
        with suppress(Exception, asyncio.CancelledError):
            await job.wait()

    # -- input -----------------------------------------------------------------------------------------

    async def on_prompt_input_submitted(self, message: PromptInput.Submitted) -> None:
        text = message.text
        if not text.strip():
            return
        box = self.query_one(PromptInput)
        cmd = slash.parse(text)
        if cmd is not None:
            box.remember(text)
            box.clear()
            await self.run_command(cmd)
            return
        if self.busy:
            self.notify("A turn is running: wait for it, or press Ctrl+C to cancel it.", severity="warning")
            return  # the text stays in the box
        box.remember(text)
        box.clear()
        self.start_turn(slash.unescape(text))

    async def action_interrupt(self) -> None:
        if self.busy:
            self._quit_armed_at = time.monotonic()
            await self.cancel_job()
            return
        if self._quit_armed_at is not None and time.monotonic() - self._quit_armed_at < QUIT_WINDOW_S:
            await self.quit_app()
            return
        self._quit_armed_at = time.monotonic()
        self.notify("Press Ctrl+C again to quit.", timeout=QUIT_WINDOW_S)

    async def action_eof(self) -> None:
        box = self.query_one(PromptInput)
        if box.text == "":
            await self.quit_app()
        elif self.focused is box:
            box.action_delete_right()

    async def quit_app(self) -> None:
        await self.cancel_job()
        self.exit(0)

    # -- slash commands --------------------------------------------------------------------------------

    async def run_command(self, cmd: slash.SlashCommand) -> None:
        if not cmd.known:
            await self.say(f"unknown command /{cmd.name}; /help lists the commands", "error")
            return
        if cmd.name == "help":
            await self.say(slash.help_text(), "help")
        elif cmd.name == "quit":
            await self.quit_app()
        elif cmd.name == "sessions":
            await self._cmd_sessions()
        elif self.busy:
            await self.say(f"/{cmd.name} must wait until the running turn ends (Ctrl+C cancels it)", "error")
        elif cmd.name == "undo":
            await self._cmd_undo(cmd.arg)
        elif cmd.name == "compact":
            await self._cmd_compact(cmd.arg)
        elif cmd.name == "new":
            await self._switch(dataclasses.replace(self.opts, resume=None, cont=False, task=None))
        elif cmd.name == "resume":
            if not cmd.arg:
                await self.say("/resume needs a session ID; /sessions lists them", "error")
                return
            await self._switch(dataclasses.replace(self.opts, resume=cmd.arg.split()[0], cont=False, task=None))

    async def _cmd_sessions(self) -> None:
        from ghostline.agent.session import list_sessions, sessions_root

        from ghostline.dirs import data_dir

        infos = await asyncio.to_thread(list_sessions, sessions_root(data_dir()), self.prepared.cwd)
        if not infos:
            await self.say("no sessions in this directory")
            return
        lines = [f"Sessions in {self.prepared.cwd} (newest first; /resume ID switches):"]
        for i in infos[:20]:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(i.created))
            task = " ".join(i.task.split())
            task = task if len(task) <= 60 else task[:59] + "…"
            mark = "*" if i.id == self.prepared.session.id else " "
            lines.append(f"{mark} {i.id}  {when}  {i.status:<22} {task}")
        if len(infos) > 20:
            lines.append(f"  … and {len(infos) - 20} more (`agent sessions`)")
        await self.say("\n".join(lines), "help")

    async def _cmd_undo(self, arg: str) -> None:
        try:
            turns = slash.parse_count(arg)
        except ValueError as e:
            await self.say(f"/undo: {e}", "error")
            return
        try:
            cps = _checkpoints(self.prepared.root, self.prepared.session.id)
        except Exception as e:
            await self.say(f"/undo: checkpoints are not available ({e})", "error")
            return
        try:
            cp, changed = await asyncio.to_thread(cps.undo, self.prepared.session.id, turns)
        except Exception as e:  # CheckpointError and git failures: one line
            await self.say(f"/undo: {e}", "error")
            return
        files = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10 else "")
        await self.say(f"[undo: restored the files as they were before {cp.label}"
                       f"{': ' + files if changed else '; no file differed'}]", "warning")
        if changed:
            self._pending_note = (f"[Note: the user ran /undo and restored {len(changed)} file(s) to their state "
                                  f"before {cp.label}: {files}. Re-read files before editing them.]")

    async def _cmd_compact(self, focus: str) -> None:
        loop = self.prepared.loop
        if getattr(loop, "compactor", None) is None or not hasattr(loop.compactor, "compact_now"):
            await self.say("/compact: compaction is not available in this build", "error")
            return

        async def compact() -> None:
            n = 0
            try:
                async for e in _compact_events(loop, focus or None):
                    n += 1
                    await self.handle(e)
            except Exception as e:  # CompactionFailed, a summariser's provider error
                await self.say(f"/compact: {e}", "error")
                return
            if n == 0:
                await self.say("[compaction: nothing to compact yet]")

        await self.say("[compacting the conversation…]")
        self._start_job("compact", compact)

    async def _switch(self, opts: RunOptions) -> None:
        """/new and /resume: prepare the next run first, so a mistake keeps the current one."""
        try:
            nxt = await asyncio.to_thread(prepare_run, opts, headless=False, approver=self.approve)
        except (UsageError, ConfigError) as e:
            await self.say(f"error: {e}", "error")
            return
        old = self.prepared.session.id
        self.close_run()
        self.adopt_run(nxt, resumed=bool(opts.resume))
        await self.conversation.remove_children()
        await self.say(f"[session {old} saved; now in {'resumed' if opts.resume else 'new'} session "
                       f"{nxt.session.id}]")
        await self._show_run_start()


def _checkpoints(root: Path, session_id: str) -> Any:
    try:
        from ghostline.sandbox import Checkpoints  # type: ignore[attr-defined]
    except ImportError:
        from ghostline.sandbox.checkpoints import Checkpoints
    return Checkpoints(root, session=session_id)


def _settle_interrupted(prepared: Any) -> None:
    """After a cancelled turn: give every tool call without a result an 'interrupted' result, in the transcript
    and in the session log, so the next turn's request is valid and a resume rebuilds the same transcript."""
    loop, session = prepared.loop, prepared.session
    if hasattr(loop, "settle_interrupted"):
        loop.settle_interrupted()
    else:  # until the loop has settle_interrupted(): the same, through the session's public helpers
        from ghostline.agent.session import INTERRUPTED, close_dangling_tool_uses

        names = {u.id: u.name for m in loop.messages[-2:] for u in m.tool_uses}
        for call_id in close_dangling_tool_uses(loop.messages):
            session.append(ev.ToolResultEvent(call_id, names.get(call_id, ""), INTERRUPTED, True,
                                              {"interrupted": True}).to_dict())
    session.append({"type": "interrupted"})


async def _compact_events(loop: Any, focus: str | None) -> AsyncIterator[ev.Event]:
    """The loop's own `compact(focus)` when it has one; else the same steps through the compactor."""
    if hasattr(loop, "compact"):
        async for e in loop.compact(focus):
            yield e
        return
    new_messages, cevents = await loop.compactor.compact_now(loop.system, loop._tool_dicts, loop.messages,
                                                             focus=focus)
    for c in cevents:
        yield loop._emit(ev.Compaction(c.stage, c.tokens_before, c.tokens_after, c.detail))
    loop._adopt(new_messages, cevents)


def run_tui(opts: RunOptions) -> int:
    app = GhostlineApp(opts)
    try:
        app.start_run(opts)
    except (UsageError, ConfigError) as e:
        sys.stderr.write(f"agent: {e}\n")
        return EXIT_USAGE
    try:
        app.run()
    finally:
        result = app.close_run()
    if result is not None:
        sys.stderr.write(f"session saved; resume with: agent tui --resume {result['session_id']}\n")
    return 0 if app.return_code in (0, None) else 1
