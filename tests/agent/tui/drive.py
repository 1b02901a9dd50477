"""Driving the real app with Textual's pilot: start it (the run prepares in its thread, as in `agent`), type,
wait for a turn, read what it shows. Waits poll the app's state; none sleeps for a fixed time."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

MODEL = "anthropic:claude-sonnet-5-5"


def make_app(repo: Path, approval: str = "auto", **kw: Any):
    from ghostline.agent.options import RunOptions
    from ghostline.agent.tui.app import GhostlineApp

    return GhostlineApp(RunOptions(model=MODEL, cwd=repo, approval=approval, sandbox="workspace-write", **kw))


async def until(pilot, cond: Callable[[], Any], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


@asynccontextmanager
async def running(app, size: tuple[int, int] = (120, 40)) -> AsyncIterator[Any]:
    """The app, started, with its run ready."""
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.ready or app.start_error is not None, "the run to be ready")
        assert app.start_error is None, app.start_error
        yield pilot


async def submit(app, pilot, text: str) -> None:
    box = app.prompt
    box.focus()
    box.text = text
    await pilot.press("enter")


async def turn_ends(app, pilot, timeout: float = 20.0) -> None:
    await until(pilot, lambda: app.jobs.worker is not None, "the turn to start", timeout)
    await until(pilot, lambda: not app.busy, "the turn to end", timeout)
    await pilot.pause()


async def run_to_end(app, pilot, text: str) -> None:
    app.jobs.worker = None
    await submit(app, pilot, text)
    await turn_ends(app, pilot)


def lines(app, kind: str | None = None) -> list[str]:
    from ghostline.agent.tui.rows import Line

    return [w.plain for w in app.query(Line) if kind is None or w.kind == kind]


def tool_rows(app) -> list[Any]:
    from ghostline.agent.tui.rows import ToolRow

    return list(app.query(ToolRow))


def answers(app) -> list[str]:
    from ghostline.agent.tui.answer import AssistantView

    return [v.text for v in app.query(AssistantView)]


def status(app) -> str:
    return str(app.query_one("#status").render())


def footer(app) -> str:
    return str(app.query_one("#footer").render())


def session_records(app) -> list[dict[str, Any]]:
    path = app.prepared.session.path
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def sent_messages(server) -> list[str]:
    """The text of the last user message of each request the model got."""
    out = []
    for r in server.requests:
        content = r.body["messages"][-1]["content"]
        out.append(content if isinstance(content, str) else json.dumps(content))
    return out
