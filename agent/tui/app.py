"""The interactive TUI: a Textual app that drives the loop's public methods and renders its events, nothing else.

Layout: the status line (model, context fill, approval, sandbox, cost, turns), the scrolling conversation, the
input box and a footer with the state and the keys that matter now. The input works from the first frame: the
run (loop, tools, the provider's SDK) is prepared in a thread behind it, and what is sent meanwhile waits for it.
Turns run as workers, so Esc or Ctrl+C cancels one (the running command is killed by the cancellation) and the
app stays. Messages typed while a turn runs wait in a queue and go when it ends. Whatever the policy wants
approved opens a dialog. Frames are written as differences from the last one (frames.py).
"""

from __future__ import annotations

import asyncio
import threading
import time
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static

from ghostline.agent import events as ev
from ghostline.agent.options import EXIT_USAGE, RunOptions
from ghostline.agent.tui import plan_choice, slash
from ghostline.agent.tui.conversation import Conversation
from ghostline.agent.tui.frames import ScreenDiff, ScrollWatch, frame_budget_s
from ghostline.agent.tui.history import PromptHistory
from ghostline.agent.tui.jobs import Jobs
from ghostline.agent.tui.keyboard import modified_keys_driver
from ghostline.agent.tui.prompt import PromptInput
from ghostline.agent.tui.start import START_ERRORS, StartInfo, preflight
from ghostline.agent.tui.status import OneLine, StatusInfo, footer_text, status_text, waiting_hint
from ghostline.agent.tui.todos import TodoPanel
from ghostline.sandbox.modes import APPROVAL_MODES

if TYPE_CHECKING:
    from ghostline.agent.tui.commands import SlashCommands
    from ghostline.agent.tui.run import TuiRun
    from ghostline.tools import ApprovalAnswer, ApprovalRequest

QUIT_WINDOW_S = 3.0


