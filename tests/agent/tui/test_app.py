"""The TUI end to end: Textual's pilot drives the real app, which drives the real loop against the fake model
server (real SDKs, real tools, real sandbox policy) in a throwaway git repository."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.agent.tui.drive import (
    MODEL,
    answers,
    footer,
    lines,
    make_app,
    run_to_end,
    running,
    session_records,
    status,
    submit,
    tool_rows,
    until,
)
from tests.fakeserver import reply, server_error


async def test_task_streams_markdown_and_tool_lines(repo, fake_model_env):
    from ghostline.agent.tui.answer import AssistantView

    fake_model_env.enqueue(reply("Let me look at the file first.", [("read", {"path": "calc.py"})]),
                           reply("The `add` function **adds** two numbers.\n\n- a\n- b", chunk_size=5))
    app = make_app(repo)
    async with running(app) as pilot:
        line = status(app)
        assert MODEL in line and "workspace-write" in line
        assert "approval auto" in line and "ctx " in line
        await run_to_end(app, pilot, "what does calc.py do?")
        views = list(app.query(AssistantView))
        assert [v.text for v in views] == ["Let me look at the file first.",
                                           "The `add` function **adds** two numbers.\n\n- a\n- b"]
        assert not any(v.streaming for v in views)  # every stream was finished
        shown = views[1].plain_lines()
        assert "The add function adds two numbers." in shown  # rendered as Markdown: no ** or backticks
        assert any(x.strip().startswith("• a") for x in shown)
        [tv] = tool_rows(app)
        assert tv.status == "ok" and "read calc.py" in tv.headline() and "✓" in tv.headline()
        assert "return a + b" in tv.output
        assert "› what does calc.py do?" in lines(app, "user")
        line = status(app)
        assert "2 turns" in line and "$" in line
        assert app.agent_run.final is not None and app.agent_run.final.type == "done"
    # The model saw the tool result of the real read tool.
    assert "return a + b" in json.dumps(fake_model_env.requests[1].body["messages"])
    result = app.close_run()
    assert result["subtype"] == "success" and result["num_turns"] == 2
    assert session_records(app)[-1]["type"] == "result"


async def test_approval_modal_allow_applies_the_write(repo, fake_model_env):
    from ghostline.agent.tui.approval import ApprovalScreen

    fake_model_env.enqueue(reply("Writing it.", [("write", {"path": "notes.txt", "content": "hello tui\n"})]),
                           reply("Wrote notes.txt."))
    app = make_app(repo, approval="ask")
    async with running(app) as pilot:
        await submit(app, pilot, "write a note")
        await until(pilot, lambda: isinstance(app.screen, ApprovalScreen), "the approval modal")
        screen = app.screen
        assert screen.request.preview.kind == "diff" and "+hello tui" in screen.request.preview.text
        assert not (repo / "notes.txt").exists()
        await pilot.press("y")
        await until(pilot, lambda: not app.busy, "the turn to end")
        assert (repo / "notes.txt").read_text() == "hello tui\n"
        [tv] = tool_rows(app)
        assert tv.status == "ok" and "+hello tui" in tv.diff
    assert [Path(p).name for p in app.close_run()["files_changed"]] == ["notes.txt"]


async def test_approval_modal_deny_tells_the_model(repo, fake_model_env):
    from ghostline.agent.tui.approval import ApprovalScreen

    fake_model_env.enqueue(reply("", [("read", {"path": "calc.py"})]),
                           reply("", [("edit", {"path": "calc.py", "old_string": "a + b", "new_string": "a - b"})]),
                           reply("Understood, I will not change it."))
    app = make_app(repo, approval="ask")
    async with running(app) as pilot:
        await submit(app, pilot, "break calc.py")
        await until(pilot, lambda: isinstance(app.screen, ApprovalScreen), "the approval modal")
        preview = app.screen.request.preview.text
        assert "-    return a + b" in preview and "+    return a - b" in preview
        await pilot.press("n")
        await until(pilot, lambda: not app.busy, "the turn to end")
        assert not isinstance(app.screen, ApprovalScreen)
        [_, tv] = tool_rows(app)
        assert tv.status == "denied"
    assert (repo / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    assert "declined" in json.dumps(fake_model_env.requests[2].body["messages"])


async def test_help_unknown_command_sessions_and_new(repo, fake_model_env):
    app = make_app(repo)
    async with running(app) as pilot:
        await submit(app, pilot, "/help")
        await pilot.pause()
        [help_text] = lines(app, "help")
        for cmd in ("/help", "/undo", "/compact", "/sessions", "/new", "/exit", "/model", "/diff", "/context"):
            assert cmd in help_text
        await submit(app, pilot, "/frobnicate now")
        await pilot.pause()
        errors = lines(app, "error")
        assert errors == ["unknown command /frobnicate; /help lists the commands"]
        assert "\n" not in errors[0]
        box = app.prompt
        box.text = "draft"
        box.move_cursor((0, 0))
        await pilot.press("up")
        assert box.text == "/frobnicate now"
        await pilot.press("up", "up")
        assert box.text == "/help"
        await pilot.press("down")
        assert box.text == "/frobnicate now"
        await pilot.press("down")
        assert box.text == "draft"
        box.text = ""
        first = app.prepared.session.id
        await submit(app, pilot, "/new")
        await until(pilot, lambda: app.prepared.session.id != first, "a new session")
        assert first in str(app.query_one("#conversation").children[0].render())
        await submit(app, pilot, "/sessions")
        await pilot.pause()
        # Neither session got a message: neither left a file behind.
        assert lines(app)[-1] == "no saved sessions in this directory"
        await submit(app, pilot, "/resume no-such-session")
        await pilot.pause()
        assert "no session 'no-such-session'" in lines(app, "error")[-1]
    assert fake_model_env.requests == []  # no command reached the model


async def test_provider_error_is_shown_and_the_app_survives(repo, fake_model_env):
    fake_model_env.enqueue(server_error(500), server_error(500), reply("Back on my feet."))
    app = make_app(repo)
    async with running(app) as pilot:
        await run_to_end(app, pilot, "hello")
        assert any(x.startswith("[retrying the turn (attempt 1)") for x in lines(app, "warning"))
        [err] = lines(app, "error")
        assert err.startswith("error: ") and app.agent_run.final.type == "failed"
        assert app.is_running
        await run_to_end(app, pilot, "try again")
        assert answers(app) == ["Back on my feet."]
        assert app.agent_run.final.type == "done"


async def test_ctrl_c_cancels_the_running_command_and_keeps_the_app(repo, fake_model_env):
    fake_model_env.enqueue(reply("Waiting.", [("bash", {"command": "sleep 30"})]), reply("Hello again."))
    app = make_app(repo)
    async with running(app) as pilot:
        await submit(app, pilot, "wait a while")
        await until(pilot, lambda: any("bash" in v.title for v in tool_rows(app)), "the bash call")
        started = time.monotonic()
        await pilot.press("ctrl+c")
        await until(pilot, lambda: not app.busy, "the cancelled turn to end", timeout=10)
        assert time.monotonic() - started < 10  # not the command's 30 s
        assert app.is_running and "[interrupted]" in lines(app, "warning")
        [tv] = tool_rows(app)
        assert tv.status == "interrupted"
        # The next turn is a valid request: the cut tool call got its 'interrupted' result.
        await run_to_end(app, pilot, "are you there?")
        assert app.agent_run.final.type == "done" and fake_model_env.errors == []
        kinds = [r["type"] for r in session_records(app)]
        assert "interrupted" in kinds
        # Ctrl+C twice (no turn running) quits.
        await pilot.press("ctrl+c")
        assert app.is_running
        await pilot.press("ctrl+c")
        await until(pilot, lambda: not app.is_running, "the app to quit")
    assert app.return_value == 0
    resumed = app.prepared.session.transcript()
    assert resumed[-1].role == "assistant" and resumed[-1].text == "Hello again."


async def test_ctrl_d_on_empty_input_quits(repo, fake_model_env):
    app = make_app(repo)
    async with running(app) as pilot:
        box = app.prompt
        box.text = "draft"
        box.move_cursor((0, 0))
        await pilot.press("ctrl+d")  # not empty: deletes a character, keeps the app
        assert box.text == "raft" and app.is_running
        await pilot.press("shift+enter")
        assert box.text == "\nraft"  # a new line, not a submission
        box.text = ""
        await pilot.press("ctrl+d")
        await until(pilot, lambda: not app.is_running, "the app to quit")
    assert app.return_value == 0


def _enqueue_an_edit_turn(server) -> None:
    """A turn that reads calc.py and makes it multiply, then the answer to one more message."""
    server.enqueue(reply("", [("read", {"path": "calc.py"})]),
                   reply("", [("edit", {"path": "calc.py", "old_string": "a + b", "new_string": "a * b"})]),
                   reply("Changed."), reply("Ok."))


async def test_undo_restores_the_last_turn(repo, fake_model_env):
    _enqueue_an_edit_turn(fake_model_env)
    app = make_app(repo)
    async with running(app) as pilot:
        await run_to_end(app, pilot, "multiply")
        assert [v.status for v in tool_rows(app)] == ["ok", "ok"], [v.output for v in tool_rows(app)]
        assert "a * b" in (repo / "calc.py").read_text()
        await submit(app, pilot, "/undo 1")
        await until(pilot, lambda: any("ran /undo" in x for x in lines(app, "warning")), "the undo")
        assert "restored to their state before turn 2: calc.py" in lines(app, "warning")[-1]
        assert (repo / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
        await submit(app, pilot, "/undo x")
        await pilot.pause()
        assert lines(app, "error")[-1] == "/undo: expected a number of turns, got 'x'"
        await run_to_end(app, pilot, "thanks")  # the model is told about the undo
    assert "ran /undo" in json.dumps(fake_model_env.requests[-1].body["messages"])


async def test_an_undo_runs_as_a_job_that_esc_does_not_stop_half_way(repo, fake_model_env):
    _enqueue_an_edit_turn(fake_model_env)
    app = make_app(repo)
    async with running(app) as pilot:
        await run_to_end(app, pilot, "multiply")
        checkpoints = app.loop.checkpoints
        restore, started, release = checkpoints.undo, threading.Event(), threading.Event()

        def held_undo(*args):  # the restore waits for the test: a big tree's undo, frozen at its start
            started.set()
            release.wait(30)
            return restore(*args)

        checkpoints.undo = held_undo
        await submit(app, pilot, "/undo")
        await until(pilot, started.is_set, "the undo to start")
        await until(pilot, lambda: "undoing" in footer(app), "the footer to show the undo")
        assert "Esc interrupts" not in footer(app)
        await pilot.press("escape")
        await submit(app, pilot, "what changed?")  # sent while the files are being restored: it waits
        assert app.busy and app.jobs.queue == ["what changed?"] and len(fake_model_env.requests) == 3
        release.set()
        await until(pilot, lambda: len(fake_model_env.requests) == 4, "the queued message to go")
        await until(pilot, lambda: not app.busy, "its turn to end")
        assert not any("[interrupted]" in x for x in lines(app))
        assert "restored to their state before turn 2: calc.py" in " ".join(lines(app, "warning"))
    assert (repo / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    sent = json.dumps(fake_model_env.requests[-1].body["messages"])
    assert sent.index("ran /undo") < sent.index("what changed?")  # the model is told before it is asked


def test_agent_help_does_not_import_textual():
    code = ("import sys; from typer.testing import CliRunner; from ghostline.agent.cli import app; "
            "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output; "
            "assert 'tui' in r.output; print('textual' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_tui_command_registers_and_needs_a_terminal(tmp_path):
    import typer
    from typer.testing import CliRunner

    from ghostline.agent.commands.tui import register

    app = typer.Typer()
    register(app)

    @app.command("other")
    def other() -> None:  # a second command, so typer keeps `tui` as a subcommand
        pass

    r = CliRunner().invoke(app, ["tui", "--help"])
    assert r.exit_code == 0 and "--resume" in r.output and "--approval" in r.output
    r = CliRunner().invoke(app, ["tui", "--model", MODEL])  # CliRunner's stdin is not a terminal
    assert r.exit_code == 2 and "needs a terminal" in r.output


def test_slash_parsing_and_previews(tmp_path):
    from ghostline.agent.tui import slash
    from ghostline.tools import BashTool, EditTool, Preview, ToolContext

    undo = slash.parse("/undo 2")
    assert (undo.name, undo.arg, undo.known) == ("undo", "2", True)
    assert slash.parse("/QUIT").name == "exit"
    assert slash.parse("/nope x").known is False
    assert slash.parse("fix /etc/hosts") is None and slash.parse("//etc") is None
    assert slash.unescape("//etc is a path") == "/etc is a path"
    with pytest.raises(ValueError):
        slash.parse_count("0")
    (tmp_path / "a.py").write_text("x = 1\ny = 2\n")
    ctx = ToolContext(workspace=tmp_path, cwd=tmp_path)
    p = EditTool().preview({"path": "a.py", "old_string": "y = 2", "new_string": "y = 3"}, ctx)
    assert p.kind == "diff" and "-y = 2" in p.text and "+y = 3" in p.text
    p = EditTool().preview({"path": "a.py", "old_string": "zzz", "new_string": "q"}, ctx)
    assert p.kind == "diff" and "not found verbatim" in p.text
    assert BashTool().preview({"command": "rm -rf build"}, ctx) == Preview("command", "rm -rf build")


async def test_compact_shows_its_events_and_keeps_the_conversation_going(repo, fake_model_env):
    # Enough history that a summary is smaller than what it replaces (a short one stays as it is: next test).
    (repo / "big.py").write_text("".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(400)))
    fake_model_env.enqueue(reply("", [("read", {"path": "big.py"})]), reply("It adds."),
                           *[r for i in range(4) for r in (reply("", [("read", {"path": "big.py", "offset": 1 + i})]),
                                                           reply(f"Answer {i}."))],
                           reply("Goal: explain big.py. The functions add constants."), reply("Still here."))
    app = make_app(repo)
    async with running(app) as pilot:
        await run_to_end(app, pilot, "explain big.py")
        for i in range(4):
            await run_to_end(app, pilot, f"and again, {i}")
        await submit(app, pilot, "/compact the add function")
        await until(pilot, lambda: "[compacting the conversation…]" in lines(app), "the compaction to start")
        await until(pilot, lambda: not app.busy, "the compaction to end")
        notices = [x for x in lines(app) if x.startswith("[compaction:")]
        assert notices and all(" → " in x for x in notices), lines(app)
        assert not lines(app, "error"), lines(app, "error")
        await run_to_end(app, pilot, "and now?")
        assert app.agent_run.final.type == "done" and fake_model_env.errors == []
    summary_request = json.dumps(fake_model_env.requests[10].body)
    assert "the add function" in summary_request
    records = [r["type"] for r in session_records(app)]
    assert "compaction" in records


async def test_compact_on_a_short_conversation_keeps_it(repo, fake_model_env):
    fake_model_env.enqueue(reply("It adds."), reply("Goal: explain calc.py, a long summary " * 50))
    app = make_app(repo)
    async with running(app) as pilot:
        await run_to_end(app, pilot, "explain calc.py")
        before = app.loop.context_usage().tokens
        await submit(app, pilot, "/compact")
        await until(pilot, lambda: any("nothing to compact" in x for x in lines(app)), "the compaction to end")
        assert app.loop.context_usage().tokens == before


async def test_ctrl_c_while_the_modal_is_open_denies_and_cancels(repo, fake_model_env):
    from ghostline.agent.tui.approval import ApprovalScreen

    fake_model_env.enqueue(reply("", [("write", {"path": "x.txt", "content": "x\n"})]))
    app = make_app(repo, approval="ask")
    async with running(app) as pilot:
        await submit(app, pilot, "write x")
        await until(pilot, lambda: isinstance(app.screen, ApprovalScreen), "the approval modal")
        await pilot.press("ctrl+c")
        await until(pilot, lambda: not app.busy, "the cancelled turn to end")
        assert not isinstance(app.screen, ApprovalScreen) and app.is_running
        assert "[interrupted]" in lines(app, "warning")
    assert not (repo / "x.txt").exists()
    assert app.close_run()["subtype"] == "interrupted"


_ANSI = re.compile(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][0-9A-B]|\x1b[=>]")


def test_agent_tui_in_a_real_terminal(repo, fake_model_env, tmp_path):
    """The console script on a pseudo-terminal: starts, answers, quits with Ctrl+D, restores the terminal."""
    import fcntl
    import os
    import pty
    import select
    import struct
    import termios

    fake_model_env.enqueue(reply("Hello from the model."))
    env = dict(os.environ, TERM="xterm-256color")
    pid, fd = pty.fork()
    if pid == 0:  # the child: become `agent tui` in the repository
        try:
            os.chdir(repo)
            os.execve(str(Path(sys.executable).parent / "agent"),
                      ["agent", "tui", "--model", MODEL, "--approval", "auto"], env)
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 110, 0, 0))
    out = b""

    def read_until(pred, timeout: float = 30.0) -> str:
        nonlocal out
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = _ANSI.sub("", out.decode(errors="replace"))
            if pred(text):
                return text
            r, _, _ = select.select([fd], [], [], 0.05)
            if r:
                try:
                    out += os.read(fd, 65536)
                except OSError:
                    break
        text = _ANSI.sub("", out.decode(errors="replace"))
        assert pred(text), text[-2000:]
        return text

    try:
        read_until(lambda t: "/help for commands" in t)
        os.write(fd, b"say hello\r")
        read_until(lambda t: "Hello from the model." in t)
        os.write(fd, b"\x04")  # Ctrl+D on the now empty input
        text = read_until(lambda t: "session saved" in t)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    assert "Traceback" not in text
    [log] = (tmp_path / "data" / "ghostline" / "sessions").glob("*.jsonl")
    kinds = [json.loads(x)["type"] for x in log.read_text().splitlines()]
    assert kinds[-2:] == ["done", "result"] and "user_message" in kinds


async def test_resume_shows_the_earlier_conversation(repo, fake_model_env):
    fake_model_env.enqueue(reply("Reading.", [("read", {"path": "calc.py"})]), reply("It **adds**."))
    app = make_app(repo)
    async with running(app) as pilot:
        await run_to_end(app, pilot, "explain calc.py")
    app.close_run()
    again = make_app(repo, resume=app.prepared.session.id)
    async with running(again) as pilot:
        await pilot.pause()
        assert again.prepared.session.id == app.prepared.session.id
        assert "› explain calc.py" in lines(again, "user")
        [tv] = tool_rows(again)
        assert tv.status == "ok" and "return a + b" in tv.output
        assert f"[resumed session {app.prepared.session.id}]" in lines(again)
    assert len(fake_model_env.requests) == 2


def test_no_model_is_one_line_and_exit_2(repo, monkeypatch, capsys):
    from ghostline.agent.options import RunOptions
    from ghostline.agent.tui import run_tui

    monkeypatch.chdir(repo)
    assert run_tui(RunOptions()) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("agent: ") and "\n" not in err and "model" in err
