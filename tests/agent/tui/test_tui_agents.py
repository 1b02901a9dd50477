"""The TUI's todo checklist, subagent groups and plan mode, driven by Textual's pilot against the real loop and the
fake model server (the fixtures and helpers are conftest's and drive.py's)."""

from __future__ import annotations

import json

from tests.agent.tui.drive import lines, make_app, run_to_end, running, submit, tool_rows, until
from tests.agent.wire import tool_results, user_texts
from tests.fakeserver import reply

TODOS = [{"content": "Read calc.py", "status": "completed"},
         {"content": "Fix add", "status": "in_progress", "activeForm": "Fixing add"},
         {"content": "Run the tests", "status": "pending"}]


def panel(app):
    from ghostline.agent.tui.todos import TodoPanel

    return app.query_one(TodoPanel)


async def test_the_checklist_follows_the_todo_list_and_comes_back_on_resume(repo, fake_model_env):
    done = [dict(t, status="completed") for t in TODOS]
    fake_model_env.enqueue(reply("Planning.", [("todo_write", {"todos": TODOS})]), reply("Working on it."))
    app = make_app(repo)
    async with running(app) as pilot:
        assert not panel(app).display
        await run_to_end(app, pilot, "fix add")
        shown = str(panel(app).render())
        assert panel(app).display and "Todo 1/3" in shown
        assert "☑ Read calc.py" in shown and "◐ Fixing add" in shown and "☐ Run the tests" in shown
    app.close_run()
    fake_model_env.enqueue(reply("", [("todo_write", {"todos": done})]), reply("All done."))
    again = make_app(repo, resume=app.prepared.session.id)
    async with running(again) as pilot:
        await pilot.pause()
        assert panel(again).display and "◐ Fixing add" in str(panel(again).render())  # rebuilt from the session
        await run_to_end(again, pilot, "finish")
        assert not panel(again).display  # everything done: the checklist steps aside
        assert panel(again).items == done


async def test_a_subagent_shows_as_a_group_under_its_call_and_folds_when_done(repo, fake_model_env):
    from ghostline.agent.tui.subagents import SubagentGroup

    fake_model_env.enqueue(
        reply("", [("task", {"description": "find add", "prompt": "Where is add defined?",
                             "subagent_type": "explorer"})]),
        reply("Searching.", [("grep", {"pattern": "def add"})]),
        reply("add is in calc.py, line 1."),
        reply("It is in calc.py."))
    app = make_app(repo)
    async with running(app) as pilot:
        await run_to_end(app, pilot, "where is add?")
        [group] = app.query(SubagentGroup)
        task_row, grep_row = tool_rows(app)
        assert task_row.title == "task explorer: find add" and task_row.status == "ok"
        assert grep_row.title == "grep def add" and grep_row.status == "ok" and grep_row in group.query("ToolRow")
        assert list(app.conversation.children).index(group) == list(app.conversation.children).index(task_row) + 1
        assert group.collapsed and group.title == "subagent · done · 1 tool call · 2 turns"
        assert "add is in calc.py, line 1." in [line.plain for line in group.query("Line")]
        assert "4 turns" in str(app.query_one("#status").render())  # the subagent's turns count
    assert user_texts(fake_model_env.requests[1].body) == ["Where is add defined?"]


async def test_plan_mode_refuses_the_write_then_accepting_switches_to_auto_edit_and_goes_ahead(repo,
                                                                                               fake_model_env):
    from ghostline.agent.plan import ACCEPTED_MESSAGE
    from ghostline.agent.tui.plan_choice import PlanChoice

    fake_model_env.enqueue(
        reply("", [("write", {"path": "notes.txt", "content": "x\n"})]),
        reply("Plan:\n1. Write notes.txt."),
        reply("", [("write", {"path": "notes.txt", "content": "x\n"})]),
        reply("Wrote it."))
    app = make_app(repo, approval="plan")
    async with running(app) as pilot:
        assert "approval plan" in str(app.query_one("#status").render())
        await run_to_end(app, pilot, "write notes")
        [refused] = tool_rows(app)
        assert refused.status == "denied" and "plan mode" in refused.output
        [choice] = app.query(PlanChoice)
        assert app.focused is choice
        await pilot.press("enter")  # the first option: accept
        await until(pilot, lambda: app.jobs.worker is not None and not app.busy and len(tool_rows(app)) == 2, "the turn")
        assert not app.query(PlanChoice) and app.status.approval == "auto-edit"
        assert "approval auto-edit" in str(app.query_one("#status").render())
    assert (repo / "notes.txt").read_text() == "x\n"
    bodies = [q.body for q in fake_model_env.requests]
    assert "plan mode" in tool_results(bodies[1])[0] and user_texts(bodies[2])[-1] == ACCEPTED_MESSAGE
    assert "Plan mode is on" in json.dumps(bodies[1]) and "Plan mode is on" not in json.dumps(bodies[2])


async def test_keep_planning_takes_feedback_and_shift_tab_and_slash_plan_reach_plan_mode(repo, fake_model_env):
    from ghostline.agent.tui.plan_choice import PlanChoice

    fake_model_env.enqueue(reply("Plan: 1. do it."), reply("Plan: 1. do it, with tests."))
    app = make_app(repo, approval="ask")
    async with running(app) as pilot:
        await submit(app, pilot, "/plan")
        await pilot.pause()
        assert app.status.approval == "plan" and app.loop.ctx.approval == "plan"
        await run_to_end(app, pilot, "plan the change")
        assert app.query(PlanChoice)
        await pilot.press("down", "enter")  # keep planning
        await pilot.pause()
        assert not app.query(PlanChoice) and "[still planning: tell the model what to change in the plan]" in lines(app)
        await run_to_end(app, pilot, "add tests to the plan")
        assert app.status.approval == "plan" and app.query(PlanChoice)
        await pilot.press("a")  # typing goes to the input: the answer is feedback, and the choice goes when sent
        assert app.prompt.text == "a"
        app.prompt.text = ""
        app.prompt.focus()
        modes = []
        for _ in range(4):
            await pilot.press("shift+tab")
            modes.append(app.status.approval)
        assert modes == ["ask", "auto-edit", "auto", "plan"]
