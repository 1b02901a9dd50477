"""Each interaction of the TUI, driven with Textual's pilot against the real loop and the fake model server."""

from __future__ import annotations

import json

import pytest

from tests.agent.tui.drive import (
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
    turn_ends,
    until,
)
from tests.fakeserver import cut_stream, reply


def model_saw(server, needle: str, request: int = -1) -> bool:
    return needle in json.dumps(server.requests[request].body["messages"])


# -- approval -------------------------------------------------------------------------------------------------


async def ask_for_write(app, pilot, server, path: str = "notes.txt"):
    from ghostline.agent.tui.approval import ApprovalScreen

    server.enqueue(reply("Writing.", [("write", {"path": path, "content": "hello\n"})]), reply("Done."))
    await submit(app, pilot, f"write {path}")
    await until(pilot, lambda: isinstance(app.screen, ApprovalScreen), "the approval dialog")
    return app.screen


async def test_approval_y_allows_once(repo, fake_model_env):
    app = make_app(repo, approval="ask")
    async with running(app) as pilot:
        dialog = await ask_for_write(app, pilot, fake_model_env)
        assert "always allow `write`" in str(dialog.query_one("#keys").render())
        await pilot.press("y")
        await turn_ends(app, pilot)
        assert (repo / "notes.txt").read_text() == "hello\n"
        assert not any("always allowed" in x for x in lines(app))
        await ask_for_write(app, pilot, fake_model_env, "again.txt")  # allowed once: asked again
        await pilot.press("n")
        await turn_ends(app, pilot)
    assert not (repo / "again.txt").exists()


async def test_approval_a_remembers_the_rule_and_says_so(repo, fake_model_env):
    from ghostline.agent.tui.approval import ApprovalScreen

    app = make_app(repo, approval="ask")
    async with running(app) as pilot:
        await ask_for_write(app, pilot, fake_model_env)
        await pilot.press("a")
        await turn_ends(app, pilot)
        assert "[always allowed from now on in this project: write]" in lines(app)
        fake_model_env.enqueue(reply("", [("write", {"path": "b.txt", "content": "b\n"})]), reply("Done."))
        await run_to_end(app, pilot, "write b.txt")
        assert not isinstance(app.screen, ApprovalScreen)  # not asked again
    assert (repo / "b.txt").read_text() == "b\n"


async def test_approval_n_denies_and_the_model_is_told(repo, fake_model_env):
    app = make_app(repo, approval="ask")
    async with running(app) as pilot:
        await ask_for_write(app, pilot, fake_model_env)
        await pilot.press("n")
        await turn_ends(app, pilot)
        [row] = tool_rows(app)
        assert row.status == "denied" and "⊘" in row.headline()
    assert not (repo / "notes.txt").exists()
    assert model_saw(fake_model_env, "declined")


async def test_approval_r_sends_the_typed_reason_to_the_model(repo, fake_model_env):
    app = make_app(repo, approval="ask")
    async with running(app) as pilot:
        dialog = await ask_for_write(app, pilot, fake_model_env)
        await pilot.press("r")
        await until(pilot, lambda: dialog.query("#why"), "the reason box")
        await pilot.press(*"use docs/ instead", "enter")
        await turn_ends(app, pilot)
    assert not (repo / "notes.txt").exists()
    assert model_saw(fake_model_env, "use docs/ instead")


async def test_the_dialog_keeps_its_keys_visible_with_a_long_diff_at_80x24(repo, fake_model_env):
    new = "".join(f"line_{i} = {i * 2}\n" for i in range(60))
    fake_model_env.enqueue(reply("", [("write", {"path": "long.py", "content": new})]), reply("Done."))
    app = make_app(repo, approval="ask")
    async with running(app, size=(80, 24)) as pilot:
        from ghostline.agent.tui.approval import ApprovalScreen

        await submit(app, pilot, "double them")
        await until(pilot, lambda: isinstance(app.screen, ApprovalScreen), "the approval dialog")
        await pilot.pause()
        keys = app.screen.query_one("#keys")
        assert keys.region.bottom <= 24 and keys.region.height >= 1 and keys.region.width > 40
        assert "allow once" in str(keys.render()) and "deny with a reason" in str(keys.render())
        box = app.screen.query_one("#preview-box")
        assert box.max_scroll_y > 0  # the diff scrolls inside the dialog
        await pilot.press("pagedown")
        assert box.scroll_y > 0
        await pilot.press("y")
        await turn_ends(app, pilot)
    assert (repo / "long.py").read_text() == new


