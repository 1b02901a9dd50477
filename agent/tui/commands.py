"""What the TUI's slash commands do (the table and parsing are in slash.py; the palette over them in palette.py).

Imported once the run is ready: the commands use the loop, the session and the runner."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import TYPE_CHECKING

from rich.syntax import Syntax

from ghostline.agent.custom_commands import CustomCommand, load_commands
from ghostline.agent.loop import UndoError
from ghostline.agent.options import RunOptions, UsageError
from ghostline.agent.plan import PLAN_MODE
from ghostline.agent.providers.base import ConfigError
from ghostline.agent.runner import close_quietly, command_scope
from ghostline.agent.session import list_sessions, session_totals, sessions_root
from ghostline.agent.tui import slash
from ghostline.agent.tui.rows import Line
from ghostline.agent.tui.run import TuiRun
from ghostline.agent.tui.start import START_ERRORS
from ghostline.agent.tui.status import tokens
from ghostline.dirs import config_dir, data_dir
from ghostline.sandbox.modes import APPROVAL_MODES

if TYPE_CHECKING:
    from ghostline.agent.tui.app import GhostlineApp

CUSTOM_RESCAN_S = 2.0  # completion asks for the table on every keystroke; files added meanwhile show soon after
INIT_PROMPT = (
    "Draft an AGENT.md for this repository: the instructions a coding agent needs to work here. Explore first "
    "(README, build files, CI config, the layout, how tests run), then write AGENT.md at the repository root "
    "with: the commands to build, test and lint; the layout and where things live; the conventions the code "
    "follows; anything surprising. Keep it short and true; if an AGENT.md or AGENTS.md exists, improve it "
    "instead of starting over."
)


class SlashCommands:
    """Runs an Invocation against the app; each command is one method `cmd_<name>`."""

    def __init__(self, app: GhostlineApp) -> None:
        self.app = app
        self._custom: dict[str, CustomCommand] = {}
        self._custom_scanned: tuple[object, float] | None = None

    def specs(self) -> tuple[slash.CommandSpec, ...]:
        custom = tuple(slash.CommandSpec(c.name, c.argument_hint, f"{c.description} ({c.source})".strip())
                       for c in self.custom_commands().values())
        return slash.BUILTIN + custom

    def custom_commands(self) -> dict[str, CustomCommand]:
        """The project's and the user's command files (a built-in command's name stays the built-in's)."""
        root = self.app.prepared.root if self.app.prepared is not None else None
        now = time.monotonic()
        if root is None:
            return {}
        if self._custom_scanned is None or self._custom_scanned[0] != root or \
                now - self._custom_scanned[1] > CUSTOM_RESCAN_S:
            builtin = {c.name for c in slash.BUILTIN} | set(slash.ALIASES)
            found, _ = load_commands(root, config_dir())
            self._custom = {name: c for name, c in found.items() if name not in builtin}
            self._custom_scanned = (root, now)
        return self._custom

    async def say(self, text: str, kind: str = "notice") -> None:
        await self.app.conversation.say(text, kind)

    async def run(self, cmd: slash.Invocation) -> None:
        if cmd.spec is None:
            await self.say(f"unknown command /{cmd.name}; /help lists the commands", "error")
            return
        if self.app.busy and not cmd.spec.while_busy:
            await self.say(f"/{cmd.name} must wait until the running turn ends (Esc interrupts it)", "error")
            return
        custom = self.custom_commands().get(cmd.name)
        if custom is not None:
            await self.run_custom(custom, cmd.arg)
            return
        await getattr(self, f"cmd_{cmd.name}")(cmd.arg)

    async def run_custom(self, command: CustomCommand, arg: str) -> None:
        """`/name args` of a command file: its prompt goes to the model, within its allowed-tools and model."""
        try:
            scope, warnings = command_scope(self.app.prepared, command)
        except UsageError as e:
            await self.say(f"/{command.name}: {e}", "error")
            return
        for w in warnings:
            await self.say(w, "warning")
        text = await self.app.with_attachments(command.expand(arg))
        self.app.loop.scope_next_message(scope)
        self.app.send(text)

    # -- conversation ------------------------------------------------------------------------------------

    async def cmd_help(self, arg: str) -> None:
        await self.say(slash.help_text(self.specs()), "help")

    async def cmd_exit(self, arg: str) -> None:
        await self.app.quit_app()

    async def cmd_init(self, arg: str) -> None:
        self.app.send(INIT_PROMPT + (f"\n\nAlso: {arg}" if arg else ""))

    async def cmd_compact(self, focus: str) -> None:
        loop = self.app.loop

        async def compact() -> None:
            shown = 0
            try:
                async for e in loop.compact(focus or None):
                    shown += 1
                    await self.app.handle(e)
            except Exception as e:  # CompactionFailed, a summariser's provider error
                await self.say(f"/compact: {e}", "error")
                return
            if shown == 0:
                await self.say("[compaction: nothing to compact — a summary would not be smaller than the "
                               "conversation]")

        await self.say("[compacting the conversation…]")
        self.app.jobs.start("compacting", compact)

    async def shell(self, command: str) -> None:
        """`!command`: run it in the sandbox now; the model reads its output with the next message."""
        if self.app.busy:
            await self.say("!commands wait until the running turn ends (Esc interrupts it)", "error")
            return
        app = self.app
        call_id = f"user-shell-{time.monotonic_ns()}"

        async def run() -> None:
            await app.conversation.add_row(call_id, f"! {command}")
            try:
                async for e in app.loop.shell(command, call_id):
                    await app.handle(e)
            except Exception as e:  # the sandbox cannot run it: one line
                await self.say(f"!{command}: {e}", "error")

        app.prepared.record_start()
        app.jobs.start("running", run)

    # -- files -------------------------------------------------------------------------------------------

    async def cmd_undo(self, arg: str) -> None:
        try:
            turns = slash.parse_count(arg)
        except ValueError as e:
            await self.say(f"/undo: {e}", "error")
            return

        async def undo() -> None:
            try:
                note = await self.app.loop.undo(turns)
            except UndoError as e:
                await self.say(f"/undo: {e}", "error")
                return
            await self.say(note.text, "warning")

        # A job: the footer shows it, and a message sent meanwhile waits for the files to be back. Esc does not
        # stop it half-way: files half restored, and the model not told which.
        self.app.jobs.start("undoing", undo, interruptible=False)

    async def cmd_diff(self, arg: str) -> None:
        try:
            diff = await asyncio.to_thread(self.app.loop.session_diff)
        except UndoError as e:
            await self.say(f"/diff: {e}", "error")
            return
        if not diff.strip():
            await self.say("[no changes to the files in this session]")
            return
        view = Line("", "help")
        view.update(Syntax(diff, "diff", theme="ansi_dark", word_wrap=True))
        await self.app.conversation.show(view)

    # -- settings ----------------------------------------------------------------------------------------

    async def cmd_model(self, spec: str) -> None:
        app = self.app
        if not spec:
            await self.say(f"model: {app.prepared.model_label} (/model PROVIDER:NAME switches)")
            return
        try:
            old = app.agent_run.switch_model(spec)
        except ConfigError as e:
            await self.say(f"/model: {e}", "error")
            return
        await close_quietly(old)
        app.status.model = app.prepared.model_label
        app.refresh_status()
        await self.say(f"[the next turns go to {spec}]")

    async def cmd_approval(self, mode: str) -> None:
        if not mode:
            await self.say(f"approval: {self.app.status.approval} (one of {', '.join(APPROVAL_MODES)}; "
                           f"Shift+Tab cycles)")
            return
        if mode not in APPROVAL_MODES:
            await self.say(f"/approval: expected one of {', '.join(APPROVAL_MODES)}, got {mode!r}", "error")
            return
        self.set_approval(mode)

    async def cmd_plan(self, task: str) -> None:
        """Plan mode from now on; with a task, send it."""
        self.set_approval(PLAN_MODE)
        if task:
            self.app.send(task)

    def set_approval(self, mode: str) -> None:
        app = self.app
        app.loop.set_approval_mode(mode)
        app.status.approval = mode
        app.prepared.sandbox_report["approval"] = mode
        app.refresh_status()
        app.notify(f"approval: {mode}", timeout=2)

    # -- reports -----------------------------------------------------------------------------------------

    async def cmd_cost(self, arg: str) -> None:
        t = session_totals(self.app.prepared.session.records())
        cost = f"${t.cost_usd:.4f}" if t.cost_usd is not None else "unknown (no price for this model)"
        await self.say(f"This session: {t.turns} turns · input {t.input_tokens:,} tokens ({t.cached_tokens:,} "
                       f"from cache) · output {t.output_tokens:,} tokens · cost {cost}", "help")

    async def cmd_context(self, arg: str) -> None:
        parts = self.app.loop.context_parts(self.app.prepared.instructions)
        usage = self.app.loop.context_usage()
        if not parts or usage is None:
            await self.say("/context: no token accounting in this build", "error")
            return
        lines = [f"Context: {tokens(usage.tokens)} of {tokens(usage.window)} tokens ({usage.fraction:.0%}; "
                 f"compaction summarises from ~70%)"]
        lines += [f"  {name:<22} {tokens(n):>7}  ({n / max(usage.window, 1):.0%})" for name, n in parts]
        await self.say("\n".join(lines), "help")

    # -- sessions ----------------------------------------------------------------------------------------

    async def cmd_sessions(self, arg: str) -> None:
        app = self.app
        infos = await asyncio.to_thread(list_sessions, sessions_root(data_dir()), app.prepared.cwd)
        if not infos:
            await self.say("no saved sessions in this directory")
            return
        lines = [f"Sessions in {app.prepared.cwd} (newest first; /resume ID switches):"]
        for i in infos[:20]:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(i.created))
            task = " ".join(i.task.split())
            task = task if len(task) <= 60 else task[:59] + "…"
            mark = "*" if i.id == app.prepared.session.id else " "
            lines.append(f"{mark} {i.id}  {when}  {i.status:<22} {task}")
        if len(infos) > 20:
            lines.append(f"  … and {len(infos) - 20} more (`agent sessions`)")
        await self.say("\n".join(lines), "help")

    async def cmd_resume(self, arg: str) -> None:
        if not arg:
            await self.cmd_sessions("")
            return
        opts = dataclasses.replace(self.app.opts, resume=arg.split()[0], cont=False, task=None)
        await self._switch(opts, "[session {old} saved; now in resumed session {new}]")

    async def cmd_new(self, arg: str) -> None:
        opts = dataclasses.replace(self.app.opts, resume=None, cont=False, task=None)
        await self._switch(opts, "[session {old} saved; now in new session {new}]")

    async def cmd_clear(self, arg: str) -> None:
        await self.cmd_new(arg)

    async def _switch(self, opts: RunOptions, note: str) -> None:
        """Prepare the next run first, so that a mistake (no such session) keeps the current one."""
        try:
            run = await asyncio.to_thread(TuiRun.prepare, opts, self.app.approve)
        except START_ERRORS as e:
            await self.say(f"error: {e}", "error")
            return
        await self.app.replace_run(opts, run, note)
