"""A small terminal for tests and the TUI benchmark: applies what an app wrote (cursor moves, SGR, text, scroll
regions, SU/SD) to a grid of cells, each the character and the SGR codes in force when it was written. Enough to
tell what an app that writes only the differences between frames leaves on the screen, where searching its
output for a word fails (a word may be written in pieces, at different times).

`feed` takes output as it arrives: a sequence or a UTF-8 character cut between two reads waits for the rest."""

from __future__ import annotations

import codecs
import re

_TOKEN = re.compile(
    r"\x1b\[(?P<params>[0-9;?<>=$]*)[ -/]*(?P<final>[@-~])"  # CSI
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC
    r"|\x1b[()][0-9A-B]|\x1b[=>]"
    r"|(?P<text>[^\x1b\r\n]+)|(?P<cr>\r)|(?P<lf>\n)"
)
_INCOMPLETE = re.compile(r"\x1b(?:\[[0-9;?<>=$]*[ -/]*|\][^\x07\x1b]*|\x1b?|[()])?\Z")


class VirtualTerminal:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.cells = [[(" ", "")] * width for _ in range(height)]
        self.x = self.y = 0
        self.sgr = ""
        self.top, self.bottom = 0, height  # the scroll region, [top, bottom)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._rest = ""

    def feed(self, data: bytes | str) -> None:
        text = self._rest + (self._decoder.decode(data) if isinstance(data, bytes) else data)
        cut = _INCOMPLETE.search(text)
        text, self._rest = (text[: cut.start()], text[cut.start():]) if cut else (text, "")
        for m in _TOKEN.finditer(text):
            if m.group("text") is not None:
                self._text(m.group("text"))
            elif m.group("cr"):
                self.x = 0
            elif m.group("lf"):
                self.y = min(self.y + 1, self.height - 1)
            elif m.group("final") is not None:
                self._csi(m.group("params") or "", m.group("final"))

    def _csi(self, params: str, final: str) -> None:
        if params and not params[0].isdigit():
            return  # private modes, queries: nothing on the screen
        nums = [int(p) if p.isdigit() else 0 for p in params.split(";")] if params else []
        if final == "H":
            self.y = min(max((nums[0] if nums else 1) - 1, 0), self.height - 1)
            self.x = max((nums[1] if len(nums) > 1 else 1) - 1, 0)
        elif final == "m":
            self.sgr = "" if params in ("", "0") else self.sgr + ";" + params
        elif final == "r":
            self.top = (nums[0] - 1) if nums else 0
            self.bottom = nums[1] if len(nums) > 1 else self.height
            self.x = self.y = 0
        elif final in "ST":
            self._scroll((nums[0] if nums else 1) * (1 if final == "S" else -1))

    def _scroll(self, lines: int) -> None:
        band = self.cells[self.top:self.bottom]
        blank = [[(" ", "")] * self.width for _ in range(min(abs(lines), len(band)))]
        band = band[lines:] + blank if lines > 0 else blank + band[:lines]
        self.cells[self.top:self.bottom] = band

    def _text(self, text: str) -> None:
        if not 0 <= self.y < self.height or self.x >= self.width:
            self.x += len(text)
            return
        row = list(self.cells[self.y])
        n = min(len(text), self.width - self.x)
        row[self.x:self.x + n] = [(ch, self.sgr) for ch in text[:n]]
        self.cells[self.y] = row
        self.x += len(text)

    def lines(self) -> list[str]:
        return ["".join(ch for ch, _ in row) for row in self.cells]

    def screen(self) -> str:
        return "\n".join(line.rstrip() for line in self.lines())

    def styled(self) -> list[list[tuple[str, str]]]:
        return [list(row) for row in self.cells]
