"""History in the box: written on submit, kept across app instances, walked with Up/Down, searched with Ctrl+R."""

from __future__ import annotations

from pathlib import Path

from ghostline.agent.tui.history import PromptHistory
from tests.agent.tui.host import Host


async def send(app, pilot, text: str) -> None:
    app.box.text = text
    await pilot.press("enter")


async def test_history_persists_across_two_app_instances(data_dir: Path, tmp_path: Path):
    project = tmp_path / "proj"
    first = Host(history=PromptHistory.for_project(project))
    async with first.run_test() as pilot:
        await send(first, pilot, "fix the parser")
        await send(first, pilot, "two\nlines")
    second = Host(history=PromptHistory.for_project(project))
    async with second.run_test() as pilot:
        box = second.box
        await pilot.press(*"draft")
        await pilot.press("up")
        assert box.text == "two\nlines"
        assert box.cursor_location == (1, 5)  # at the end: Down from here walks forward again
        await pilot.press("up")
        assert box.text == "two\nlines"  # not on the first line: Up moves the cursor
        await pilot.press("up")
        assert box.text == "fix the parser"
        await pilot.press("up")
        assert box.text == "fix the parser"  # the oldest stays
        await pilot.press("down")
        assert box.text == "two\nlines"
        await pilot.press("down")
        assert box.text == "draft"  # the draft is back


async def test_submit_records_even_when_the_app_does_not_call_remember(tmp_path: Path):
    history = PromptHistory(tmp_path / "h.jsonl")
    app = Host(history=history)
    async with app.run_test() as pilot:
        await send(app, pilot, "hello")
        app.box.remember("hello")  # the app may still call it: no duplicate
    assert PromptHistory(tmp_path / "h.jsonl").entries == ["hello"]


async def test_ctrl_r_searches_the_history():
    history = PromptHistory(None)
    for text in ("run the tests", "fix the parser", "fix the lexer", "deploy"):
        history.add(text)
    app = Host(history=history)
    async with app.run_test() as pilot:
        box, popup = app.box, app.box.popup
        await pilot.press(*"my draft")
        await pilot.press("ctrl+r")
        assert popup.is_open and [c.label for c in popup.candidates][0] == "deploy"
        await pilot.press(*"fix")
        assert [c.label for c in popup.candidates] == ["fix the lexer", "fix the parser"]
        assert box.text == "my draft"  # typing went to the query
        await pilot.press("ctrl+r")  # older
        await pilot.press("enter")
        assert box.text == "fix the parser" and not popup.is_open and app.sent == []
        await pilot.press("ctrl+r", *"zzz")
        assert popup.candidates == []
        await pilot.press("escape")
        assert box.text == "fix the parser" and not popup.is_open
        await pilot.press("ctrl+r", *"run", "right")  # pick and go on editing
        await pilot.press(*" again")
        assert box.text == "run the tests again"
        await pilot.press("enter")
        assert app.sent == ["run the tests again"]