# -- modes, interrupting, quitting ---------------------------------------------------------------------------


async def test_shift_tab_and_slash_approval_switch_modes(repo, fake_model_env):
    app = make_app(repo, approval="ask")
    async with running(app) as pilot:
        assert "approval ask" in status(app)
        await pilot.press("shift+tab")
        assert "approval auto-edit" in status(app) and app.loop.ctx.approval == "auto-edit"
        await pilot.press("shift+tab")
        assert "approval auto" in status(app)
        await submit(app, pilot, "/approval ask")
        await pilot.pause()
        assert "approval ask" in status(app) and app.loop.ctx.approval == "ask"
        await submit(app, pilot, "/approval sometimes")
        await pilot.pause()
        assert lines(app, "error")[-1].startswith("/approval: expected one of")


async def test_esc_interrupts_the_running_turn(repo, fake_model_env):
    fake_model_env.enqueue(reply("Waiting.", [("bash", {"command": "sleep 30"})]))
    app = make_app(repo)
    async with running(app) as pilot:
        await submit(app, pilot, "wait")
        await until(pilot, lambda: tool_rows(app), "the bash call")
        await pilot.press("escape")
        await until(pilot, lambda: not app.busy, "the interrupted turn to end", timeout=10)
        assert "[interrupted]" in lines(app, "warning") and app.is_running
        assert tool_rows(app)[0].status == "interrupted"


async def test_messages_typed_during_a_turn_are_queued_then_sent_together(repo, fake_model_env):
    fake_model_env.enqueue(reply("Working.", [("bash", {"command": "sleep 1"})]), reply("First done."),
                           reply("Second done."))
    app = make_app(repo)
    async with running(app) as pilot:
        await submit(app, pilot, "first")
        await until(pilot, lambda: app.busy, "the turn")
        await submit(app, pilot, "second")
        await submit(app, pilot, "third")
        assert app.jobs.queue == ["second", "third"]
        assert "2 messages queued" in str(app.prompt.border_subtitle)
        await until(pilot, lambda: len(fake_model_env.requests) == 3, "the queued messages to go")
        await turn_ends(app, pilot)
    assert model_saw(fake_model_env, "second\\n\\nthird")


async def test_an_interrupted_turn_gives_the_queue_back_to_the_input(repo, fake_model_env):
    fake_model_env.enqueue(reply("Waiting.", [("bash", {"command": "sleep 30"})]))
    app = make_app(repo)
    async with running(app) as pilot:
        await submit(app, pilot, "wait")
        await until(pilot, lambda: tool_rows(app), "the bash call")
        await submit(app, pilot, "never mind")
        await pilot.press("escape")
        await until(pilot, lambda: app.prompt.text == "never mind", "the queued text back in the box")
    assert len(fake_model_env.requests) == 1


# -- what the user sends -------------------------------------------------------------------------------------


async def test_bang_command_output_reaches_the_model(repo, fake_model_env):
    fake_model_env.enqueue(reply("It printed the marker."))
    app = make_app(repo)
    async with running(app) as pilot:
        await submit(app, pilot, "!echo marker-$((40 + 2))")
        await until(pilot, lambda: tool_rows(app) and tool_rows(app)[0].status != "running", "the command")
        [row] = tool_rows(app)
        assert row.status == "ok" and "marker-42" in row.output and row.title == "! echo marker-$((40 + 2))"
        assert fake_model_env.requests == []  # nothing sent until the next message
        await run_to_end(app, pilot, "what did it print?")
    assert model_saw(fake_model_env, "marker-42")


async def test_at_path_attaches_the_file(repo, fake_model_env):
    fake_model_env.enqueue(reply("It adds."))
    app = make_app(repo)
    async with running(app) as pilot:
        await run_to_end(app, pilot, "explain @calc.py please")
        assert any("explain @calc.py please" in x and "[attached: calc.py]" in x for x in lines(app, "user"))
    assert model_saw(fake_model_env, '<attached_file path=\\"calc.py\\"')
    assert model_saw(fake_model_env, "return a + b")


async def test_slash_model_switches_the_next_turns(repo, fake_model_env):
    fake_model_env.enqueue(reply("From haiku."))
    app = make_app(repo)
    async with running(app) as pilot:
        await submit(app, pilot, "/model anthropic:claude-haiku-5-5")
        await until(pilot, lambda: "claude-haiku-5-5" in status(app), "the status line")
        await submit(app, pilot, "/model nope:x")
        await pilot.pause()
        assert lines(app, "error")[-1].startswith("/model: unknown provider")
        await run_to_end(app, pilot, "hi")
    assert fake_model_env.requests[0].body["model"] == "claude-haiku-5-5"
    assert any(r.get("type") == "model_changed" for r in session_records(app))


