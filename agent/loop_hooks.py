"""The moments of the loop that hooks see, as events: the session's first message (SessionStart), each prompt
(UserPromptSubmit), the model's end of turn (Stop), a compaction about to summarise (PreCompact).

The loop owns one `LoopHooks` (without hooks configured every moment passes at once) and asks it at each moment;
what the hooks decided is left on it for the loop to act on (`prompt_blocked`, `keep_going`, `stop_requested`).
Every event goes through the loop's `emit`, so the session records it and the transcript folds it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from ghostline.agent import events as ev
from ghostline.agent.hooks import Hooks, report_event
from ghostline.tools.base import ToolContext
from ghostline.tools.hooks import HookReport

MAX_STOP_HOOK_CONTINUES = 10  # a Stop hook that never lets go (ignoring stop_hook_active) cannot hold a run forever


class LoopHooks:
    def __init__(self, hooks: Hooks | None, ctx: Callable[[], ToolContext], emit: Callable[[ev.Event], ev.Event]):
        self.hooks = hooks
        self._ctx = ctx  # the loop's current context (front ends switch its approval mode)
        self._emit = emit
        self.started = False  # SessionStart fired (once per loop: the first message of the session here)
        self.prompt_blocked: str | None = None
        self.keep_going = False  # a Stop hook sent the model back to work
        self.stop_requested: str | None = None  # a hook's `"continue": false`: the run ends at the next step
        self.stop_continues = 0

    def _on(self, event: str) -> bool:
        return self.hooks is not None and self.hooks.handles(event)

    def new_run(self) -> None:
        self.prompt_blocked, self.keep_going, self.stop_requested, self.stop_continues = None, False, None, 0

    def report(self, report: HookReport, call_id: str = "") -> ev.Event:
        return self._emit(self.event(report, call_id))

    def event(self, report: HookReport, call_id: str = "") -> ev.Event:
        """The event a report becomes (not yet logged: the caller emits it where it belongs in the stream)."""
        if report.kind == "stop" and self.stop_requested is None:
            self.stop_requested = report.message
        return report_event(report, call_id)

    async def session_start(self, resumed: bool) -> AsyncIterator[ev.Event]:
        if self.started:
            return
        self.started = True
        if self.hooks is None or not self._on("SessionStart"):
            return
        context, reports = await self.hooks.session_started("resume" if resumed else "startup", self._ctx())
        for r in reports:
            yield self.report(r)
        if context:
            yield self._emit(ev.ContextNote(context, "hook"))

    async def prompt(self, text: str, images: list[dict[str, Any]] | None = None) -> AsyncIterator[ev.Event]:
        """The user's message (with its images), unless a UserPromptSubmit hook drops it (then `prompt_blocked`
        says why); what the hooks add for the model follows it."""
        if self.hooks is None or not self._on("UserPromptSubmit"):
            yield self._emit(ev.UserMessage(text, images or []))
            return
        verdict = await self.hooks.prompt_submitted(text, self._ctx())
        for r in verdict.reports:
            yield self.report(r)
        if verdict.blocked is not None:
            self.prompt_blocked = verdict.blocked
            return
        yield self._emit(ev.UserMessage(text, images or []))
        if verdict.context:
            yield self._emit(ev.ContextNote(verdict.context, "hook"))

    async def stop(self) -> AsyncIterator[ev.Event]:
        """The model ended its turn: a Stop hook that blocks sends it back to work (`keep_going`), told why."""
        self.keep_going = False
        if self.hooks is None or not self._on("Stop") or self.stop_requested is not None:
            return
        verdict = await self.hooks.stopping(self.stop_continues > 0, self._ctx())
        for r in verdict.reports:
            yield self.report(r)
        if verdict.keep_going is None or self.stop_requested is not None:
            return
        if self.stop_continues >= MAX_STOP_HOOK_CONTINUES:
            yield self._emit(ev.HookWarning("Stop", f"Stop hooks kept the model going {self.stop_continues} times "
                                                    f"in a row; the run ends anyway"))
            return
        self.stop_continues += 1
        self.keep_going = True
        yield self._emit(ev.ContextNote(f"[A Stop hook says the work is not finished: {verdict.keep_going}]", "hook"))

    def wants_pre_compact(self) -> bool:
        return self._on("PreCompact")

    async def pre_compact(self, trigger: str, focus: str = "") -> AsyncIterator[ev.Event]:
        if self.hooks is not None and self._on("PreCompact"):
            for r in await self.hooks.compacting(trigger, focus, self._ctx()):
                yield self.report(r)
