"""The assistant's text, as Markdown, in one widget however long the answer.

Finished blocks (a paragraph, a list, a code fence...) are rendered once and kept as lines; only the block still
being written is rendered again, at most once per frame budget. While it streams the answer grows GROWTH_STEP lines
at a time (so the conversation scrolls in steps of as many): a change of height costs a layout, a repaint of every visible line of the conversation and a scroll,
while a line written into room already there repaints that line alone. Textual's own Markdown widget made a
widget per block (four per list item): every layout visited them all, so each frame of a long answer cost more
than the last.

The frame budget is frames.frame_budget_s() (GHOSTLINE_TUI_FRAME_MS; 0 renders on every delta).
"""

from __future__ import annotations

import time
from typing import Any

from markdown_it import MarkdownIt
from rich.console import Console
from rich.markdown import Markdown as RichMarkdown
from rich.style import Style
from textual.geometry import Region, Size
from textual.selection import Selection
from textual.strip import Strip
from textual.timer import Timer
from textual.widget import Widget

from ghostline.agent.tui.frames import frame_budget_s

CODE_THEME = "ansi_dark"
GROWTH_STEP = 6  # lines a streaming answer grows by at a time (each growth is a layout and a scroll)


_PARSER = MarkdownIt("commonmark").enable("strikethrough").enable("table")  # the grammar Rich renders


def split_blocks(source: str) -> list[tuple[int, str]]:
    """The top-level blocks of `source`: (offset of the block's first line, its text without blank edges)."""
    starts = sorted({t.map[0] for t in _PARSER.parse(source) if t.level == 0 and t.map is not None})
    if not starts:
        return []
    lines = source.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    ends = [*starts[1:], len(lines)]
    return [(offsets[s], "\n".join(lines[s:e]).strip("\n")) for s, e in zip(starts, ends, strict=True)]


def render_block(source: str, width: int, console: Console) -> list[Strip]:
    """One block as lines of `width` cells, without the blank lines Rich puts around some blocks."""
    options = console.options.update(width=width, height=None, highlight=False)
    lines = console.render_lines(RichMarkdown(source, code_theme=CODE_THEME, hyperlinks=False), options)
    strips = [Strip(line, width) for line in lines]
    while strips and not strips[0].text.strip():
        strips.pop(0)
    while strips and not strips[-1].text.strip():
        strips.pop()
    return strips