async def test_context_cost_and_help_reports(repo, fake_model_env):
    fake_model_env.enqueue(reply("Hello.", usage={"input_tokens": 1000, "output_tokens": 100}))
    app = make_app(repo)
    async with running(app) as pilot:
        await run_to_end(app, pilot, "hi")
        await submit(app, pilot, "/context")
        await pilot.pause()
        context = lines(app, "help")[-1]
        assert context.startswith("Context: ") and "system prompt" in context.lower()
        await submit(app, pilot, "/cost")
        await pilot.pause()
        cost = lines(app, "help")[-1]
        assert cost.startswith("This session: 1 turns · input ") and "output 100 tokens" in cost and "$" in cost


async def test_slash_init_asks_for_an_agent_md(repo, fake_model_env):
    fake_model_env.enqueue(reply("Drafted."))
    app = make_app(repo)
    async with running(app) as pilot:
        app.jobs.worker = None
        await submit(app, pilot, "/init keep it short")
        await turn_ends(app, pilot)
    assert model_saw(fake_model_env, "Draft an AGENT.md") and model_saw(fake_model_env, "Also: keep it short")


async def test_slash_clear_starts_an_empty_session(repo, fake_model_env):
    fake_model_env.enqueue(reply("Hello."), reply("Fresh."))
    app = make_app(repo)
    async with running(app) as pilot:
        await run_to_end(app, pilot, "hi")
        first = app.prepared.session.id
        await submit(app, pilot, "/clear")
        await until(pilot, lambda: app.prepared.session.id != first, "a new session")
        assert answers(app) == [] and tool_rows(app) == []
        assert lines(app) == [f"[session {first} saved; now in new session {app.prepared.session.id}]"]
        assert "0 turns" in status(app)
        await run_to_end(app, pilot, "again")
    assert len(fake_model_env.requests[1].body["messages"]) == 1  # the new session starts empty


async def test_the_palette_runs_a_slash_command(repo, fake_model_env):
    from textual.command import CommandList, CommandPalette

    app = make_app(repo)
    async with running(app) as pilot:
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
        await pilot.press(*"/cost")
        results = app.screen.query_one(CommandList)
        await until(pilot, lambda: results.option_count and "/cost" in str(results.get_option_at_index(0).prompt),
                    "the palette's results")
        await pilot.press("enter")
        await until(pilot, lambda: any(x.startswith("This session:") for x in lines(app, "help")), "/cost")


# -- what the TUI shows --------------------------------------------------------------------------------------


async def test_a_cut_and_retried_stream_replaces_the_partial_answer(repo, fake_model_env):
    fake_model_env.enqueue(cut_stream("These partial words will vanish " * 6, tool_calls=()),
                           reply("The whole answer."))
    app = make_app(repo)
    async with running(app) as pilot:
        await run_to_end(app, pilot, "hello")
        assert answers(app) == ["The whole answer."]
        assert any(x.startswith("[retrying the turn (attempt 1)") for x in lines(app, "warning"))
        assert app.agent_run.final.type == "done"


async def test_a_failing_command_shows_the_cross_and_its_exit_code(repo, fake_model_env):
    fake_model_env.enqueue(reply("", [("bash", {"command": "echo boom >&2; exit 3"})]), reply("It failed."))
    app = make_app(repo)
    async with running(app) as pilot:
        await run_to_end(app, pilot, "run it")
        [row] = tool_rows(app)
        assert row.status == "error" and row.headline().startswith("✗ ") and "exit 3" in row.headline()
        assert "boom" in row.output


async def test_a_running_command_shows_its_live_tail(repo, fake_model_env):
    fake_model_env.enqueue(reply("", [("bash", {"command": "echo first-line; echo second-line; sleep 30"})]))
    app = make_app(repo)
    async with running(app) as pilot:
        await submit(app, pilot, "run it")
        await until(pilot, lambda: tool_rows(app), "the row")
        row = tool_rows(app)[0]
        await until(pilot, lambda: "second-line" in str(row._tail.render()), "the live tail")
        assert "first-line" in str(row._tail.render()) and row.status == "running"
        await pilot.press("escape")
        await until(pilot, lambda: not app.busy, "the interrupted turn")
        assert not row._tail.display  # the tail goes once the command ends


