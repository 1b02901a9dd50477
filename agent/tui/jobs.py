"""The app's one job at a time — a turn, /compact, a !command or /undo — and the messages queued behind it.

A job runs as a Textual worker, so Esc or Ctrl+C cancels it (a running command is killed by the cancellation)
and the app stays; a job that must not stop half-way (restoring files) is waited for instead. A job that fails
shows the error and keeps the session. When it ends, the queued messages go as one, or come back to the input
box if the user interrupted it.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from textual.worker import Worker

from ghostline.agent import events as ev

if TYPE_CHECKING:
    from ghostline.agent.tui.app import GhostlineApp


class Jobs:
    def __init__(self, app: GhostlineApp) -> None:
        self.app = app
        self.worker: Worker[Any] | None = None
        self.kind = ""
        self.started = 0.0
        self.interruptible = True
        self.queue: list[str] = []

    @property
    def busy(self) -> bool:
        return self.worker is not None and not self.worker.is_finished

    def state(self) -> str:
        """What the footer says while a job runs ("" when none does)."""
        if not (self.busy and self.kind):
            return ""
        return f"{self.kind} {int(time.monotonic() - self.started)}s" + (" · Esc interrupts" if self.interruptible
                                                                         else "")

    def start(self, kind: str, make: Callable[[], Awaitable[None]], interruptible: bool = True) -> None:
        self.kind, self.started, self.interruptible = kind, time.monotonic(), interruptible
        self.worker = self.app.run_worker(self._run(make), group="job", exit_on_error=False)
        self.app.refresh_footer()

    async def interrupt(self) -> None:
        """Esc, Ctrl+C: the running job stops; one that must not stop half-way goes on (the footer says which)."""
        if self.busy and self.interruptible:
            await self.cancel()

    async def cancel(self) -> None:
        """Leaving: the running job stops, or ends first when it must not stop half-way."""
        worker = self.worker
        if worker is None or worker.is_finished:
            return
        if self.interruptible:
            worker.cancel()
        with suppress(Exception, asyncio.CancelledError):
            await worker.wait()

    async def _run(self, make: Callable[[], Awaitable[None]]) -> None:
        app = self.app
        try:
            await make()
        except asyncio.CancelledError:
            await self._interrupted()
            raise
        except Exception as e:  # a bug or an unexpected failure: show it, keep the app and the session
            await self._failed(e)
        finally:
            with suppress(Exception):
                await app.conversation.end_assistant()
            app.conversation.settle_running()
            self.kind = ""
            app.call_later(self._after)

    async def _interrupted(self) -> None:
        run = self.app.agent_run
        assert run is not None
        run.interrupted = True
        with suppress(Exception):
            run.loop.mark_interrupted()
        with suppress(Exception):
            await self.app.conversation.say("[interrupted]", "warning")

    async def _failed(self, e: Exception) -> None:
        run = self.app.agent_run
        assert run is not None
        run.final = ev.Failed(f"{type(e).__name__}: {e}")
        with suppress(Exception):
            run.prepared.session.append({"type": "tui_error", "error": f"{type(e).__name__}: {e}",
                                         "traceback": traceback.format_exc()[-4000:]})
        with suppress(Exception):
            await self.app.conversation.say(f"error: {type(e).__name__}: {e}", "error")

    def _after(self) -> None:
        app = self.app
        if self.queue and not self.busy:
            text = "\n\n".join(self.queue)
            self.queue.clear()
            if self.worker is not None and self.worker.is_cancelled:  # the user stopped the job: the words come back
                box = app.prompt
                box.text = f"{text}\n{box.text}" if box.text else text
                box.move_cursor(box.document.end)
            else:
                app.send(text)
        app.refresh_status()
        app.refresh_footer()
