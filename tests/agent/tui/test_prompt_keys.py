"""The input box's keys: Enter sends, modified Enters add a line (also from the raw bytes terminals send,
through Textual's own parser), pastes never send."""

from __future__ import annotations

import pytest
from textual import events
from textual._xterm_parser import XTermParser
from textual.content import Content

from ghostline.agent.tui.keyboard import install_alt_enter, is_newline_key
from tests.agent.tui.host import Host


async def type_text(pilot, text: str) -> None:
    await pilot.press(*text)


async def test_enter_sends_the_text():
    app = Host()
    async with app.run_test() as pilot:
        await type_text(pilot, "hi there")
        await pilot.press("enter")
        assert app.sent == ["hi there"]
        assert app.box.text == ""


@pytest.mark.parametrize("key", ["alt+enter", "shift+enter", "ctrl+enter", "ctrl+j"])
async def test_modified_enters_add_a_line(key):
    app = Host()
    async with app.run_test() as pilot:
        await type_text(pilot, "one")
        await pilot.press(key)
        await type_text(pilot, "two")
        assert app.box.text == "one\ntwo"
        assert app.sent == []
        await pilot.press("enter")
        assert app.sent == ["one\ntwo"]


async def feed_raw(app, pilot, raw: str) -> None:
    """Bytes from the terminal, parsed as the running driver parses them, delivered to the app."""
    for event in XTermParser().feed(raw):
        app.post_message(event)
        await pilot.pause()


@pytest.mark.parametrize("raw", [
    "\x1b\r",  # Alt+Enter in xterm, tmux, most terminals
    "\x1b[13;3u",  # Alt+Enter, kitty protocol
    "\x1b[13;2u",  # Shift+Enter, kitty protocol and tmux's extended keys
    "\x1b[27;2;13~",  # Shift+Enter, xterm modifyOtherKeys
    "\x1b[27;3;13~",  # Alt+Enter, xterm modifyOtherKeys
    "\x1b[13;5u",  # Ctrl+Enter
    "\n",  # Ctrl+J
])
async def test_raw_newline_sequences_add_a_line(raw):
    app = Host()
    async with app.run_test() as pilot:
        await feed_raw(app, pilot, "one" + raw + "two")
        assert app.box.text == "one\ntwo"
        assert app.sent == []
        await feed_raw(app, pilot, "\r")
        assert app.sent == ["one\ntwo"]


def test_textual_reads_escape_return_as_alt_enter_at_once():
    install_alt_enter()
    keys = [e.key for e in XTermParser().feed("\x1b\rx") if isinstance(e, events.Key)]
    assert keys == ["alt+enter", "x"]  # at once: the next key is not swallowed into the sequence


def test_newline_keys():
    for key in ("alt+enter", "shift+enter", "ctrl+enter", "ctrl+j", "shift+\r", "\r", "ctrl+alt+enter"):
        assert is_newline_key(key), key
    for key in ("enter", "j", "ctrl+m", "escape"):
        assert not is_newline_key(key), key


@pytest.mark.parametrize("raw", ["\x1b[200~line one\rline two\r\x1b[201~",
                                 "\x1b[200~line one\nline two\n\x1b[201~"])
async def test_a_paste_ending_in_a_newline_does_not_send(raw):
    app = Host()
    async with app.run_test() as pilot:
        await feed_raw(app, pilot, raw)
        assert app.sent == []
        assert app.box.text == "line one\nline two\n"
        await pilot.press("enter")
        assert app.sent == ["line one\nline two\n"]



async def test_a_hint_on_the_lower_border():
    app = Host()
    async with app.run_test() as pilot:
        app.box.set_hint("1 message queued [not markup]")
        await pilot.pause()
        assert Content.from_markup(app.box.border_subtitle).plain == "1 message queued [not markup]"
        app.box.set_hint("")
        assert not app.box.border_subtitle
