"""The answer widget: Markdown split into blocks, finished blocks rendered once, the frame budget, the room kept
below a streaming answer, and the text a selection copies."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.selection import Selection

from ghostline.agent.tui import answer
from ghostline.agent.tui.answer import AssistantView, split_blocks
from tests.agent.tui.drive import until


def test_split_blocks_keeps_offsets_and_drops_blank_edges():
    text = "# Title\n\nA paragraph\nthat wraps.\n\n- one\n- two\n\n```py\nx = 1\n```\n"
    blocks = split_blocks(text)
    assert [b for _, b in blocks] == ["# Title", "A paragraph\nthat wraps.", "- one\n- two", "```py\nx = 1\n```"]
    assert [text[o:].startswith(b) for o, b in blocks] == [True] * 4
    assert split_blocks("  \n\n") == []


class Host(App[None]):
    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield AssistantView()

    @property
    def view(self) -> AssistantView:
        return self.query_one(AssistantView)


@pytest.fixture
def rendered(monkeypatch):
    """The sources render_block was asked to render, in order."""
    calls: list[str] = []
    real = answer.render_block

    def counting(source, width, console):
        calls.append(source)
        return real(source, width, console)

    monkeypatch.setattr(answer, "render_block", counting)
    return calls


async def test_finished_blocks_are_rendered_once(rendered, monkeypatch):
    monkeypatch.setenv("GHOSTLINE_TUI_FRAME_MS", "0")  # every delta rendered: the worst case
    app = Host()
    async with app.run_test(size=(60, 20)) as pilot:
        view = app.view
        for piece in ["First para", "graph here.\n\n", "Second ", "one grows", " and grows."]:
            view.add(piece)
            await pilot.pause()
        view.finish()
        await pilot.pause()
        # Rendered as it grew, and not again when the second block began and it was known to be finished.
        assert rendered[:3] == ["First para", "First paragraph here.", "Second "]
        assert view.plain_lines() == ["First paragraph here.", "", "Second one grows and grows."]


async def test_deltas_within_the_budget_wait_for_one_frame(rendered, monkeypatch):
    monkeypatch.setenv("GHOSTLINE_TUI_FRAME_MS", "10000")
    app = Host()
    async with app.run_test(size=(60, 20)) as pilot:
        view = app.view
        view.add("one")
        view.add(" two")
        view.add(" three")
        await pilot.pause()
        assert rendered == ["one"]  # the first delta shows at once, the rest waits for the budget
        view.finish()  # the end does not wait
        await until(pilot, lambda: view.plain_lines() == ["one two three"], "the whole answer")


async def test_a_streaming_answer_keeps_room_below_and_gives_it_back(monkeypatch):
    monkeypatch.setenv("GHOSTLINE_TUI_FRAME_MS", "0")
    app = Host()
    async with app.run_test(size=(60, 20)) as pilot:
        view = app.view
        view.add("one line")
        await pilot.pause()
        assert view.line_count == 1 and view.size.height == answer.GROWTH_STEP
        view.finish()
        await until(pilot, lambda: view.size.height == 1, "the room given back")


async def test_a_selection_copies_the_rendered_text():
    app = Host()
    async with app.run_test(size=(60, 20)) as pilot:
        app.view.add("Some **bold** text.\n\n- a\n- b")
        app.view.finish()
        await pilot.pause()
        text, ending = app.view.get_selection(Selection(None, None))
        assert text == "Some bold text.\n\n • a\n • b" and ending == "\n"