class AssistantView(Widget):
    """Assistant text: `add` streams deltas, `finish` settles it; `AssistantView(text)` shows a whole answer."""

    DEFAULT_CSS = """
    AssistantView { height: auto; margin: 0 0 0 1; padding: 0 1; }
    """
    ALLOW_SELECT = True

    def __init__(self, text: str = "") -> None:
        super().__init__()
        self.text = text
        self.streaming = False
        self._settled = 0  # how much of `text` is in finished blocks
        self._lines: list[Strip] = []  # the finished blocks, each followed by a blank line
        self._tail: list[Strip] = []  # the block being written
        self._tail_source = ""
        self._width = 0
        self._blank = Strip.blank(0)
        self._laid_out = 0  # the height the last layout gave it
        self._budget = frame_budget_s()
        self._timer: Timer | None = None
        self._rendered_at = 0.0
        self._style: Style | None = None

    # -- feeding it -----------------------------------------------------------------------------------------

    def add(self, delta: str) -> None:
        """More text; it shows with the next frame (at once when the last one is older than the budget)."""
        self.text += delta
        self.streaming = True
        if self._timer is not None:
            return
        wait = self._rendered_at + self._budget - time.monotonic()
        if wait > 0:
            self._timer = self.set_timer(wait, self._show)
        else:
            self._show()

    def finish(self) -> None:
        """The answer is complete: its last block counts as finished too."""
        self.streaming = False
        if self._timer is not None:
            self._timer.stop()
        self._show()

    # -- rendering ------------------------------------------------------------------------------------------

    def _show(self) -> None:
        self._timer = None
        self._rendered_at = time.monotonic()
        if not self._width or not self.is_attached:
            return  # the first layout renders it
        first, old_height = len(self._lines), self._laid_out
        before = [self._line(y) for y in range(first, old_height)]  # finished lines above never change
        self._advance()
        if self.height_shown != old_height:
            self._laid_out = self.height_shown
            self.refresh(layout=True)
            return
        changed = [y for y, line in enumerate(before, first) if self._line(y) != line]
        if changed:
            self.refresh(Region(0, changed[0], self._width, changed[-1] - changed[0] + 1))

    def _advance(self) -> None:
        """Render the blocks that finished since the last frame, and the one still being written."""
        blocks = split_blocks(self.text[self._settled:])
        done = blocks if not self.streaming else blocks[:-1]
        for _, source in done:
            self._settle(source)
        if self.streaming:
            if blocks:
                self._settled += blocks[-1][0]
                self._set_tail(blocks[-1][1])
        else:
            self._settled = len(self.text)
            self._set_tail("")

    def _set_tail(self, source: str) -> None:
        if source != self._tail_source:
            self._tail_source = source
            self._tail = render_block(source, self._width, self.app.console) if source else []

    def _settle(self, source: str) -> None:
        """A finished block: the tail as last rendered, when it already was this block."""
        lines = self._tail if source == self._tail_source else render_block(source, self._width, self.app.console)
        self._lines += [*lines, self._blank]
        self._tail, self._tail_source = [], ""

    def _render_all(self, width: int) -> None:
        """At a new width every block is laid out again, from the whole text."""
        self._width, self._blank = width, Strip.blank(width)
        self._settled, self._lines, self._tail, self._tail_source = 0, [], [], ""
        self._advance()

    @property
    def line_count(self) -> int:
        if self._tail:
            return len(self._lines) + len(self._tail)
        return max(len(self._lines) - 1, 0)

    @property
    def height_shown(self) -> int:
        """The lines, and while it streams the room kept below them."""
        n = self.line_count
        return -(-n // GROWTH_STEP) * GROWTH_STEP if self.streaming else n

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        if width != self._width and width > 0:
            self._render_all(width)
        self._laid_out = self.height_shown
        return self._laid_out

    def _line(self, y: int) -> Strip:
        if y < len(self._lines) and (self._tail or y < len(self._lines) - 1):
            return self._lines[y]
        if 0 <= y - len(self._lines) < len(self._tail):
            return self._tail[y - len(self._lines)]
        return self._blank

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._style = None

    def render_line(self, y: int) -> Strip:
        if self._style is None:
            self._style = self.rich_style  # dear to compute: once per style change, not per line
        line = self._line(y).apply_style(self._style)  # the widget's colours under Rich's
        selection = self.text_selection
        if selection is not None and (span := selection.get_span(y)) is not None:
            line = _highlight(line, span, self.screen.get_component_rich_style("screen--selection"))
        return line.apply_offsets(0, y)

    # -- selection and copying --------------------------------------------------------------------------------

    def plain_lines(self) -> list[str]:
        return [self._line(y).text.rstrip() for y in range(self.line_count)]

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        return selection.extract("\n".join(self.plain_lines())), "\n"

    def selection_updated(self, selection: Selection | None) -> None:
        self.refresh()

    def scrollback(self) -> RichMarkdown:
        """The answer as printed in the terminal's scrollback after the TUI closes."""
        return RichMarkdown(self.text, code_theme=CODE_THEME)

    def on_unmount(self) -> None:
        if self._timer is not None:
            self._timer.stop()

    def __rich_repr__(self) -> Any:
        yield "chars", len(self.text)


def _highlight(line: Strip, span: tuple[int, int], style: Style) -> Strip:
    start, end = span
    end = line.cell_length if end == -1 else min(end, line.cell_length)
    if start >= end:
        return line
    return Strip.join([line.crop(0, start), line.crop(start, end).apply_style(style), line.crop(end)])