def slash_palette() -> type:
    """Textual's palette machinery loads when the palette first opens, not before the first paint."""
    from ghostline.agent.tui.palette import SlashPalette

    return SlashPalette


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
    COMMANDS = App.COMMANDS | {slash_palette}
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

    def __init__(self, opts: RunOptions, start: StartInfo | None = None) -> None:
        super().__init__(driver_class=modified_keys_driver())
        self.opts = opts
        self.start = start or preflight(opts)
        self.agent_run: TuiRun | None = None
        self.commands: SlashCommands | None = None
        self.start_error: BaseException | None = None
        self.pending: list[str] = []  # sent before the run was ready
        self.jobs = Jobs(self)
        self.status = StatusInfo(model=self.start.model, sandbox=self.start.sandbox, approval=self.start.approval)
        self.frames = ScreenDiff() if frame_budget_s() > 0 else None
        self._scroll_watch = ScrollWatch()
        self._quit_armed_at: float | None = None
        self.scrollback: list[Any] = []  # the conversation as it was when the app closed

    # -- the run, prepared behind the first frame -----------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.agent_run is not None

    @property
    def loop(self) -> Any:
        assert self.agent_run is not None
        return self.agent_run.loop

    @property
    def prepared(self) -> Any:
        assert self.agent_run is not None
        return self.agent_run.prepared

    @property
    def busy(self) -> bool:
        return self.jobs.busy

    def _prepare(self) -> None:
        """In a thread: the loop, the tools, the provider's SDK (most of the startup time)."""
        try:
            from ghostline.agent.tui import answer  # noqa: F401 - Markdown for the first answer, loaded here
            from ghostline.agent.tui.run import TuiRun  # heavy, and why it runs here

            run = TuiRun.prepare(self.opts, self.approve)
        except Exception as e:  # a mistake in the options (one line, exit 2), or a bug (reported on exit)
            with suppress(RuntimeError):  # the user quit meanwhile
                self.call_from_thread(self._start_failed, e)
            return
        with suppress(RuntimeError):
            self.call_from_thread(self.adopt_run, run)

    def _start_failed(self, error: Exception) -> None:
        self.start_error = error
        self.exit(return_code=EXIT_USAGE if isinstance(error, START_ERRORS) else 1)

    async def adopt_run(self, run: TuiRun) -> None:
        """The run is ready: show where it starts, then send what waited for it."""
        from ghostline.agent.tui.commands import SlashCommands  # the loop's modules are loaded by now

        self.agent_run, self.commands = run, SlashCommands(self)
        self.status = run.status()
        if run.prepared.root != self.start.root:  # --worktree: the files and history are the worktree's
            self.prompt.use_project(run.prepared.root)
        await self.show_run_start()
        self.start_servers()
        waiting, self.pending = slash.joined_messages(self.pending, self.command_specs()), []
        if self.opts.task and self.busy:  # the servers are starting: the task goes when they are up
            self.jobs.queue.append(self.opts.task)
        elif self.opts.task:
            self.send(self.opts.task)
        for text in waiting:
            await self.submit(text)

    def start_servers(self) -> None:
        """The session's MCP servers start before the first turn (a project's are asked about in the approval
        dialog); a server that is left out or fails is one line in the conversation."""
        prepared = self.prepared
        if not prepared.has_servers:
            return

        async def start() -> None:
            for line in await prepared.start(ask=self.approve):
                await self.conversation.say(line, "warning")

        self.jobs.start("starting MCP servers", start)

    def command_specs(self) -> tuple[slash.CommandSpec, ...]:
        """The built-in commands, and once the run is ready the project's and the user's command files."""
        return self.commands.specs() if self.commands is not None else slash.BUILTIN

    def close_run(self) -> dict[str, Any] | None:
        return self.agent_run.close() if self.agent_run is not None else None

    # -- layout ----------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield OneLine(id="status")
        yield Conversation(id="conversation")
        yield Static("↓ more output below — Ctrl+End (or End on an empty input) jumps to the latest", id="missed")
        root = self.start.root
        yield TodoPanel(id="todos")
        yield PromptInput(id="input", history=PromptHistory.for_project(root), root=root,
                          commands=lambda: [(c.name, c.args, c.description) for c in self.command_specs()])
        yield OneLine(id="footer")

    async def on_mount(self) -> None:
        self.conversation.anchor()
        self.prompt.focus()
        self.refresh_status()
        self.refresh_footer()
        self.set_interval(1.0, self.refresh_footer)
        self.app_resume_signal.subscribe(self, self._screen_unknown)  # back from Ctrl+Z: the screen was cleared
        if self.agent_run is None:  # after the first paint, so that it comes at once
            self.call_after_refresh(threading.Thread(target=self._prepare, name="ghostline-prepare",
                                                     daemon=True).start)

    def exit(self, *args: Any, **kw: Any) -> None:
        # Every way out passes here while the conversation is still on screen: keep it for the scrollback.
        with suppress(Exception):
            self.scrollback = list(self.conversation.transcript())
        super().exit(*args, **kw)

    async def on_unmount(self) -> None:
        if self.agent_run is not None:
            await self.agent_run.stop()

    @property
    def conversation(self) -> Conversation:
        return self.query_one(Conversation)

    @property
    def prompt(self) -> PromptInput:
        return self.query_one(PromptInput)

    async def show_run_start(self) -> None:
        self.refresh_status()
        self.refresh_footer()
        worktree = self.prepared.sandbox_report.get("worktree")
        if worktree:
            await self.conversation.say(f"[worktree: {worktree['path']} (branch {worktree['branch']})]")
        self.query_one(TodoPanel).show_items(self.agent_run.todos())
        if self.loop.messages:
            await self.conversation.replay(self.loop.messages, self.loop.registry.title_of)
            await self.conversation.say(f"[resumed session {self.prepared.session.id}]")

    def _line(self, name: str) -> OneLine | None:
        found = self.screen_stack[0].query(f"#{name}") if self.screen_stack else None
        return found.first(OneLine) if found else None  # None: shutting down

    def refresh_status(self) -> None:
        if self.agent_run is not None:
            self.agent_run.refresh_context(self.status)
        line = self._line("status")
        if line is not None:
            line.show(status_text(self.status, max(self.size.width - 2, 20)))

    def refresh_footer(self) -> None:
        footer = self._line("footer")
        if footer is not None:
            job = self.jobs.state()
            footer.set_class(bool(job), "busy")
            footer.show(footer_text(self.ready, job))
            self.prompt.set_hint(waiting_hint(len(self.pending), len(self.jobs.queue)))

    def on_resize(self, event: events.Resize) -> None:
        self._screen_unknown()  # the terminal reflowed its screen
        if self.is_mounted:
            self.refresh_status()

    def _screen_unknown(self, *_: Any) -> None:
        """What the terminal shows is not our last frame any more: write the next one whole."""
        if self.frames is not None:
            self.frames.reset()

    def on_conversation_missed_output(self, message: Conversation.MissedOutput) -> None:
        self.query_one("#missed", Static).set_class(message.missed, "shown")

    def _display(self, screen: Screen[Any], renderable: Any) -> None:
        """Textual's seam that writes each frame to the terminal: write only what changed since the last."""
        if self.frames is not None and renderable is not None and not self.is_headless:
            scrolls = self._scroll_watch.moved(self.conversation) if screen is self.screen_stack[0] else []
            renderable = self.frames.reduce(renderable, self.console, screen, self.size, scrolls)
            if renderable is None:
                return
        super()._display(screen, renderable)

    # -- events ----------------------------------------------------------------------------------------

    async def handle(self, e: ev.Event) -> None:
        """Render one loop event; keep the status line (a subagent's turns and cost count) and checklist true."""
        assert self.agent_run is not None
        await self.conversation.handle(e)
        self.agent_run.note(e)
        inner = ev.innermost(e)
        if isinstance(inner, ev.TurnStarted):
            self.status.turns += 1
        elif isinstance(inner, ev.Usage):
            self.status.cost_usd = self.agent_run.session_cost(inner, self.status.cost_usd)
        elif isinstance(e, ev.TodoList):
            self.query_one(TodoPanel).show_items(e.items)
        elif plan_choice.plan_turn_ended(e, self.status.approval) and not self.jobs.queue:
            await plan_choice.offer(self)
        if isinstance(inner, (ev.TurnStarted, ev.Usage, ev.Compaction, ev.Done, ev.Failed, ev.ToolResultEvent)):
            self.refresh_status()

    async def approve(self, request: ApprovalRequest) -> ApprovalAnswer:
        """The gate's approver: the dialog, and the user's answer."""
        from ghostline.agent.tui.approval import ask  # the tools are loaded once a turn runs

        row = self.conversation.rows.get(request.call_id)
        if row is not None:
            row.awaiting_approval()
        return await ask(self, request)

    def send(self, text: str) -> None:
        """Start a turn with the user's message (the session file appears with the first one)."""
        assert self.agent_run is not None
        self.agent_run.interrupted = False
        self._quit_armed_at = None
        self.prepared.record_start()
        plan_choice.dismiss(self)

        async def turn() -> None:
            async for e in self.loop.run(text):
                await self.handle(e)

        self.jobs.start("working", turn)

    # -- input -----------------------------------------------------------------------------------------

    async def on_prompt_input_submitted(self, message: PromptInput.Submitted) -> None:
        text = message.text
        if text.strip():  # the box has recorded and emptied itself
            await self.submit(text)

    async def submit(self, text: str) -> None:
        """What the user sent (typed, or picked in the palette): a /command, a !command or a message."""
        if self.commands is None:
            self.pending.append(text)
            self.refresh_footer()
            return
        specs = self.command_specs()
        cmd = slash.parse(text, specs)
        if cmd is not None:
            await self.commands.run(cmd)
        elif not slash.is_message(text, specs):
            await self.commands.shell(text.lstrip()[1:].strip())
        else:
            message = await self.with_attachments(slash.unescape(text))
            if self.busy:
                self.jobs.queue.append(message)
                self.refresh_footer()
            else:
                self.send(message)

    async def on_plan_choice_chosen(self, message: plan_choice.PlanChoice.Chosen) -> None:
        await plan_choice.choose(self, message.accept)

    async def with_attachments(self, text: str) -> str:
        """`@path` mentions of files in the workspace attach them (images go with the next message sent); what
        could not be attached is said."""
        from ghostline.agent.attachments import attach_images  # the tools: loaded once the run is ready
        from ghostline.agent.mentions import expand_mentions

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
            await self.jobs.interrupt()
            return
        if self._quit_armed_at is not None and time.monotonic() - self._quit_armed_at < QUIT_WINDOW_S:
            await self.quit_app()
            return
        self._quit_armed_at = time.monotonic()
        self.notify("Press Ctrl+C again to quit.", timeout=QUIT_WINDOW_S)

    async def action_interrupt_turn(self) -> None:
        await self.jobs.interrupt()

    async def action_eof(self) -> None:
        box = self.prompt
        if box.text == "":
            await self.quit_app()
        elif self.focused is box:
            box.action_delete_right()

    def action_cycle_approval(self) -> None:
        if self.commands is None:
            return
        current = self.status.approval
        modes = list(APPROVAL_MODES)
        self.commands.set_approval(modes[(modes.index(current) + 1) % len(modes)] if current in modes else modes[0])

    def action_toggle_output(self) -> None:
        rows = list(self.conversation.rows.values())
        if rows:
            rows[-1].toggle()

    def action_scroll_conversation(self, pages: int) -> None:
        c = self.conversation
        c.scroll_to(y=c.scroll_y + pages * max(c.size.height - 2, 1), animate=False)

    def on_prompt_input_page_requested(self, message: PromptInput.PageRequested) -> None:
        self.action_scroll_conversation(message.pages)

    def action_jump_to_latest(self) -> None:
        self.conversation.jump_to_latest()

    async def quit_app(self) -> None:
        await self.jobs.cancel()
        self.exit(0)

    async def replace_run(self, opts: RunOptions, run: TuiRun, note: str) -> None:
        """/new, /clear, /resume: the current run closes (its session saved) and `run` takes over."""
        old, self.opts, self.agent_run = self.agent_run, opts, run
        assert old is not None
        old.close()
        await old.stop()
        self.status = run.status()
        self.jobs.queue.clear()
        await self.conversation.clear()
        await self.conversation.say(note.format(old=old.prepared.session.id, new=run.prepared.session.id))
        await self.show_run_start()
        self.start_servers()
