"""When to stop a completion: llama.cpp's n_indent and t_max_predict_ms rules, stop strings, and the end of the
syntactic unit (the current line, or the block it opens, judged by indentation). Pure text logic, no model."""

from __future__ import annotations

from dataclasses import dataclass

_OPENERS = (":", "{", "(", "[", "=>", "->", " do", "then", "\\")


def indent_of(line: str, tab_width: int = 4) -> int:
    n = 0
    for ch in line:
        if ch == " ":
            n += 1
        elif ch == "\t":
            n += tab_width
        else:
            break
    return n


@dataclass
class StopDecision:
    stop: bool = False
    keep: int = -1  # characters of the text to keep (-1: all)
    stop_type: str = "none"
    word: str = ""


def check_stop_strings(text: str, stops: list[str], start: int = 0) -> StopDecision:
    """The earliest stop string in text[start - longest:] -> keep text before it."""
    best = -1
    word = ""
    longest = max((len(s) for s in stops if s), default=0)
    lo = max(0, start - longest)
    for s in stops:
        if not s:
            continue
        i = text.find(s, lo)
        if i >= 0 and (best < 0 or i < best):
            best, word = i, s
    if best >= 0:
        return StopDecision(True, best, "word", word)
    return StopDecision()


def check_n_indent(text: str, n_indent: int) -> StopDecision:
    """llama.cpp: once a new line has started and has a non-space character, stop if it is indented less than
    n_indent, cutting that line. Every line after the first is checked (one token can hold several lines)."""
    if n_indent <= 0:
        return StopDecision()
    pos = text.find("\n")
    while pos >= 0:
        start = pos + 1
        end = text.find("\n", start)
        line = text[start:] if end < 0 else text[start:end]
        stripped = line.lstrip(" \t")
        if stripped and len(line) - len(stripped) < n_indent:
            return StopDecision(True, start, "limit")
        pos = end
    return StopDecision()


def _opens_block(line: str) -> bool:
    s = line.rstrip()
    if not s:
        return False
    # strip a trailing line comment conservatively
    for c in ("#", "//"):
        i = s.find(c)
        if i > 0:
            s = s[:i].rstrip() or s
    return s.endswith(_OPENERS)


def check_unit(cursor_line_prefix: str, text: str, tab_width: int = 4) -> StopDecision:
    """Stop at the end of the syntactic unit that starts at the cursor.

    The first line (what completes the cursor line) is always kept. If that line does not open a block, the
    completion ends with it. If it does, the block runs until a non-empty line indented no deeper than the
    cursor line; that line is kept only when it closes the block (`}`, `)`, `]`, `end`)."""
    nl = text.find("\n")
    if nl < 0:
        return StopDecision()
    first = cursor_line_prefix + text[:nl]
    base = indent_of(first if first.strip() else cursor_line_prefix, tab_width)
    if not first.strip():
        # The cursor line was empty: the unit is the next non-empty line (and its block).
        rest = text[nl + 1 :]
        lines = rest.split("\n")
        if len(lines) < 2:
            return StopDecision()
        # find first non-empty complete line
        off = nl + 1
        for i, ln in enumerate(lines[:-1]):
            if ln.strip():
                return _block_after(text, off + len(ln), indent_of(ln, tab_width), ln, tab_width) \
                    if _opens_block(ln) else StopDecision(True, off + len(ln), "limit")
            off += len(ln) + 1
            del i
        return StopDecision()
    if not _opens_block(first):
        return StopDecision(True, nl, "limit")
    return _block_after(text, nl, base, first, tab_width)


def _block_after(text: str, start: int, base: int, opener: str, tab_width: int) -> StopDecision:
    """Inside a block opened by the line ending at `start`: stop at the first complete non-empty line with
    indentation <= base."""
    pos = start + 1
    while True:
        nl = text.find("\n", pos)
        if nl < 0:
            return StopDecision()  # the current line is not complete yet
        line = text[pos:nl]
        if line.strip():
            if indent_of(line, tab_width) <= base:
                if line.strip()[0] in "})]" or line.strip().startswith("end"):
                    return StopDecision(True, nl, "limit")
                return StopDecision(True, pos - 1 if pos > 0 else 0, "limit")
        pos = nl + 1
