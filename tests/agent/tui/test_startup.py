"""Starting the TUI: the prompt works before the run is ready, what is sent meanwhile waits for it, and a
mistake in the options ends with one line and exit code 2 whether it is found before the first paint or after."""

from __future__ import annotations

import threading

import pytest

from tests.agent.tui.drive import MODEL, footer, lines, make_app, turn_ends, until
from tests.fakeserver import reply


@pytest.fixture
def slow_start(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """The run's preparation waits until the test sets the event."""
    from ghostline.agent.tui.run import TuiRun

    go = threading.Event()
    prepare = TuiRun.prepare.__func__

    def held(cls, *args, **kw):
        assert go.wait(30), "the test never let the run start"
        return prepare(cls, *args, **kw)

    monkeypatch.setattr(TuiRun, "prepare", classmethod(held))
    return go


async def test_what_is_sent_before_the_run_is_ready_waits_for_it(repo, fake_model_env, slow_start):
    fake_model_env.enqueue(reply("Got both."))
    app = make_app(repo)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert not app.ready and footer(app).startswith("starting")
        assert "anthropic:claude-sonnet-5-5" in str(app.query_one("#status").render())
        await pilot.press(*"hello", "enter")
        await pilot.press(*"there", "enter")
        assert app.pending == ["hello", "there"] and app.prompt.text == ""
        assert "2 messages waiting" in str(app.prompt.border_subtitle)
        assert fake_model_env.requests == []
        slow_start.set()
        await until(pilot, lambda: app.ready, "the run")
        await turn_ends(app, pilot)
        assert lines(app, "user") == ["› hello\n\nthere"]  # the second was queued behind the first
        assert footer(app).startswith("ready")


async def test_the_task_argument_goes_first(repo, fake_model_env, slow_start):
    fake_model_env.enqueue(reply("Task done."), reply("Typed done."))
    app = make_app(repo, task="the task")
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press(*"typed", "enter")
        slow_start.set()
        await until(pilot, lambda: len(fake_model_env.requests) == 2, "both turns")
        await turn_ends(app, pilot)
    first, second = (r.body["messages"][-1]["content"] for r in fake_model_env.requests)
    assert "the task" in str(first) and "typed" in str(second)


async def test_a_mistake_found_while_preparing_closes_the_app_with_exit_code_2(repo, fake_model_env, tmp_path):
    (tmp_path / "config" / "ghostline" / "config.toml").write_text("[retry]\nmax_tries = 3\n")
    app = make_app(repo)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: not app.is_running, "the app to close")
    assert app.return_code == 2 and "unknown [retry] setting" in str(app.start_error)
    assert app.close_run() is None


def test_the_same_mistake_from_run_tui_is_one_line(repo, fake_model_env, tmp_path, monkeypatch, capsys):
    from ghostline.agent.options import RunOptions
    from ghostline.agent.tui import launch

    class Stub:
        """The app as `run_tui` sees it when preparing failed: no terminal needed."""

        def __init__(self, opts, start) -> None:
            from ghostline.agent.providers.base import ConfigError

            self.start_error = ConfigError("unknown [retry] setting(s) max_tries")
            self.return_code = 2
            self.scrollback: list = []

        def run(self) -> None:
            pass

        def close_run(self) -> None:
            return None

    monkeypatch.setattr("ghostline.agent.tui.app.GhostlineApp", Stub)
    assert launch.run_tui(RunOptions(model=MODEL, cwd=repo)) == 2
    err = capsys.readouterr().err
    assert err == "agent: unknown [retry] setting(s) max_tries\n"


@pytest.mark.parametrize("kw, message", [
    ({}, "no model configured"),
    ({"model": "gpt-4o"}, "has no provider"),
    ({"model": MODEL, "resume": "nope"}, "no session 'nope'"),
    ({"model": MODEL, "cwd": "/no/such/dir"}, "working directory /no/such/dir does not exist"),
])
def test_mistakes_found_before_the_first_paint(repo, monkeypatch, capsys, kw, message):
    from pathlib import Path

    from ghostline.agent.options import RunOptions
    from ghostline.agent.tui import run_tui

    monkeypatch.chdir(repo)
    kw = {k: Path(v) if k == "cwd" else v for k, v in kw.items()}
    assert run_tui(RunOptions(**kw)) == 2
    err = capsys.readouterr().err
    assert err.startswith("agent: ") and err.count("\n") == 1 and message in err


def test_mistakes_before_the_first_paint_do_not_import_the_loop(repo):
    import subprocess
    import sys

    code = ("import sys; from ghostline.agent.options import RunOptions; from ghostline.agent.tui import run_tui; "
            f"code = run_tui(RunOptions(cwd=__import__('pathlib').Path({str(repo)!r}))); "
            "print(code, 'ghostline.agent.loop' in sys.modules, 'textual.app' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["2", "False", "False"], out.stderr
