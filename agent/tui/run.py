"""The run the TUI drives: its loop and session, prepared off the UI thread, and closed at the end.

Importing this module loads the loop, the tools and the runner; the app imports it in the thread that prepares
the run, after its first paint.
"""

from __future__ import annotations

from typing import Any

from ghostline.agent import events as ev
from ghostline.agent.options import RunOptions
from ghostline.agent.runner import PreparedRun, close_quietly, finish_run, prepare_run, switch_model
from ghostline.agent.session import latest_todos, session_totals
from ghostline.agent.tui.status import StatusInfo
from ghostline.compaction.tokens import load_encoding_in_background
from ghostline.tools import Approver


class TuiRun:
    """One session's run. `final`/`interrupted` feed the result written when it closes."""

    def __init__(self, opts: RunOptions, prepared: PreparedRun) -> None:
        self.opts = opts
        self.prepared = prepared
        self.final: ev.Event | None = None
        self.interrupted = False
        self._closed = False
        self._cost_before = session_totals(prepared.session.records()).cost_usd

    @classmethod
    def prepare(cls, opts: RunOptions, approver: Approver) -> TuiRun:
        """Config → model → tools → loop (slow: imports the provider's SDK). Raises UsageError/ConfigError.
        The token encoding loads alongside: the status line counts the context from the first turn on."""
        load_encoding_in_background()
        return cls(opts, prepare_run(opts, headless=False, approver=approver))

    @property
    def loop(self) -> Any:
        return self.prepared.loop

    def status(self) -> StatusInfo:
        """The status line of a run that has just started (a resumed one keeps its cost and turns)."""
        rep, p = self.prepared.sandbox_report, self.prepared
        totals = session_totals(p.session.records())
        info = StatusInfo(model=p.model_label, sandbox=rep["mode"], level=rep["level"], approval=rep["approval"],
                          cost_usd=totals.cost_usd, turns=totals.turns, session=p.session.id)
        self.refresh_context(info)
        return info

    def refresh_context(self, info: StatusInfo) -> None:
        usage = self.loop.context_usage()
        if usage is not None:
            info.context_tokens, info.context_window = usage.tokens, usage.window

    def session_cost(self, e: ev.Usage, shown: float | None) -> float | None:
        """Usage events count this run's cost; the status line shows the session's."""
        if e.cost_usd is None:
            return shown
        return (self._cost_before or 0.0) + e.cost_usd

    def note(self, e: ev.Event) -> None:
        self.prepared.observe(e)
        if isinstance(e, (ev.Done, ev.Failed)):
            self.final = e

    def todos(self) -> list[dict[str, Any]]:
        """The checklist the session last had (a resumed session shows it again)."""
        return latest_todos(self.prepared.session.records())

    def switch_model(self, spec: str) -> Any:
        """/model: returns the provider it replaced (close it). Raises ConfigError."""
        return switch_model(self.prepared, spec)

    def close(self) -> dict[str, Any] | None:
        """Write the result record and close the session (idempotent; nothing for a session never used)."""
        if self._closed:
            return None
        self._closed = True
        try:
            if not self.prepared.session.exists:
                return None
            return finish_run(self.prepared, self.final, self.interrupted)
        finally:
            self.prepared.session.close()

    async def stop(self) -> None:
        """The session's MCP servers and the provider's connections (after `close`, or when the app ends)."""
        await self.prepared.stop()
        await close_quietly(self.loop.provider)