async def test_typing_after_clicking_a_tool_row_reaches_the_input(repo, fake_model_env):
    from ghostline.agent.tui.rows import ToolRow

    fake_model_env.enqueue(reply("", [("read", {"path": "calc.py"})]), reply("Read."))
    app = make_app(repo)
    async with running(app) as pilot:
        await run_to_end(app, pilot, "read it")
        app.prompt.text = ""
        await pilot.click(ToolRow)
        assert tool_rows(app)[0].expanded  # the click showed the output
        await pilot.press("o", "k")
        assert app.prompt.text == "ok" and app.focused is app.prompt


async def test_follow_and_jump_to_latest(repo, fake_model_env):
    long = "\n\n".join(f"Paragraph {i} of a long answer." for i in range(60))
    fake_model_env.enqueue(reply(long), reply(long))
    app = make_app(repo)
    async with running(app, size=(100, 24)) as pilot:
        conv = app.conversation
        await run_to_end(app, pilot, "long")
        assert conv.scroll_y == conv.max_scroll_y > 0  # followed the answer to its end
        await pilot.press("pageup", "pageup")
        assert conv.scroll_y < conv.max_scroll_y
        await run_to_end(app, pilot, "more")
        assert conv.scroll_y < conv.max_scroll_y - 20  # stayed where the user was
        assert app.query_one("#missed").has_class("shown")
        await pilot.press("end")  # on the empty input: jump to the latest
        await pilot.pause()
        assert conv.scroll_y == conv.max_scroll_y and not app.query_one("#missed").has_class("shown")


async def test_resume_restores_the_status_line(repo, fake_model_env):
    fake_model_env.enqueue(reply("One.", usage={"input_tokens": 2000, "output_tokens": 100}),
                           reply("Two.", usage={"input_tokens": 2000, "output_tokens": 100}))
    app = make_app(repo)
    async with running(app) as pilot:
        await run_to_end(app, pilot, "one")
        await run_to_end(app, pilot, "two")
        before = status(app)
    app.close_run()
    again = make_app(repo, resume=app.prepared.session.id)
    async with running(again):
        after = status(again)
    assert "2 turns" in before and "2 turns" in after
    cost = next(part for part in before.split(" · ") if part.startswith("$"))
    assert cost in after


async def test_no_session_file_until_the_first_message(repo, fake_model_env):
    fake_model_env.enqueue(reply("Hello."))
    app = make_app(repo)
    async with running(app) as pilot:
        path = app.prepared.session.path
        for command in ("/help", "/cost", "/context", "/approval auto"):
            await submit(app, pilot, command)
            await pilot.pause()
        assert not path.exists()
        await run_to_end(app, pilot, "hi")
        assert path.exists()
    app.close_run()
    assert [r["type"] for r in session_records(app)][-1] == "result"


async def test_the_footer_says_what_is_happening(repo, fake_model_env):
    fake_model_env.enqueue(reply("", [("bash", {"command": "sleep 30"})]))
    app = make_app(repo)
    async with running(app) as pilot:
        assert footer(app).startswith("ready · /help")
        await submit(app, pilot, "wait")
        await until(pilot, lambda: footer(app).startswith("working "), "the working footer")
        assert "Esc interrupts" in footer(app)
        await pilot.press("escape")
        await until(pilot, lambda: footer(app).startswith("ready"), "ready again")


@pytest.mark.parametrize("args", [["--model", "anthropic:claude-haiku-5-5", "--approval", "auto-edit",
                                   "--sandbox", "read-only", "--max-turns", "7"]])
def test_bare_agent_passes_its_options_to_the_tui(args, monkeypatch, tmp_path):
    from types import SimpleNamespace

    from typer.testing import CliRunner

    from ghostline.agent import cli, tui

    seen = []
    monkeypatch.setattr(tui, "run_tui", lambda opts: seen.append(opts) or 0)

    class Tty:
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(cli, "sys", SimpleNamespace(stdin=Tty(), stdout=Tty(), argv=["agent"]))
    result = CliRunner().invoke(cli.app, [*args, "--cwd", str(tmp_path)])
    assert result.exit_code == 0, result.output
    [opts] = seen
    assert (opts.model, opts.approval, opts.sandbox, opts.max_turns, opts.cwd, opts.task) == (
        "anthropic:claude-haiku-5-5", "auto-edit", "read-only", 7, tmp_path, None)
