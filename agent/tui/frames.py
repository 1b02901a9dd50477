"""Writes to the terminal only what changed on screen since the last frame.

Textual repaints whole regions: when a scrolling container's content grows by one line, or scrolls by one, every
visible line of it is written again (measured: ~130 bytes per character of a streamed answer at 120x36). A
`ScreenDiff` keeps the lines of the last frame it wrote; for the next one it writes only the cells that differ,
and when a region of the screen scrolled it asks the terminal to scroll it (DECSTBM + SU/SD, which every
xterm-like terminal and tmux honour) and then writes only the lines that came into view.

It works on Textual's compositor updates (`LayoutUpdate`: the whole screen; `ChopsUpdate`: the regions that
changed) and returns an update that renders to the difference; anything it does not recognise passes through
unchanged, so a Textual that renders differently only loses the saving.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.segment import Segment
from textual._compositor import ChopsUpdate, CompositorUpdate, LayoutUpdate
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget

DEFAULT_FRAME_MS = 100.0
MIN_MATCHING_FRACTION = 0.5  # of a scrolled region's lines that must match, shifted, before the terminal scrolls it


def frame_budget_s() -> float:
    """Seconds between two renders of a streaming answer: GHOSTLINE_TUI_FRAME_MS (default 100). 0 is the
    unoptimised baseline for benchmarks: every delta rendered, every frame written as Textual renders it."""
    try:
        ms = float(os.environ.get("GHOSTLINE_TUI_FRAME_MS", DEFAULT_FRAME_MS))
    except ValueError:
        ms = DEFAULT_FRAME_MS
    return max(ms, 0.0) / 1000


@dataclass(frozen=True)
class Scroll:
    """Rows [top, bottom) of the screen whose content moved up by `lines` (down when negative)."""

    top: int
    bottom: int
    lines: int


class ScrollWatch:
    """How far a scrolling widget's content moved on screen between two frames."""

    def __init__(self) -> None:
        self._last: tuple[Any, int] | None = None

    def moved(self, widget: Widget) -> list[Scroll]:
        region, y = widget.region, widget.scroll_offset.y
        last, self._last = self._last, (region, y)
        if last is None or last[0] != region or last[1] == y or not region:
            return []
        return [Scroll(region.y, region.bottom, y - last[1])]


class DiffUpdate(CompositorUpdate):
    """A frame already reduced to the bytes that change the terminal's screen into the new one."""

    def __init__(self, text: str) -> None:
        self.text = text

    def render_segments(self, console: Console) -> str:
        return self.text


def _move_to(x: int, y: int) -> str:
    return f"\x1b[{y + 1};{x + 1}H"


