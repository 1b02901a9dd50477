"""What a fill-in-the-middle suggestion must not be: a repetition loop, a repeat of the text after the cursor or of
the line above, several lines where the cursor's position calls for one, brackets it opened and left open, or
whitespace. Each filter takes the completion and its place and returns the completion to show ('' to drop it).

Pure text logic. `apply_filters` runs them in order and names the ones that changed or dropped the completion
(the engine counts them; the benchmark reports each one's share).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_OPENERS = (":", "{", "(", "[", "=>", "->", " do", "then", "\\")
_PAIRS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = {v: k for k, v in _PAIRS.items()}
_CHAR_LOOP = re.compile(r"(.{2,24}?)\1{3,}", re.DOTALL)
_SAME_CHAR = re.compile(r"([A-Za-z0-9])\1{15,}")


@dataclass(frozen=True)
class Place:
    """Where the completion goes: the text before and after the cursor, and how generation ended."""

    prefix: str
    suffix: str
    stop_type: str = "eos"

    @property
    def line_before(self) -> str:
        """The cursor line up to the cursor."""
        return self.prefix.rsplit("\n", 1)[-1]

    @property
    def line_after(self) -> str:
        """The cursor line after the cursor."""
        return self.suffix.split("\n", 1)[0].rstrip("\r")

    @property
    def line_above(self) -> str:
        parts = self.prefix.rsplit("\n", 2)
        return parts[-2] if len(parts) >= 2 else ""

    @property
    def next_line(self) -> str:
        """The first non-blank line after the cursor line."""
        for ln in self.suffix.split("\n")[1:]:
            if ln.strip():
                return ln.rstrip("\r")
        return ""


# ------------------------------------------------------------------------------------------------ the filters

def whitespace_only(text: str, place: Place) -> str:
    return text if text.strip() else ""


def repetition_loop(text: str, place: Place) -> str:
    """Cut a loop (`itititit`, the same line or block over and over) after its first round."""
    lines = text.split("\n")
    for p in (1, 2, 3):
        for i in range(len(lines) - 3 * p + 1):
            unit = lines[i : i + p]
            if sum(c.isalnum() for c in "".join(unit)) < 2:
                continue
            if unit == lines[i + p : i + 2 * p] == lines[i + 2 * p : i + 3 * p]:
                return "\n".join(lines[: i + p])
    m = _SAME_CHAR.search(text)
    if m:
        return text[: m.start() + 1]
    for m in _CHAR_LOOP.finditer(text):
        unit = m.group(1)
        reps = len(m.group(0)) // len(unit)
        if any(c.isalpha() for c in unit) and (m.end() == len(text) or reps >= 6) and len(m.group(0)) >= 12:
            return text[: m.start() + len(unit)]
    return text


def suffix_repeat(text: str, place: Place) -> str:
    """Stop where the completion starts repeating what follows the cursor: the rest of the cursor line (the `)`
    of `f(|)`), or the next line (a `}` already there)."""
    rest = place.line_after.strip()
    first_nl = text.find("\n")
    first = text if first_nl < 0 else text[:first_nl]
    if rest:
        if first.rstrip().endswith(rest):
            return first.rstrip()[: len(first.rstrip()) - len(rest)]
        if len(rest) >= 4 and rest in first:
            return first[: first.index(rest)]
    nxt = place.next_line.rstrip()
    if nxt.strip() and first_nl >= 0:
        pos = first_nl
        while pos >= 0:
            end = text.find("\n", pos + 1)
            line = text[pos + 1 :] if end < 0 else text[pos + 1 : end]
            if line.rstrip() == nxt and (end >= 0 or place.stop_type != "limit" or len(line) >= len(nxt)):
                return text[:pos]
            pos = end
    if not place.line_before.strip() and nxt.strip() and first.strip() == nxt.strip():
        return ""
    return text


def repeats_neighbour(text: str, place: Place) -> str:
    """Drop a completion whose line is the line above over again."""
    first = text.split("\n", 1)[0]
    line = (place.line_before + first).strip()
    above = place.line_above.strip()
    if len(line) >= 4 and line == above:
        return ""
    return text


def calls_for_multiline(place: Place, text: str) -> bool:
    """Several lines only at the end of a line (nothing but closers after the cursor) and where a new line or a
    block starts: an empty cursor line, or one the completion's first line ends with a block opener on."""
    if place.line_after.strip().strip(")]}'\";,"):
        return False
    if not place.line_before.strip():
        return True
    first = place.line_before + text.split("\n", 1)[0]
    return _code_part(first).rstrip().endswith(_OPENERS)


def single_line_where_due(text: str, place: Place) -> str:
    if "\n" not in text.rstrip("\n") or calls_for_multiline(place, text):
        return text
    return text.split("\n", 1)[0]


def balance_brackets(text: str, place: Place) -> str:
    """Close on the line what a one-line completion opened and left open (unless the text after the cursor
    does); cut the unfinished last line of a multi-line completion cut off by the token limit."""
    stack = _open_brackets(text)
    if not stack:
        return text
    if "\n" not in text:
        closers = "".join(_PAIRS[c] for c in reversed(stack))
        have = place.line_after.lstrip()
        if have.startswith(closers[:1]):
            return text
        return text + closers
    if place.stop_type == "limit":
        return text[: text.rfind("\n")]
    return text


def _open_brackets(text: str) -> list[str]:
    """The brackets `text` opens and does not close (strings and line comments skipped, roughly)."""
    stack: list[str] = []
    quote = ""
    for line in text.split("\n"):
        quote = ""
        for i, ch in enumerate(line):
            if quote:
                if ch == quote and (i == 0 or line[i - 1] != "\\"):
                    quote = ""
            elif ch in "'\"`":
                quote = ch
            elif ch == "#" or line.startswith("//", i):
                break
            elif ch in _PAIRS:
                stack.append(ch)
            elif ch in _CLOSERS and stack and stack[-1] == _CLOSERS[ch]:
                stack.pop()
    return stack


def _code_part(line: str) -> str:
    for c in (" #", " //"):
        i = line.find(c)
        if i > 0:
            line = line[:i]
    return line


# ------------------------------------------------------------------------------------------------- the chain

Filter = Callable[[str, Place], str]
FILTERS: tuple[tuple[str, Filter], ...] = (
    ("whitespace_only", whitespace_only),
    ("repetition_loop", repetition_loop),
    ("suffix_repeat", suffix_repeat),
    ("repeats_neighbour", repeats_neighbour),
    ("single_line", single_line_where_due),
    ("brackets", balance_brackets),
)


def apply_filters(text: str, place: Place) -> tuple[str, list[str], str]:
    """(the completion to show, the filters that changed it, the filter that dropped it or '')."""
    changed: list[str] = []
    for name, f in FILTERS:
        out = f(text, place)
        if out != text:
            if not out.strip():
                return "", changed, name
            changed.append(name)
            text = out
    return text, changed, ""
