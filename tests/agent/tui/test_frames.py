"""The frame differ: whatever frames Textual would write, writing only the differences leaves the same screen."""

from __future__ import annotations

import random

import pytest
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from textual._compositor import ChopsUpdate, LayoutUpdate
from textual.geometry import Region, Size
from textual.strip import Strip

from ghostline.agent.tui.frames import DiffUpdate, ScreenDiff, Scroll
from tests.agent.tui.vt import VirtualTerminal

W, H = 40, 12
STYLES = [Style(color="red"), Style(color="green", bgcolor="black"), Style(bold=True), Style(bgcolor="blue")]
WORDS = ["alpha", "beta", "gamma", "delta", "x", "yy", "zzz", "  "]


def console() -> Console:
    return Console(color_system="truecolor", width=W, force_terminal=True, legacy_windows=False)


def random_line(rng: random.Random) -> Strip:
    segments, used = [], 0
    while used < W:
        text = rng.choice(WORDS)[: W - used]
        segments.append(Segment(text, rng.choice(STYLES)))
        used += len(text)
    return Strip(segments, W)


def grown(line: Strip, rng: random.Random) -> Strip:
    """The line with a few characters written over its padding (a line of streamed text growing)."""
    text = "".join(s.text for s in line).rstrip()
    more = text + " " + rng.choice(WORDS)
    more = more[:W]
    return Strip([Segment(more, STYLES[0]), Segment(" " * (W - len(more)), STYLES[3])], W)


def layout(lines: list[Strip]) -> LayoutUpdate:
    return LayoutUpdate([[line] for line in lines], Region(0, 0, W, H))


def chops(lines: list[Strip], changed: set[int]) -> ChopsUpdate:
    return ChopsUpdate([{0: lines[y] if y in changed else None} for y in range(H)],
                       [(y, 0, W) for y in sorted(changed)], [[W] for _ in range(H)])


class FakeScreen:
    """What ScreenDiff asks of a screen when an update does not say every line: render them all."""

    def __init__(self, lines: list[Strip]) -> None:
        self.lines = lines

    @property
    def _compositor(self) -> FakeScreen:
        return self

    def render_strips(self) -> list[Strip]:
        return self.lines


def step(rng: random.Random, lines: list[Strip]) -> tuple[list[Strip], set[int], list[Scroll]]:
    """The next frame: some lines grow or change, or a band scrolls and new lines come in below."""
    lines = list(lines)
    kind = rng.random()
    if kind < 0.2:  # the content moves up: new lines come in at the bottom
        top, bottom, k = 1, H - 2, rng.randint(1, 4)
        lines[top:bottom] = lines[top + k:bottom] + [random_line(rng) for _ in range(k)]
        lines[bottom - k - 1] = grown(lines[bottom - k - 1], rng)
        return lines, set(range(top, bottom)), [Scroll(top, bottom, k)]
    if kind < 0.3:  # the user scrolls back: lines come in at the top
        top, bottom, k = 1, H - 2, rng.randint(1, 4)
        lines[top:bottom] = [random_line(rng) for _ in range(k)] + lines[top:bottom - k]
        return lines, set(range(top, bottom)), [Scroll(top, bottom, -k)]
    changed = set(rng.sample(range(H), rng.randint(1, 3)))
    for y in changed:
        lines[y] = grown(lines[y], rng) if rng.random() < 0.6 else random_line(rng)
    return lines, changed, []


@pytest.mark.parametrize("seed", range(12))
def test_differences_leave_the_screen_textual_would_leave(seed):
    rng = random.Random(seed)
    con = console()
    expected, actual = VirtualTerminal(W, H), VirtualTerminal(W, H)
    diff = ScreenDiff()
    lines = [random_line(rng) for _ in range(H)]
    written_full = written_diff = 0
    for n in range(60):
        if n == 0:
            update, scrolls = layout(lines), []
        else:
            lines, changed, scrolls = step(rng, lines)
            update = chops(lines, changed) if rng.random() < 0.5 else layout(lines)
        full = update.render_segments(con)
        expected.feed(full)
        reduced = diff.reduce(update, con, FakeScreen(lines), Size(W, H), scrolls)
        if reduced is not None:
            assert isinstance(reduced, DiffUpdate)
            actual.feed(reduced.render_segments(con))
        assert actual.styled() == expected.styled(), f"frame {n}"
        written_full += len(full)
        written_diff += len(reduced.render_segments(con)) if reduced else 0
    assert written_diff < written_full / 2


def test_a_growing_line_writes_only_its_new_characters():
    con = console()
    diff = ScreenDiff()
    blank = Strip([Segment(" " * W, STYLES[3])], W)
    lines = [blank] * H
    diff.reduce(layout(lines), con, FakeScreen(lines), Size(W, H))
    lines[5] = Strip([Segment("hello", STYLES[0]), Segment(" " * (W - 5), STYLES[3])], W)
    first = diff.reduce(chops(lines, {5}), con, FakeScreen(lines), Size(W, H)).render_segments(con)
    lines[5] = Strip([Segment("hello world", STYLES[0]), Segment(" " * (W - 11), STYLES[3])], W)
    second = diff.reduce(chops(lines, {5}), con, FakeScreen(lines), Size(W, H)).render_segments(con)
    assert "hello" in first and " " * 10 not in first  # the padding was already there
    assert second.startswith("\x1b[6;6H") and "world" in second and "hello" not in second


def test_an_unchanged_frame_writes_nothing_and_a_scroll_asks_the_terminal():
    rng = random.Random(1)
    con = console()
    diff = ScreenDiff()
    lines = [random_line(rng) for _ in range(H)]
    diff.reduce(layout(lines), con, FakeScreen(lines), Size(W, H))
    assert diff.reduce(layout(lines), con, FakeScreen(lines), Size(W, H)) is None
    scrolled = lines[:1] + lines[3:H - 1] + [random_line(rng), random_line(rng)] + lines[H - 1:]
    out = diff.reduce(layout(scrolled), con, FakeScreen(scrolled), Size(W, H), [Scroll(1, H - 1, 2)])
    text = out.render_segments(con)
    assert f"\x1b[2;{H - 1}r\x1b[2S\x1b[r" in text
    assert text.count("H") <= 3  # only the two lines that came into view are written


def test_a_resized_or_unknown_screen_is_written_whole():
    rng = random.Random(2)
    con = console()
    diff = ScreenDiff()
    lines = [random_line(rng) for _ in range(H)]
    diff.reduce(layout(lines), con, FakeScreen(lines), Size(W, H))
    diff.reset()
    vt = VirtualTerminal(W, H)
    out = diff.reduce(chops(lines, {3}), con, FakeScreen(lines), Size(W, H))  # says one line; all are written
    vt.feed(out.render_segments(con))
    assert vt.lines() == ["".join(s.text for s in line) for line in lines]