class ScreenDiff:
    def __init__(self) -> None:
        self._lines: list[Strip | None] = []  # what the terminal shows, as we last wrote it

    def reset(self) -> None:
        """The terminal's screen is unknown (resized, resumed): the next frame is written whole."""
        self._lines = []

    def reduce(self, update: Any, console: Console, screen: Any, size: Size, scrolls: Iterable[Scroll] = ()) -> Any:
        """The update that turns the last frame into `update`'s; None when nothing on screen changes; `update`
        itself when it is not a compositor update. `screen` (the Screen being drawn) renders every line when the
        update alone does not say what they all hold; `scrolls` are regions known to have scrolled."""
        if not isinstance(update, (LayoutUpdate, ChopsUpdate)):
            return update
        width, height = size
        new = self._new_lines(update, width, height)
        if new is None or None in new:  # lines we never saw: take them all from the screen
            new = list(screen._compositor.render_strips())[:height]
        out: list[str] = []
        old = self._lines
        for scroll in scrolls:
            if self._worth_scrolling(old, new, scroll):
                out.append(self._scroll(scroll))
        for y, line in enumerate(new):
            out.append(self._line_diff(y, old[y] if y < len(old) else None, line, console))
        self._lines = new
        text = "".join(out)
        return DiffUpdate(text) if text else None

    # -- the new frame, as whole lines ---------------------------------------------------------------------

    def _new_lines(self, update: Any, width: int, height: int) -> list[Strip | None] | None:
        """The screen after `update`, one Strip per line; None when it cannot be known from the last frame."""
        if len(self._lines) != height or any(
                line is not None and line.cell_length != width for line in self._lines):
            self._lines = [None] * height
        if isinstance(update, LayoutUpdate) and update.region.x == 0 and update.region.width == width:
            lines: list[Strip | None] = list(self._lines)
            for y, chops in enumerate(update.strips, update.region.y):
                if 0 <= y < height:
                    lines[y] = Strip.join(list(chops))
            return lines
        return self._overlay(update, width) if isinstance(update, ChopsUpdate) else None

    def _overlay(self, update: ChopsUpdate, width: int) -> list[Strip | None] | None:
        lines = list(self._lines)
        for y, (chops, ends) in enumerate(zip(update.chops, update.chop_ends, strict=True)):
            if y >= len(lines) or all(strip is None for strip in chops.values()):
                continue
            old = lines[y]
            pieces: list[Strip] = []
            for end, (x, strip) in zip(ends, chops.items(), strict=True):
                if strip is not None:
                    pieces.append(strip)
                elif old is not None:
                    pieces.append(old.crop(x, end))
                else:
                    return None  # part of a line we never saw: cannot diff this frame
            joined = Strip.join(pieces)
            if joined.cell_length != width:
                return None
            lines[y] = joined
        return lines

    # -- scrolling ------------------------------------------------------------------------------------------

    @staticmethod
    def _worth_scrolling(old: list[Strip | None], new: list[Strip | None], s: Scroll) -> bool:
        span = s.bottom - s.top
        if s.lines == 0 or abs(s.lines) >= span or s.top < 0 or s.bottom > len(old):
            return False
        pairs = [(new[y], old[y + s.lines]) for y in range(s.top, s.bottom) if s.top <= y + s.lines < s.bottom]
        same = sum(1 for a, b in pairs if a is not None and b is not None and _same_but_last(a, b))
        return same >= MIN_MATCHING_FRACTION * len(pairs) and same > 0

    def _scroll(self, s: Scroll) -> str:
        """Scroll rows [top, bottom) on the terminal and in our copy; the rows that come into view are unknown."""
        old = self._lines
        band = old[s.top:s.bottom]
        k = abs(s.lines)
        band = band[k:] + [None] * k if s.lines > 0 else [None] * k + band[:-k]
        old[s.top:s.bottom] = band
        verb = "S" if s.lines > 0 else "T"
        return f"\x1b[0m\x1b[{s.top + 1};{s.bottom}r\x1b[{k}{verb}\x1b[r"

    # -- one line -------------------------------------------------------------------------------------------

    @staticmethod
    def _line_diff(y: int, old: Strip | None, new: Strip | None, console: Console) -> str:
        if new is None:
            return ""
        if old is None:
            return _move_to(0, y) + new.render(console)
        a, b = list(old), list(new)
        i = _common_prefix(a, b)
        if i == len(a) == len(b):
            return ""
        j = _common_suffix(a, b, i)
        x = sum(cell_len(seg.text) for seg in b[:i])
        x, changed = _narrow(a[i:len(a) - j], b[i:len(b) - j], x)
        return _move_to(x, y) + Strip(changed).render(console) if changed else ""


def _common_prefix(a: Sequence[Segment], b: Sequence[Segment]) -> int:
    i, n = 0, min(len(a), len(b))
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _common_suffix(a: Sequence[Segment], b: Sequence[Segment], prefix: int) -> int:
    j, n = 0, min(len(a), len(b)) - prefix
    while j < n and a[-1 - j] == b[-1 - j]:
        j += 1
    return j


def _narrow(old: list[Segment], new: list[Segment], x: int) -> tuple[int, list[Segment]]:
    """Of the segments that differ, skip the characters they share at either end: a line that grew by a word
    differs in one long text segment and one long run of padding, most of both unchanged. Both windows start at
    `x` and end at the same column, so equal characters there sit in the same cells."""
    if not new:
        return x, new
    new = list(new)
    head = _shared(old[0], new[0], from_end=False) if old else 0
    if head:
        first = new[0]
        x += cell_len(first.text[:head])
        new[0] = Segment(first.text[head:], first.style)
    room_old = len(old[-1].text) - (head if len(old) == 1 else 0) if old else 0
    room_new = len(new[-1].text)
    tail = min(_shared(old[-1], new[-1], from_end=True), room_old, room_new) if old else 0
    if tail:
        last = new[-1]
        new[-1] = Segment(last.text[: len(last.text) - tail], last.style)
    return x, [seg for seg in new if seg.text]


def _shared(a: Segment, b: Segment, from_end: bool) -> int:
    """How many characters two segments of one style have in common at their start (or end)."""
    if a.style != b.style or a.control or b.control:
        return 0
    ta, tb = (a.text[::-1], b.text[::-1]) if from_end else (a.text, b.text)
    n, limit = 0, min(len(ta), len(tb))
    while n < limit and ta[n] == tb[n]:
        n += 1
    return n


def _same_but_last(a: Strip, b: Strip) -> bool:
    """Equal lines but for the last cell (a scrollbar's thumb moves when its region scrolls)."""
    ta, tb = a.text, b.text
    return ta[:-1] == tb[:-1] and a.cell_length == b.cell_length
