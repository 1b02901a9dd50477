"""A subagent's work in the conversation: a collapsible group under the `task` call that runs it, with one row
per tool call of its own and its messages. Open while it works; it folds to one line when its report is in."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget
from textual.widgets import Collapsible

from ghostline.agent import events as ev
from ghostline.agent.render import call_title
from ghostline.agent.tui.rows import Line, ToolRow

DONE_NOTES = {"error_max_turns": "stopped: the run's turn limit", "error_budget": "stopped: the run's budget"}


class SubagentGroup(Collapsible):
    DEFAULT_CSS = """
    SubagentGroup { margin: 0 0 0 3; padding: 0; border-top: none; background: transparent; }
    SubagentGroup > Contents { padding: 0 0 0 1; border-left: solid $primary-darken-2; }
    """

    def __init__(self, rows: dict[str, ToolRow]) -> None:
        super().__init__(title="subagent · starting", collapsed=False)
        self.rows = rows  # the conversation's: an approval prompt and Ctrl+O find the subagent's rows too
        self.calls = 0
        self.turns = 0
        self._diffs: dict[str, str] = {}

    async def add(self, widget: Widget) -> None:
        await self.query_one(Collapsible.Contents).mount(widget)

    async def handle(self, e: ev.Event) -> None:
        """Show one of the subagent's events (its streamed text shows whole, when its message completes)."""
        if isinstance(e, ev.TurnStarted):
            self.turns += 1
        elif isinstance(e, ev.ToolCall):
            self.calls += 1
            row = ToolRow(e.id, call_title(e))
            self.rows[e.id] = row
            await self.add(row)
        elif isinstance(e, ev.AssistantMessage):
            text = "".join(b.get("text", "") for b in e.message.get("content", []) if b.get("type") == "text")
            if text.strip():
                await self.add(Line(text.strip()))
        else:
            await self._update_row(e)
        if isinstance(e, (ev.Done, ev.Failed)):
            await self._ended(e)
        self.title = self._heading("working")

    async def _update_row(self, e: ev.Event) -> None:
        row = self.rows.get(getattr(e, "id", ""))
        if isinstance(e, ev.Diff):
            self._diffs[e.id] = e.diff
        elif row is None:
            return
        elif isinstance(e, ev.ToolOutput):
            row.add_output(e.text)
        elif isinstance(e, ev.ApprovalNeeded) and e.decision == "denied":
            row.set_status("denied", e.reason)
        elif isinstance(e, ev.ApprovalNeeded):
            row.restart_clock()
        elif isinstance(e, ev.ToolResultEvent):
            row.set_result(e.content, e.is_error, e.meta, self._diffs.pop(e.id, ""))

    async def _ended(self, e: ev.Done | ev.Failed) -> None:
        if isinstance(e, ev.Failed):
            await self.add(Line(f"error: {e.error}", "error"))
        elif e.subtype in DONE_NOTES:
            await self.add(Line(DONE_NOTES[e.subtype], "warning"))

    def _heading(self, state: str) -> str:
        return (f"subagent · {state} · {self.calls} tool call{'s' * (self.calls != 1)} · "
                f"{self.turns} turn{'s' * (self.turns != 1)}")

    def finish(self, is_error: bool) -> None:
        """Its report is the task call's result: fold the group to its title line (a click opens it again)."""
        self.title = self._heading("failed" if is_error else "done")
        self.collapsed = True

    def scrollback(self) -> Text:
        """The group as printed in the terminal's scrollback after the TUI closes: its title line."""
        return Text(f"    {self.title}", style="dim")
