"""The scrolling conversation: loop events become entries (user lines, streamed Markdown, tool rows, notices).

It follows new output while the view is at the bottom; once the user scrolls up it stays where they are and
says that more arrived, until End (or scrolling down) brings it back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from rich.console import RenderableType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widget import Widget

from ghostline.agent import events as ev
from ghostline.agent.render import call_title
from ghostline.agent.tui.rows import Line, ToolRow, seconds
from ghostline.agent.tui.subagents import SubagentGroup

if TYPE_CHECKING:
    from ghostline.agent.tui.answer import AssistantView

REPLAY_MESSAGES = 60
ATTACHMENT_START = "<attached_file "


def assistant_view(text: str = "") -> AssistantView:
    """Markdown needs rich.markdown and markdown-it (~50 ms): loaded with the first answer, not before the
    first paint (the thread that prepares the run loads them meanwhile)."""
    from ghostline.agent.tui.answer import AssistantView

    return AssistantView(text)


def typed_part(text: str) -> str:
    """What the user typed, without the files their @mentions attached (those are listed once, not dumped)."""
    head, sep, _ = text.partition("\n\n" + ATTACHMENT_START)
    if not sep:
        return text
    paths = re.findall(r'<attached_file path="([^"]*)"', text)
    return f"{head}  [attached: {', '.join(paths)}]"


class Conversation(VerticalScroll):
    DEFAULT_CSS = """
    Conversation { height: 1fr; scrollbar-size-vertical: 1; }
    """

    class MissedOutput(Message):
        """New output arrived while the user was scrolled up (or they came back down: `missed` is False)."""

        def __init__(self, missed: bool) -> None:
            super().__init__()
            self.missed = missed

    def __init__(self, **kw: Any) -> None:
        super().__init__(can_focus=False, **kw)
        self.rows: dict[str, ToolRow] = {}
        self.groups: dict[str, SubagentGroup] = {}  # a running subagent's work, by the task call's id
        self._assistant: AssistantView | None = None
        self._diffs: dict[str, str] = {}
        self._missed = False

    # -- following the output ------------------------------------------------------------------------------

    @property
    def at_bottom(self) -> bool:
        return self.scroll_y >= self.max_scroll_y - 1

    @property
    def following(self) -> bool:
        """Anchored to the bottom and not scrolled away by the user (Textual releases the anchor when they
        scroll, and restores it when they come back down)."""
        return self.is_anchored and not getattr(self, "_anchor_released", False)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if self._missed and (self.following or self.at_bottom):
            self._set_missed(False)

    def _set_missed(self, missed: bool) -> None:
        if missed != self._missed:
            self._missed = missed
            self.post_message(self.MissedOutput(missed))

    def jump_to_latest(self) -> None:
        self.scroll_end(animate=False)
        self.anchor()
        self._set_missed(False)

    async def show(self, widget: Widget) -> Widget:
        await self.mount(widget)
        if not self.following:
            self._set_missed(True)
        return widget

    async def say(self, text: str, kind: str = "notice") -> Line:
        line = Line(text, kind)
        await self.show(line)
        return line

    # -- events --------------------------------------------------------------------------------------------

    async def end_assistant(self) -> None:
        if self._assistant is not None:
            view, self._assistant = self._assistant, None
            view.finish()

    async def clear(self) -> None:
        """Empty, for another session."""
        self._assistant = None
        self.rows.clear()
        self._diffs.clear()
        await self.remove_children()

    async def handle(self, e: ev.Event) -> None:
        """Show one loop event (those that show nothing here are handled by the app: usage, done, ...)."""
        handler = _HANDLERS.get(type(e))
        if handler is not None:
            await handler(self, e)

    async def _user(self, e: ev.UserMessage) -> None:
        await self.say(f"› {typed_part(e.text)}", "user")

    async def _delta(self, e: ev.TextDelta) -> None:
        if self._assistant is None:
            self._assistant = assistant_view()
            await self.show(self._assistant)
        self._assistant.add(e.text)

    async def _assistant_message(self, e: ev.AssistantMessage) -> None:
        streamed = self._assistant is not None
        await self.end_assistant()
        if not streamed:  # a provider that does not stream: show the text whole
            text = "".join(b.get("text", "") for b in e.message.get("content", []) if b.get("type") == "text")
            if text.strip():
                await self.show(assistant_view(text))

    async def _tool_call(self, e: ev.ToolCall) -> None:
        await self.end_assistant()
        await self.add_row(e.id, call_title(e))

    async def add_row(self, call_id: str, title: str) -> ToolRow:
        row = ToolRow(call_id, title)
        self.rows[call_id] = row
        await self.show(row)
        return row

    async def _tool_output(self, e: ev.ToolOutput) -> None:
        row = self.rows.get(e.id)
        if row is not None:
            row.add_output(e.text)

    async def _approval(self, e: ev.ApprovalNeeded) -> None:
        row = self.rows.get(e.id)
        if row is not None and e.decision == "denied":
            row.set_status("denied", e.reason)
        elif row is not None:
            row.restart_clock()  # its time is its own run, not the wait for an answer
        if e.remembered_rule:
            await self.say(f"[always allowed from now on in this project: {e.remembered_rule}]")

    async def _diff(self, e: ev.Diff) -> None:
        self._diffs[e.id] = e.diff

    async def _tool_result(self, e: ev.ToolResultEvent) -> None:
        row = self.rows.get(e.id)
        if row is not None:
            row.set_result(e.content, e.is_error, e.meta, self._diffs.pop(e.id, ""))
        group = self.groups.pop(e.id, None)
        if group is not None:
            group.finish(e.is_error)

    async def _subagent(self, e: ev.SubagentEvent) -> None:
        """A subagent's event, in the group under the task call that runs it."""
        group = self.groups.get(e.parent_tool_use_id)
        if group is None:
            group = self.groups[e.parent_tool_use_id] = SubagentGroup(self.rows)
            row = self.rows.get(e.parent_tool_use_id)
            await (self.mount(group, after=row) if row is not None else self.show(group))
        await group.handle(e.event)

    async def _shell_run(self, e: ev.ShellRun) -> None:
        row = self.rows.get(e.id) or await self.add_row(e.id, f"! {e.command}")
        row.set_result(e.output, e.timed_out, {"exit_code": e.exit_code, "duration_ms": e.duration_ms,
                                               "timed_out": e.timed_out})

    async def _note(self, e: ev.ContextNote) -> None:
        await self.say(e.text)

    async def _hook(self, e: ev.HookBlocked | ev.HookWarning) -> None:
        said = f"blocked by a {e.hook_event} hook: {e.reason}" if isinstance(e, ev.HookBlocked) else \
            f"{e.hook_event} hook: {e.message}"
        await self.say(f"[{said}]", "warning")

    async def _compaction(self, e: ev.Compaction) -> None:
        detail = f" · {e.detail}" if e.detail else ""
        await self.say(f"[compaction: {e.stage} {e.tokens_before:,} → {e.tokens_after:,} tokens{detail}]")

    async def _retry(self, e: ev.Retry) -> None:
        # The retried answer replaces the partial one: drop what streamed before the cut.
        if self._assistant is not None:
            view, self._assistant = self._assistant, None
            await view.remove()
        await self.say(f"[retrying the turn (attempt {e.attempt}) in {e.delay_s:.1f}s: {e.error}]", "warning")

    async def _verify_started(self, e: ev.VerificationStarted) -> None:
        await self.end_assistant()
        await self.say(f"→ verify {e.command} (attempt {e.attempt} of {e.max_attempts})")

    async def _verify_result(self, e: ev.VerificationResult) -> None:
        if e.passed:
            await self.say(f"✓ verification passed ({seconds(e.duration_ms)})")
        else:
            how = "timed out" if e.timed_out else f"exit {e.exit_code}"
            await self.say(f"✗ verification failed ({how}, {seconds(e.duration_ms)})", "error")

    async def _done(self, e: ev.Done) -> None:
        await self.end_assistant()
        note = {"error_max_turns": f"stopped: reached the turn limit ({e.num_turns} turns)",
                "error_budget": "stopped: reached the token or cost budget",
                "error_verification": f"stopped: {e.result}"}.get(e.subtype)
        if note:
            await self.say(note, "warning")

    async def _failed(self, e: ev.Failed) -> None:
        await self.end_assistant()
        await self.say(f"error: {e.error}", "error")

    def settle_running(self) -> None:
        """After a cancelled turn: rows still running were interrupted."""
        for row in self.rows.values():
            if row.status == "running":
                row.set_status("interrupted", "interrupted")
        self._diffs.clear()

    # -- a resumed conversation ----------------------------------------------------------------------------

    async def replay(self, messages: list[Any], title_of: Callable[[str, dict[str, Any]], str]) -> None:
        """Show the tail of a resumed conversation (from the transcript the loop starts from)."""
        results = {b.tool_use_id: b for m in messages for b in m.tool_results}
        shown = messages[-REPLAY_MESSAGES:]
        if len(shown) < len(messages):
            await self.say(f"[{len(messages) - len(shown)} earlier messages not shown]")
        for m in shown:
            for b in m.content:
                await self._replay_block(m.role, b, results, title_of)

    async def _replay_block(self, role: str, b: Any, results: dict[str, Any],
                            title_of: Callable[[str, dict[str, Any]], str]) -> None:
        kind = getattr(b, "type", "")
        if kind == "summary":
            await self.say("[earlier conversation summarised]")
        elif kind == "text" and b.text.strip():
            await (self.say(f"› {typed_part(b.text)}", "user") if role == "user" else self.show(assistant_view(b.text)))
        elif kind == "tool_use":
            row = await self.add_row(b.id, title_of(b.name, b.input))
            r = results.get(b.id)
            if r is not None:
                row.set_result(r.content, r.is_error, r.meta)

    # -- the scrollback printed after the TUI closes --------------------------------------------------------

    def transcript(self) -> Iterable[RenderableType]:
        for child in self.children:
            scrollback = getattr(child, "scrollback", None)
            if scrollback is not None:
                yield scrollback()


_HANDLERS: dict[type, Callable[[Conversation, Any], Any]] = {
    ev.UserMessage: Conversation._user,
    ev.TurnStarted: lambda c, e: c.end_assistant(),
    ev.TextDelta: Conversation._delta,
    ev.AssistantMessage: Conversation._assistant_message,
    ev.ToolCall: Conversation._tool_call,
    ev.ToolOutput: Conversation._tool_output,
    ev.ApprovalNeeded: Conversation._approval,
    ev.Diff: Conversation._diff,
    ev.ToolResultEvent: Conversation._tool_result,
    ev.SubagentEvent: Conversation._subagent,
    ev.ShellRun: Conversation._shell_run,
    ev.ContextNote: Conversation._note,
    ev.HookBlocked: Conversation._hook,
    ev.HookWarning: Conversation._hook,
    ev.Compaction: Conversation._compaction,
    ev.Retry: Conversation._retry,
    ev.VerificationStarted: Conversation._verify_started,
    ev.VerificationResult: Conversation._verify_result,
    ev.Done: Conversation._done,
    ev.Failed: Conversation._failed,
}
