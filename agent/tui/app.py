"""The interactive TUI: a Textual app that drives the loop's public methods and renders its events, nothing else.

Layout: the status line (model, context fill, approval, sandbox, cost, turns), the scrolling conversation, the
input box and a footer with the state and the keys that matter now. Turns run as workers, so Esc or Ctrl+C
cancels one (the running command is killed by the cancellation) and the app stays. Messages typed while a turn
runs wait in a queue and go when it ends. Whatever the policy wants approved opens a dialog.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

from ghostline.agent import events as ev
from ghostline.agent.attachments import attach_images
from ghostline.agent.mentions import expand_mentions
from ghostline.agent.providers.base import ConfigError
from ghostline.agent.runner import PreparedRun, RunOptions, UsageError, close_quietly, finish_run, prepare_run
from ghostline.agent.session import latest_todos, session_totals
from ghostline.agent.tui import plan_choice, slash
from ghostline.agent.tui.approval import ApprovalScreen
from ghostline.agent.tui.commands import APPROVAL_CYCLE, SlashCommands, SlashPalette
from ghostline.agent.tui.conversation import Conversation
from ghostline.agent.tui.history import PromptHistory
from ghostline.agent.tui.keyboard import modified_keys_driver
from ghostline.agent.tui.prompt import PromptInput
from ghostline.agent.tui.status import StatusInfo, status_text
from ghostline.agent.tui.todos import TodoPanel
from ghostline.tools import ApprovalAnswer, ApprovalRequest
from rich.console import Console
from rich.text import Text
from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Static
from textual.worker import Worker

EXIT_USAGE = 2
QUIT_WINDOW_S = 3.0


class GhostlineApp(App[int]):
    TITLE = "ghostline"
    CSS = """
    Screen { layout: vertical; }
    #status { height: 1; background: $primary-background; color: $text; padding: 0 1; }
    #missed { height: 1; display: none; background: $accent; color: $text; padding: 0 1; }
    #missed.shown { display: block; }
    #footer { height: 1; color: $text-muted; padding: 0 1; }
    #footer.busy { color: $accent; }
    """
    COMMANDS = App.COMMANDS | {SlashPalette}
    BINDINGS = [
        Binding("ctrl+c", "interrupt", "Cancel turn / quit", priority=True),
        Binding("escape", "interrupt_turn", "Interrupt", show=False),
        Binding("ctrl+d", "eof", "Quit on empty input", priority=True, show=False),
        Binding("shift+tab", "cycle_approval", "Approval mode", priority=True, show=False),
        Binding("ctrl+o", "toggle_output", "Show output", show=False),
        Binding("pageup", "scroll_conversation(-1)", show=False),
        Binding("pagedown", "scroll_conversation(1)", show=False),
        Binding("ctrl+end", "jump_to_latest", show=False),
    ]

    def __init__(self, opts: RunOptions) -> None:
        super().__init__(driver_class=modified_keys_driver())
        self.opts = opts
        self.prepared: PreparedRun | None = None
        self.final: ev.Event | None = None
        self.interrupted = False
        self.job: Worker[Any] | None = None
        self.job_kind = ""
        self.job_started = 0.0
        self.queue: list[str] = []
        self.status = StatusInfo()
        self.commands = SlashCommands(self)
        self._run_closed = True
        self._quit_armed_at: float | None = None
        self._cost_before_run: float | None = None
        self._scrollback: list[Any] = []

    # -- the run ---------------------------------------------------------------------------------------

    def start_run(self, opts: RunOptions) -> None:
        """Prepare the loop and its session (raises UsageError/ConfigError before anything is shown)."""
        self.adopt_run(prepare_run(opts, headless=False, approver=self.approve))

    def adopt_run(self, prepared: PreparedRun) -> None:
        self.prepared = prepared
        self.final = None
        self.interrupted = False
        self._run_closed = False
        rep = prepared.sandbox_report
        totals = session_totals(prepared.session.records())
        self._cost_before_run = totals.cost_usd
        self.status = StatusInfo(model=prepared.model_label, sandbox=rep["mode"], level=rep["level"],
                                 approval=rep["approval"], cost_usd=totals.cost_usd, turns=totals.turns,
                                 session=prepared.session.id)

    def close_run(self) -> dict[str, Any] | None:
        """Write the result record and close the session (idempotent; nothing for a session never used)."""
        if self._run_closed or self.prepared is None:
            return None
        self._run_closed = True
        try:
            if not self.prepared.session.exists:
                return None
            return finish_run(self.prepared, self.final, self.interrupted)
        finally:
            self.prepared.session.close()

    @property
    def loop(self) -> Any:
        assert self.prepared is not None
        return self.prepared.loop

    @property
    def busy(self) -> bool:
        return self.job is not None and not self.job.is_finished

    # -- layout ----------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static("", id="status")
        yield Conversation(id="conversation")
        yield Static("↓ more output below — Ctrl+End (or End on an empty input) jumps to the latest", id="missed")
        root = self.prepared.root if self.prepared is not None else None
        yield TodoPanel(id="todos")
        yield PromptInput(id="input", history=PromptHistory.for_project(root) if root else None,
                          commands=lambda: [(c.name, c.args, c.description) for c in self.commands.specs()],
                          root=root)
        yield Static("", id="footer")

    async def on_mount(self) -> None:
        self.conversation.anchor()
        self.prompt.focus()
        await self.show_run_start()
        self.set_interval(1.0, self.refresh_footer)
        self.start_servers()
        if self.opts.task and self.busy:  # the servers are starting: the task goes when they are up
            self.queue.append(self.opts.task)
        elif self.opts.task:
            self.send(self.opts.task)

    def exit(self, *args: Any, **kw: Any) -> None:
        # Every way out passes here while the conversation is still on screen: keep it for the scrollback.
        with suppress(Exception):
            self._scrollback = list(self.conversation.transcript())
        super().exit(*args, **kw)

    async def on_unmount(self) -> None:
        if self.prepared is not None:
            await self.prepared.stop()
            await close_quietly(self.loop.provider)

    def start_servers(self) -> None:
        """The session's MCP servers start before the first turn (a project's are asked about in the approval
        dialog); a server that is left out or fails is one line in the conversation."""
        prepared = self.prepared
        if prepared is None or not prepared.has_servers:
            return

        async def start() -> None:
            for line in await prepared.start(ask=self.approve):
                await self.conversation.say(line, "warning")

        self.start_job("starting MCP servers", start)

    @property
    def conversation(self) -> Conversation:
        return self.query_one(Conversation)

    @property
    def prompt(self) -> PromptInput:
        return self.query_one(PromptInput)

    async def show_run_start(self) -> None:
        assert self.prepared is not None
        self.refresh_status()
        self.refresh_footer()
        self.query_one(TodoPanel).show_items(latest_todos(self.prepared.session.records()))
        if self.loop.messages:
            await self.conversation.replay(self.loop.messages, self.loop.registry.title_of)
            await self.conversation.say(f"[resumed session {self.prepared.session.id}]")

    def refresh_status(self) -> None:
        if self.prepared is not None:
            usage = self.loop.context_usage()
            if usage is not None:
                self.status.context_tokens, self.status.context_window = usage.tokens, usage.window
        found = self.screen_stack[0].query("#status") if self.screen_stack else None
        if found:
            found.first(Static).update(status_text(self.status, max(self.size.width - 2, 20)))

    def refresh_footer(self) -> None:
        found = self.screen_stack[0].query("#footer") if self.screen_stack else None
        if not found:
            return  # shutting down
        footer = found.first(Static)
        busy = self.busy and bool(self.job_kind)
        footer.set_class(busy, "busy")
        if busy:
            secs = int(time.monotonic() - self.job_started)
            state = f"{self.job_kind} {secs}s · Esc interrupts"
        else:
            state = "ready · /help for commands · Shift+Tab: approval mode"
        footer.update(Text(state, no_wrap=True, overflow="ellipsis"))
        hint = f"{len(self.queue)} message{'s' * (len(self.queue) != 1)} queued · sent when the turn ends"
        self.prompt.set_hint(hint if self.queue else "")

    def on_resize(self, event: events.Resize) -> None:
        if self.is_mounted:
            self.refresh_status()

    def on_conversation_missed_output(self, message: Conversation.MissedOutput) -> None:
        self.query_one("#missed", Static).set_class(message.missed, "shown")

    # -- events ----------------------------------------------------------------------------------------

    async def handle(self, e: ev.Event) -> None:
        """Render one loop event; keep the status line (a subagent's turns and cost count) and checklist true."""
        await self.conversation.handle(e)
        inner = ev.innermost(e)
        if isinstance(inner, ev.TurnStarted):
            self.status.turns += 1
        elif isinstance(inner, ev.Usage):
            self.status.cost_usd = self._session_cost(inner)
        elif isinstance(e, ev.TodoList):
            self.query_one(TodoPanel).show_items(e.items)
        elif isinstance(e, (ev.Done, ev.Failed)):
            self.final = e
            if plan_choice.plan_turn_ended(e, self.status.approval) and not self.queue:
                await plan_choice.offer(self)
        if isinstance(inner, (ev.TurnStarted, ev.Usage, ev.Compaction, ev.Done, ev.Failed, ev.ToolResultEvent)):
            self.refresh_status()

    def _session_cost(self, e: ev.Usage) -> float | None:
        """Usage events count this run's cost; the status line shows the session's."""
        if e.cost_usd is None:
            return self.status.cost_usd
        return (self._cost_before_run or 0.0) + e.cost_usd

    # -- approval --------------------------------------------------------------------------------------

    async def approve(self, request: ApprovalRequest) -> ApprovalAnswer:
        """The gate's approver: show the dialog and wait for the answer."""
        fut: asyncio.Future[ApprovalAnswer] = asyncio.get_running_loop().create_future()
        screen = ApprovalScreen(request)
        row = self.conversation.rows.get(request.call_id)
        if row is not None:
            row.awaiting_approval()

        def answered(result: ApprovalAnswer | None) -> None:
            if not fut.done():
                fut.set_result(result or ApprovalAnswer.deny())

        try:
            await self.push_screen(screen, callback=answered)
            return await fut
        finally:
            if screen.is_attached and self.screen is screen:  # the turn was cancelled while asking
                self.pop_screen()

    # -- jobs (turns, /compact, !command) --------------------------------------------------------------

    def start_job(self, kind: str, make: Callable[[], Awaitable[None]]) -> None:
        self.job_kind = kind
        self.job_started = time.monotonic()
        self.job = self.run_worker(self._job(make), group="job", exit_on_error=False)
        self.refresh_footer()

    async def _job(self, make: Callable[[], Awaitable[None]]) -> None:
        try:
            await make()
        except asyncio.CancelledError:
            self.interrupted = True
            with suppress(Exception):
                self.loop.mark_interrupted()
            with suppress(Exception):
                await self.conversation.say("[interrupted]", "warning")
            raise
        except Exception as e:  # a bug or an unexpected failure: show it, keep the app and the session
            self.final = ev.Failed(f"{type(e).__name__}: {e}")
            with suppress(Exception):
                self.prepared.session.append({"type": "tui_error", "error": f"{type(e).__name__}: {e}",
                                              "traceback": traceback.format_exc()[-4000:]})
            with suppress(Exception):
                await self.conversation.say(f"error: {type(e).__name__}: {e}", "error")
        finally:
            with suppress(Exception):
                await self.conversation.end_assistant()
            self.conversation.settle_running()
            self.job_kind = ""
            self.call_later(self._after_job)

    def _after_job(self) -> None:
        if self.queue and not self.busy:
            text = "\n\n".join(self.queue)
            self.queue.clear()
            if self.interrupted:  # the user stopped the turn: give them their queued words back to edit
                box = self.prompt
                box.text = f"{text}\n{box.text}" if box.text else text
                box.move_cursor(box.document.end)
            else:
                self.send(text)
        self.refresh_status()
        self.refresh_footer()

    def send(self, text: str) -> None:
        """Start a turn with the user's message (the session file appears with the first one)."""
        self.interrupted = False
        self._quit_armed_at = None
        self.prepared.record_start()
        plan_choice.dismiss(self)

        async def turn() -> None:
            async for e in self.loop.run(text):
                await self.handle(e)

        self.start_job("working", turn)

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
        box = self.prompt
        box.remember(text)
        box.clear()
        cmd = slash.parse(text, self.commands.specs())
        if cmd is not None:
            await self.commands.run(cmd)
        elif text.lstrip().startswith("!") and len(text.strip()) > 1:
            await self.commands.shell(text.lstrip()[1:].strip())
        else:
            message = await self.with_attachments(slash.unescape(text))
            if self.busy:
                self.queue.append(message)
                self.refresh_footer()
            else:
                self.send(message)

    async def on_plan_choice_chosen(self, message: plan_choice.PlanChoice.Chosen) -> None:
        await plan_choice.choose(self, message.accept)

    async def with_attachments(self, text: str) -> str:
        """`@path` mentions of files in the workspace attach them (images go with the next message sent); what
        could not be attached is said."""
        assert self.prepared is not None
        run = self.prepared
        exp = await asyncio.to_thread(expand_mentions, text, run.cwd, run.root)
        images, problems = await asyncio.to_thread(attach_images, exp.images, self.loop.ctx.images,
                                                   run.session.output_dir, model=run.model_label, cwd=run.cwd)
        self.loop.attach_images(images)
        for image in images:
            await self.conversation.say(f"image attached: {image.name}", "notice")
        for note in exp.notes + [f"image not attached: {p}" for p in problems]:
            await self.conversation.say(note, "warning")
        return exp.text

    def on_key(self, event: events.Key) -> None:
        """Typing always reaches the input, wherever the focus wandered (a click on a row, the scrollbar)."""
        box = self.prompt
        if self.screen is not self.screen_stack[0] or self.focused is box:
            if event.key == "end" and self.focused is box and not box.text:
                self.conversation.jump_to_latest()
            return
        if event.is_printable and event.character:
            box.focus()
            box.insert(event.character)
            event.stop()

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

    async def action_interrupt_turn(self) -> None:
        if self.busy:
            await self.cancel_job()

    async def action_eof(self) -> None:
        box = self.prompt
        if box.text == "":
            await self.quit_app()
        elif self.focused is box:
            box.action_delete_right()

    def action_cycle_approval(self) -> None:
        current = self.status.approval
        nxt = APPROVAL_CYCLE[(APPROVAL_CYCLE.index(current) + 1) % len(APPROVAL_CYCLE)] \
            if current in APPROVAL_CYCLE else APPROVAL_CYCLE[0]
        self.commands.set_approval(nxt)

    def action_toggle_output(self) -> None:
        rows = list(self.conversation.rows.values())
        if rows:
            rows[-1].toggle()

    def action_scroll_conversation(self, pages: int) -> None:
        c = self.conversation
        c.scroll_to(y=c.scroll_y + pages * max(c.size.height - 2, 1), animate=False)

    def action_jump_to_latest(self) -> None:
        self.conversation.jump_to_latest()

    async def quit_app(self) -> None:
        await self.cancel_job()
        self.exit(0)

    async def close_provider(self, provider: Any) -> None:
        await close_quietly(provider)

    async def switch_run(self, opts: RunOptions, note: str) -> None:
        """/new, /clear, /resume: prepare the next run first, so a mistake keeps the current one."""
        try:
            nxt = await asyncio.to_thread(prepare_run, opts, headless=False, approver=self.approve)
        except (UsageError, ConfigError) as e:
            await self.conversation.say(f"error: {e}", "error")
            return
        old = self.prepared
        self.close_run()
        await old.stop()
        await close_quietly(old.loop.provider)
        self.adopt_run(nxt)
        self.queue.clear()
        await self.conversation.remove_children()
        self.conversation.rows.clear()
        await self.conversation.say(note.format(old=old.session.id, new=nxt.session.id))
        await self.show_run_start()
        self.start_servers()

    def print_scrollback(self) -> None:
        """After the TUI closes: the conversation, in the terminal's own scrollback (readable, copyable)."""
        if not self._scrollback:
            return
        console = Console(soft_wrap=False, highlight=False)
        for renderable in self._scrollback:
            console.print(renderable)


def run_tui(opts: RunOptions) -> int:
    app = GhostlineApp(opts)
    try:
        app.start_run(opts)
    except (UsageError, ConfigError) as e:
        import sys

        sys.stderr.write(f"agent: {e}\n")
        return EXIT_USAGE
    try:
        app.run()
    finally:
        result = app.close_run()
    app.print_scrollback()
    if result is not None:
        import sys

        sys.stderr.write(f"session saved; resume with: agent --resume {result['session_id']}\n")
    return 0 if app.return_code in (0, None) else 1
