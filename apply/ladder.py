"""The matching ladder: find where an ``old -> new`` edit goes in a text, cheapest and strictest rung first.

Every function here works on normalised text (``\\n`` newlines).  A rung either returns a :class:`Match`
(one or more non-overlapping spans to replace), a :class:`Failure` that stops the ladder (ambiguity), or
``None`` meaning "try the next rung".  Rungs are cumulative: each one keeps the normalisations of the rungs
before it.  Rung names (reported to the caller):

``exact`` / ``line-endings``, ``trailing-whitespace``, ``indentation``, ``blank-lines``, ``unicode``,
``elision``, ``fuzzy``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from functools import cached_property
from typing import NamedTuple

# Look-alike characters models produce instead of ASCII (curly quotes, dashes, odd spaces, ellipsis).
_LOOKALIKES = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u00b4": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
        "\u00a0": " ",
        "\u2002": " ",
        "\u2003": " ",
        "\u2007": " ",
        "\u2009": " ",
        "\u200a": " ",
        "\u202f": " ",
        "\u3000": " ",
        "\u200b": "",
        "\u200c": "",
        "\u200d": "",
        "\u2060": "",
        "\ufeff": "",
        "\u2026": "...",
    }
)

_ELISION_RE = re.compile(
    r"^\s*(?:#|//|/\*|<!--|--|;|\*)?\s*(?:\.\.\.|…)(?:[\w\s,'\-]*(?:\.\.\.|…))?\s*(?:\*/|-->)?\s*$"
)
_ELISION_WORDS_RE = re.compile(
    r"^\s*(?:#|//|/\*|<!--|--|;)\s*(?:\.\.\.|…)\s*(?:rest of|existing|unchanged|remaining|other|same|more)\b.*$",
    re.IGNORECASE,
)

# Every rung, in ladder order (the order also ranks how loose a match was).  ``line-endings`` is ``exact`` on a
# file whose newlines differ from the edit's; the applier tells the two apart.
RUNGS = ("exact", "line-endings", "trailing-whitespace", "indentation", "blank-lines", "unicode", "elision",
         "fuzzy")
LINE_RUNGS = ("trailing-whitespace", "indentation", "unicode")  # the rungs that compare whole lines by a key
_RUNG_KEY = {"trailing-whitespace": "rstrip", "indentation": "strip", "unicode": "unicode"}

FUZZY_THRESHOLD = 0.9  # minimum (length-weighted) similarity of the best window
FUZZY_LINE_MIN = 0.7  # every non-blank line of the window must be at least this similar to its search line
FUZZY_MARGIN = 0.03  # the best must beat the best non-overlapping runner-up by this much
FUZZY_MIN_CHARS = 24  # search text shorter than this (non-blank, stripped) never matches fuzzily
FUZZY_MIN_LINES = 2


def unicode_fold(s: str) -> str:
    """``s`` with look-alike characters replaced by their ASCII originals."""
    return s.translate(_LOOKALIKES)


def is_elision(line: str) -> bool:
    """Whether a line stands for code left out (``...``, ``# ... existing code ...``)."""
    return bool(_ELISION_RE.match(line) or _ELISION_WORDS_RE.match(line))


def split_lines(s: str) -> list[str]:
    """Lines of a normalised string; a final newline does not make an extra empty line."""
    if not s:
        return []
    lines = s.split("\n")
    if s.endswith("\n"):
        lines.pop()
    return lines


@dataclass
class Match:
    """Where an edit goes: the replacements to make and the rung that found them."""

    spans: list[tuple[int, int, str]]  # (start, end, replacement) in normalised offsets
    rung: str
    line: int  # 1-based first line of the (first) replaced region
    end_line: int
    fuzzy: bool = False
    similarity: float | None = None


@dataclass
class Failure:
    """Why an edit cannot be placed, worded for the model."""

    kind: str  # not-found | ambiguous | already-applied | invalid
    message: str
    candidates: list[int] = field(default_factory=list)  # 1-based lines
    closest: tuple[int, int, float] | None = None  # (first line, last line, similarity)


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _width(prefix: str, tabsize: int) -> int:
    return len(prefix.expandtabs(tabsize))


class Doc:
    """A normalised text split into lines, with lazily computed matching keys."""

    def __init__(self, norm: str) -> None:
        self.norm = norm
        self.ends_nl = norm.endswith("\n")
        self._keys: dict[str, list[str]] = {}

    @cached_property
    def lines(self) -> list[str]:
        return self.norm.split("\n")

    @cached_property
    def n(self) -> int:
        """Number of real lines (a final newline does not start another one)."""
        if not self.norm:
            return 0
        return len(self.lines) - (1 if self.ends_nl else 0)

    def start(self, i: int) -> int:
        """Offset in ``norm`` where line ``i`` (0-based) starts."""
        return sum(map(len, self.lines[:i])) + i

    def keys(self, kind: str) -> list[str]:
        k = self._keys.get(kind)
        if k is None:
            lines = self.lines[: self.n]
            if kind == "rstrip":
                k = [ln.rstrip() for ln in lines]
            elif kind == "strip":
                k = [ln.strip() for ln in lines]
            elif kind == "unicode":
                if self.norm.isascii():
                    k = self.keys("strip")
                else:
                    k = [ln.strip() for ln in unicode_fold(self.norm).split("\n")[: self.n]]
            else:  # pragma: no cover - programming error
                raise ValueError(kind)
            self._keys[kind] = k
        return k

    def line_of(self, offset: int) -> int:
        """1-based line number of a normalised offset."""
        return self.norm.count("\n", 0, offset) + 1

    def span(self, i: int, j: int, repl_lines: list[str]) -> tuple[int, int, str]:
        """Span replacing whole lines [i, j) by ``repl_lines`` (newlines between lines are kept as they are)."""
        start = self.start(i)
        end = start + sum(map(len, self.lines[i:j])) + (j - 1 - i)
        if repl_lines:
            return (start, end, "\n".join(repl_lines))
        # Deleting whole lines: take one newline with them.
        if j < len(self.lines):
            return (start, end + 1, "")
        if i > 0:
            return (start - 1, end, "")
        return (start, end, "")


def _key(kind: str, line: str) -> str:
    """The part of a line a line rung compares (``kind``: rstrip | strip | unicode)."""
    if kind == "rstrip":
        return line.rstrip()
    if kind == "strip":
        return line.strip()
    return unicode_fold(line).strip()


def _find_runs(doc_keys: list[str], s_keys: list[str], lo: int = 0) -> list[int]:
    """Start indices i >= lo with doc_keys[i:i+m] == s_keys."""
    m = len(s_keys)
    hi = len(doc_keys)
    if m == 0 or hi - lo < m:
        return []
    # Anchor on the longest key (rarest in practice) and verify around it.
    a = max(range(m), key=lambda k: len(s_keys[k]))
    anchor = s_keys[a]
    out: list[int] = []
    pos = lo + a
    last = hi - m + a
    while True:
        try:
            idx = doc_keys.index(anchor, pos, last + 1)
        except ValueError:
            break
        i = idx - a
        if doc_keys[i : i + m] == s_keys:
            out.append(i)
        pos = idx + 1
    return out


def _uniform_offset(file_lines: list[str], s_lines: list[str]) -> tuple[int, int] | None:
    """(offset, tabsize) if every non-blank search line is indented by the same amount relative to the file."""
    for tabsize in (4, 8):
        off: int | None = None
        ok = True
        for f, s in zip(file_lines, s_lines, strict=True):
            if not s.strip() or not f.strip():
                continue
            d = _width(_indent(f), tabsize) - _width(_indent(s), tabsize)
            if off is None:
                off = d
            elif d != off:
                ok = False
                break
        if ok:
            return (off or 0, tabsize)
    return None


def _uses_tabs(lines: list[str]) -> bool:
    """Whether the first indented line is indented with a tab."""
    for ln in lines:
        ind = _indent(ln)
        if ind:
            return ind.startswith("\t")
    return False


def _reindent(line: str, off: int, tabsize: int, tabs: bool) -> str:
    if not line.strip():
        return ""
    w = max(0, _width(_indent(line), tabsize) + off)
    prefix = ("\t" * (w // tabsize) + " " * (w % tabsize)) if tabs else " " * w
    return prefix + line.lstrip()


def build_replacement(
    file_lines: list[str],
    s_lines: list[str],
    r_lines: list[str],
    kind: str,
    off: int = 0,
    tabsize: int = 4,
    aligned: bool = True,
) -> list[str]:
    """The replacement lines for a matched region.

    Replacement lines that are (under the rung's key) copies of search lines are taken verbatim from the
    file, so unchanged context keeps the file's exact bytes.  Other lines are re-indented by the offset
    between the search text and the file, with the file's own indent character.
    """
    # A replacement line is a copy of a search line when its text *and* its indentation (in the model's own
    # coordinates) agree: re-indented code must not be taken back at its old indentation.
    def akey(line: str) -> tuple[int, str]:
        k = _key(kind, line)
        return (_width(_indent(line), tabsize) if k else 0, k)

    s_akeys = [akey(s) for s in s_lines]
    r_akeys = [akey(r) for r in r_lines]
    s_keys = [_key(kind, s) for s in s_lines]
    # search index -> file index
    if aligned:
        s_to_f: dict[int, int] = {k: k for k in range(len(s_lines))}
    else:
        f_keys = [_key(kind, f) for f in file_lines]
        s_to_f = {}
        for tag, a1, a2, b1, b2 in SequenceMatcher(None, s_keys, f_keys, autojunk=False).get_opcodes():
            if tag == "equal" or (tag == "replace" and a2 - a1 == b2 - b1):
                for d in range(a2 - a1):
                    s_to_f[a1 + d] = b1 + d
    tabs_file = _uses_tabs(file_lines)
    tabs_repl = _uses_tabs(r_lines) or _uses_tabs(s_lines)
    change_indent = off != 0 or tabs_file != tabs_repl
    out: list[str] = []
    sm = SequenceMatcher(None, s_akeys, r_akeys, autojunk=False)
    for tag, a1, _a2, b1, b2 in sm.get_opcodes():
        if tag == "equal":
            for d in range(b2 - b1):
                fi = s_to_f.get(a1 + d)
                if fi is not None:
                    out.append(file_lines[fi])
                else:
                    r = r_lines[b1 + d]
                    out.append(_reindent(r, off, tabsize, tabs_file) if change_indent else r)
        else:
            for r in r_lines[b1:b2]:
                out.append(_reindent(r, off, tabsize, tabs_file) if change_indent else r)
    return out


def _pick_candidate(cands: list[int], hint: int | None, what: str) -> int | Failure:
    """Pick one of several candidate start lines (0-based) using a 1-based line hint, else refuse."""
    if len(cands) == 1:
        return cands[0]
    if hint is not None:
        dists = sorted((abs((c + 1) - hint), c) for c in cands)
        if dists[0][0] != dists[1][0]:
            return dists[0][1]
    lines = [c + 1 for c in cands]
    shown = ", ".join(str(x) for x in lines[:20]) + (", ..." if len(lines) > 20 else "")
    return Failure(
        "ambiguous",
        f"{what} matches {len(cands)} places (lines {shown}); include more surrounding lines to make it "
        "unique, or use replace_all to change every occurrence",
        candidates=lines,
    )


def _trim_blank(s_lines: list[str], r_lines: list[str]) -> tuple[list[str], list[str]] | None:
    """The search without its leading and trailing blank lines, and the replacement without as many of its own
    (blank lines the model put around both are not in the file); None when the search has none."""
    a = 0
    while a < len(s_lines) and not s_lines[a].strip():
        a += 1
    b = 0
    while b < len(s_lines) - a and not s_lines[len(s_lines) - 1 - b].strip():
        b += 1
    if a == 0 and b == 0:
        return None
    s2 = s_lines[a : len(s_lines) - b]
    r2 = list(r_lines)
    ra = 0
    while ra < min(a, len(r2)) and not r2[ra].strip():
        ra += 1
    r2 = r2[ra:]
    rb = 0
    while rb < min(b, len(r2)) and not r2[len(r2) - 1 - rb].strip():
        rb += 1
    r2 = r2[: len(r2) - rb]
    return s2, r2


def _line_rungs(
    doc: Doc, s_lines: list[str], r_lines: list[str], hint: int | None, rungs: tuple[str, ...], label: str | None
) -> Match | Failure | None:
    """Line-based rungs on whole lines. ``label`` overrides the reported rung name."""
    m = len(s_lines)
    if m == 0:
        return None
    for rung in rungs:
        kind = _RUNG_KEY[rung]
        s_keys = [_key(kind, s) for s in s_lines]
        if not any(s_keys):
            return None
        cands = _find_runs(doc.keys(kind), s_keys)
        valid: list[tuple[int, int, int]] = []
        for i in cands:
            file_lines = doc.lines[i : i + m]
            if kind == "rstrip":
                valid.append((i, 0, 4))
                continue
            uo = _uniform_offset(file_lines, s_lines)
            if uo is not None:
                valid.append((i, uo[0], uo[1]))
        if not valid:
            continue
        pick = _pick_candidate([v[0] for v in valid], hint, "the search text")
        if isinstance(pick, Failure):
            return pick
        i, off, tabsize = next(v for v in valid if v[0] == pick)
        file_lines = doc.lines[i : i + m]
        repl = build_replacement(file_lines, s_lines, r_lines, kind, off, tabsize)
        return Match([doc.span(i, i + m, repl)], label or rung, i + 1, i + m)
    return None


def _misaligned(norm: str, old: str, pos: int) -> bool:
    """A hit that starts inside a line's indentation with text that is itself indented: the search text is
    less indented than the file, so substituting it as a substring would misplace the replacement's indentation
    (the indentation rung shifts every line instead)."""
    if not old[:1].isspace() or old[:1] == "\n":
        return False
    line_start = norm.rfind("\n", 0, pos) + 1
    return line_start < pos and not norm[line_start:pos].strip(" \t")


def find_exact(doc: Doc, old: str, new: str, hint: int | None, replace_all: bool) -> Match | Failure | None:
    """The exact rung: ``old`` as a substring.  Several hits are told apart by the line hint, else refused."""
    norm = doc.norm
    first = norm.find(old)
    if first == -1:
        return None
    if replace_all:
        spans = []
        pos = first
        while pos != -1:
            spans.append((pos, pos + len(old), new))
            pos = norm.find(old, pos + len(old))
        return Match(spans, "exact", doc.line_of(first), doc.line_of(first + len(old)))
    second = norm.find(old, first + 1)
    if second == -1 and not _misaligned(norm, old, first):
        return Match([(first, first + len(old), new)], "exact", doc.line_of(first), doc.line_of(first + len(old)))
    hits = [first]
    pos = second
    while pos != -1:
        hits.append(pos)
        pos = norm.find(old, pos + 1)
    hits = [h for h in hits if not _misaligned(norm, old, h)]
    if not hits:
        return None
    if len(hits) == 1:
        h = hits[0]
        return Match([(h, h + len(old), new)], "exact", doc.line_of(h), doc.line_of(h + len(old)))
    lines = []
    prev, line = 0, 0
    for h in hits:  # incremental: a common one-line search text may hit thousands of times
        line += norm.count("\n", prev, h)
        prev = h
        lines.append(line)
    pick = _pick_candidate(lines, hint, "old_string")
    if isinstance(pick, Failure):
        return pick
    start = hits[lines.index(pick)]
    return Match([(start, start + len(old), new)], "exact", pick + 1, doc.line_of(start + len(old)))


class _PieceMatch(NamedTuple):
    """Where one elision piece matches: 0-based first line, indent offset, tab size, line-key kind."""

    line: int
    indent_offset: int
    tabsize: int
    key_kind: str


class _PlacedPiece(NamedTuple):
    at: _PieceMatch
    search: list[str]
    replacement: list[str]


def _piece_matches(doc: Doc, search: list[str], lo: int) -> list[_PieceMatch]:
    """Matches of one elision piece at or after line ``lo``, by the strictest line rung that has any."""
    for rung in LINE_RUNGS:
        kind = _RUNG_KEY[rung]
        s_keys = [_key(kind, s) for s in search]
        valid = []
        for i in _find_runs(doc.keys(kind), s_keys, lo):
            uo = (0, 4) if kind == "rstrip" else _uniform_offset(doc.lines[i : i + len(search)], search)
            if uo is not None:
                valid.append(_PieceMatch(i, uo[0], uo[1], kind))
        if valid:
            return valid
    return []


def _blank(lines: list[str]) -> bool:
    return not any(ln.strip() for ln in lines)


def find_elision(doc: Doc, s_lines: list[str], r_lines: list[str]) -> Match | Failure | None:
    """``...`` elisions: the pieces between markers match in order; the elided code is kept.

    Markers pair up in order when the search and the replacement have the same ones; otherwise a search
    marker is an elision only where the replacement keeps it at the same place (other ``...`` lines are
    literal code, a Python ``...`` body say).  When a marker could be either, the edit is refused.
    """
    pairs = _pair_elision_markers(s_lines, r_lines)
    if pairs is None or isinstance(pairs, Failure):
        return pairs
    pieces = _elided_pieces(s_lines, r_lines, pairs)
    if pieces is None or isinstance(pieces, Failure):
        return pieces
    placements = _place_pieces(doc, pieces)
    if not placements:
        return None
    chosen = _pick_placement(placements)
    if isinstance(chosen, Failure):
        return chosen
    spans = []
    for piece in chosen:
        i, end = piece.at.line, piece.at.line + len(piece.search)
        repl = build_replacement(doc.lines[i:end], piece.search, piece.replacement, piece.at.key_kind,
                                 piece.at.indent_offset, piece.at.tabsize)
        spans.append(doc.span(i, end, repl))
    first, last = chosen[0], chosen[-1]
    return Match(spans, "elision", first.at.line + 1, last.at.line + len(last.search))


def _pair_elision_markers(s_lines: list[str], r_lines: list[str]) -> list[tuple[int, int]] | Failure | None:
    """(search line, replacement line) of every marker that elides code; None when the search has no marker."""
    s_marks = [k for k, ln in enumerate(s_lines) if is_elision(ln)]
    if not s_marks:
        return None
    r_marks = [k for k, ln in enumerate(r_lines) if is_elision(ln)]
    if len(s_marks) == len(r_marks) and all(
        s_lines[a].strip() == r_lines[b].strip() for a, b in zip(s_marks, r_marks, strict=True)
    ):
        return list(zip(s_marks, r_marks, strict=True))
    pairs = _markers_kept_in_place(s_lines, r_lines)
    if not pairs:
        return Failure(
            "invalid",
            f"the search text elides code with '...' {len(s_marks)} time(s) but the replacement keeps "
            f"{len(r_marks)} of them in place; keep the same '...' lines in both so the elided code is preserved",
        )
    literal = {s_lines[k].strip() for k in s_marks if k not in {p[0] for p in pairs}}
    literal |= {r_lines[k].strip() for k in r_marks if k not in {p[1] for p in pairs}}
    if literal & {s_lines[p[0]].strip() for p in pairs}:
        return Failure(
            "ambiguous",
            "the '...' lines of the search text could be elisions or literal code; quote the code "
            "without eliding it",
        )
    return pairs


def _markers_kept_in_place(s_lines: list[str], r_lines: list[str]) -> list[tuple[int, int]]:
    """Search markers that the replacement keeps at the same place (same indentation, aligned by difflib)."""
    s_keys = [(_width(_indent(ln), 4), ln.strip()) for ln in s_lines]
    r_keys = [(_width(_indent(ln), 4), ln.strip()) for ln in r_lines]
    pairs = []
    for tag, a1, a2, b1, _b2 in SequenceMatcher(None, s_keys, r_keys, autojunk=False).get_opcodes():
        if tag == "equal":
            pairs.extend((a1 + d, b1 + d) for d in range(a2 - a1) if is_elision(s_lines[a1 + d]))
    return pairs


def _split_at(lines: list[str], marks: list[int]) -> list[list[str]]:
    """The runs of lines between the marker lines (markers dropped)."""
    out, prev = [], 0
    for k in marks:
        out.append(lines[prev:k])
        prev = k + 1
    out.append(lines[prev:])
    return out


def _elided_pieces(s_lines: list[str], r_lines: list[str],
                   pairs: list[tuple[int, int]]) -> list[tuple[list[str], list[str]]] | Failure | None:
    """The (search, replacement) pieces between the markers that have search text; None when none has."""
    pieces = list(zip(_split_at(s_lines, [p[0] for p in pairs]), _split_at(r_lines, [p[1] for p in pairs]),
                      strict=True))
    if any(_blank(search) and not _blank(replacement) for search, replacement in pieces):
        return Failure(
            "invalid",
            "the replacement adds code next to a '...' elision whose position is unknown; "
            "include the surrounding lines instead of '...'",
        )
    return [(search, replacement) for search, replacement in pieces if not _blank(search)] or None


def _piece_variants(search: list[str], replacement: list[str]) -> list[tuple[list[str], list[str]]]:
    """The piece as written, then without its outer blank lines (a blank line next to '...' is often not in
    the file)."""
    variants = [(search, replacement)]
    trimmed = _trim_blank(search, replacement)
    if trimmed is not None:
        variants.append(trimmed)
    return [(s, r) for s, r in variants if not _blank(s)]


def _place_pieces(doc: Doc, pieces: list[tuple[list[str], list[str]]]) -> list[list[_PlacedPiece]]:
    """Every placement of the pieces in order: one per match of the first piece from which the others follow,
    each at its first match after the piece before."""
    for search, replacement in _piece_variants(*pieces[0]):
        placements = []
        for at in _piece_matches(doc, search, 0):
            placement = _place_rest(doc, _PlacedPiece(at, search, replacement), pieces[1:])
            if placement is not None:
                placements.append(placement)
        if placements:
            return placements
    return []


def _place_rest(doc: Doc, first: _PlacedPiece,
                rest: list[tuple[list[str], list[str]]]) -> list[_PlacedPiece] | None:
    placed = [first]
    for search, replacement in rest:
        after = placed[-1].at.line + len(placed[-1].search)
        piece = _place_next(doc, search, replacement, after)
        if piece is None:
            return None
        placed.append(piece)
    return placed


def _place_next(doc: Doc, search: list[str], replacement: list[str], lo: int) -> _PlacedPiece | None:
    """The piece at its first match at or after line ``lo``."""
    for s, r in _piece_variants(search, replacement):
        matches = _piece_matches(doc, s, lo)
        if matches:
            return _PlacedPiece(matches[0], s, r)
    return None


def _pick_placement(placements: list[list[_PlacedPiece]]) -> list[_PlacedPiece] | Failure:
    if len(placements) > 1 and len(placements[0]) > 1:
        # Placements that agree on every piece after the first differ only in how much the first '...' skips:
        # the elision is read as the shortest one (the nearest occurrence of the first piece).
        nearest: dict[tuple[int, ...], list[_PlacedPiece]] = {}
        for placement in placements:
            rest = tuple(p.at.line for p in placement[1:])
            if rest not in nearest or placement[0].at.line > nearest[rest][0].at.line:
                nearest[rest] = placement
        placements = list(nearest.values())
    if len(placements) > 1:
        lines = [p[0].at.line + 1 for p in placements]
        return Failure(
            "ambiguous",
            "the elided search text matches several places (first piece at lines "
            + ", ".join(str(x) for x in lines[:20])
            + "); include more lines before the '...'",
            candidates=lines,
        )
    return placements[0]


def _fuzzy_windows(doc: Doc, s_lines: list[str], cutoff: float) -> list[tuple[float, int, int]]:
    """Scored candidate windows (similarity, start, end) found by anchoring search lines on similar lines."""
    keys = doc.keys("unicode")
    s_keys = [unicode_fold(s).strip() for s in s_lines]
    m = len(s_lines)
    target = "\n".join(k for k in s_keys if k)
    if not target or doc.n == 0:
        return []
    anchors = sorted((k for k in range(m) if len(s_keys[k]) >= 4), key=lambda k: -len(s_keys[k]))[:8]
    from rapidfuzz import fuzz, process  # only an edit that matched no exact rung gets here (~20 ms to load)

    votes: Counter[int] = Counter()
    for k in anchors:
        for _choice, score, idx in process.extract(
            s_keys[k], keys, scorer=fuzz.ratio, score_cutoff=60, limit=40
        ):
            votes[idx - k] += score
    starts = [s for s, _ in votes.most_common(12)]
    seen: set[tuple[int, int]] = set()
    scored: list[tuple[float, int, int]] = []
    for c in starts:
        for i in (c - 1, c, c + 1):
            for length in (m - 1, m, m + 1):
                j = i + length
                if i < 0 or length < 1 or j > doc.n or (i, j) in seen:
                    continue
                seen.add((i, j))
                window = "\n".join(k for k in keys[i:j] if k)
                sim = fuzz.ratio(window, target) / 100.0
                if sim >= cutoff:
                    scored.append((sim, i, j))
    scored.sort(key=lambda t: (-t[0], t[2] - t[1] != m, t[1]))
    return scored


def find_fuzzy(doc: Doc, s_lines: list[str], r_lines: list[str], hint: int | None) -> Match | Failure | None:
    """Bounded fuzzy rung: the search lines against windows of the same shape, line by line.

    A window qualifies only when it has exactly the search's lines (same count, same blank-line layout) and
    every non-blank line is similar (a typo, a renamed token), never when lines are missing or invented:
    applying those would delete or duplicate code.  The best window must clearly beat the runner-up.
    """
    search = [(k, unicode_fold(s).strip()) for k, s in enumerate(s_lines) if s.strip()]  # non-blank lines
    if len(search) < FUZZY_MIN_LINES or sum(len(t) for _, t in search) < FUZZY_MIN_CHARS:
        return None
    m = len(s_lines)
    scored = _same_shape_windows(doc, s_lines, search)
    if not scored:
        return None
    best, bi = scored[0]
    if best < FUZZY_THRESHOLD:
        return None
    runner = next((sim for sim, i in scored[1:] if i + m <= bi or i >= bi + m), 0.0)
    if best - runner < FUZZY_MARGIN:
        return Failure(
            "ambiguous",
            f"the search text is not in the file exactly and resembles several places about equally "
            f"(lines {bi + 1} and {next(i for sim, i in scored[1:] if sim == runner) + 1}); copy the exact "
            "lines from the file",
            candidates=[bi + 1],
        )
    file_lines = doc.lines[bi : bi + m]
    off, tabsize = _uniform_offset(file_lines, s_lines) or (_most_common_offset(file_lines, s_lines), 4)
    repl = build_replacement(file_lines, s_lines, r_lines, "unicode", off, tabsize)
    return Match([doc.span(bi, bi + m, repl)], "fuzzy", bi + 1, bi + m, fuzzy=True, similarity=best)


def _same_shape_windows(doc: Doc, s_lines: list[str], search: list[tuple[int, str]]) -> list[tuple[float, int]]:
    """(similarity, first line) of the windows where every non-blank search line (``search``: index, key) has a
    similar line and the blank lines agree, best first.  Candidate windows come from anchoring the longest
    search lines on similar file lines."""
    m = len(s_lines)
    keys = doc.keys("unicode")
    starts: Counter[int] = Counter()
    from rapidfuzz import fuzz, process  # see _fuzzy_windows

    for k, text in sorted(search, key=lambda kt: -len(kt[1]))[:6]:
        for _choice, _score, idx in process.extract(
            text, keys, scorer=fuzz.ratio, score_cutoff=FUZZY_LINE_MIN * 100, limit=50
        ):
            starts[idx - k] += 1
    scored: list[tuple[float, int]] = []
    for i, _votes in starts.most_common(24):
        if i < 0 or i + m > doc.n:
            continue
        sim = _line_by_line_similarity(keys, i, search)
        if sim is None or any((not keys[i + k]) != (not s_lines[k].strip()) for k in range(m)):
            continue
        scored.append((sim, i))
    scored.sort(key=lambda t: (-t[0], t[1]))
    return scored


def _line_by_line_similarity(keys: list[str], start: int, search: list[tuple[int, str]]) -> float | None:
    """Length-weighted similarity of the window at ``start``; None when one line is blank or too different."""
    from rapidfuzz import fuzz  # see _fuzzy_windows

    weighted = 0.0
    for k, text in search:
        line = keys[start + k]
        if not line:
            return None
        r = fuzz.ratio(line, text) / 100.0
        if r < FUZZY_LINE_MIN:
            return None
        weighted += r * len(text)
    return weighted / sum(len(t) for _, t in search)


def _most_common_offset(file_lines: list[str], s_lines: list[str]) -> int:
    """The indent offset most lines share, when a fuzzy window's lines are not all shifted alike."""
    offsets: Counter[int] = Counter(
        _width(_indent(f), 4) - _width(_indent(s), 4) for f, s in zip(file_lines, s_lines, strict=True)
        if s.strip() and f.strip()
    )
    return offsets.most_common(1)[0][0] if offsets else 0


def run_ladder(doc: Doc, old: str, new: str, *, replace_all: bool = False,
               hint: int | None = None) -> Match | Failure:
    """Run the ladder for one edit on a normalised document; ``old``/``new`` are normalised too."""
    if not old:
        return Failure("invalid", "old_string is empty")
    found = find_exact(doc, old, new, hint, replace_all)
    if found is not None:
        return found
    if replace_all:
        return not_found(doc, old, new)  # replace_all changes exact occurrences only
    s_lines = split_lines(old)
    r_lines = split_lines(new)
    found = _line_rungs(doc, s_lines, r_lines, hint, LINE_RUNGS[:2], None)
    if found is not None:
        return found
    trimmed = _trim_blank(s_lines, r_lines)
    if trimmed is not None:
        found = _line_rungs(doc, trimmed[0], trimmed[1], hint, LINE_RUNGS[:2], "blank-lines")
        if found is not None:
            return found
        s_lines, r_lines = trimmed  # rungs are cumulative: the looser ones keep this normalisation
    found = _line_rungs(doc, s_lines, r_lines, hint, LINE_RUNGS[2:], None)
    if found is not None:
        return found
    elided = find_elision(doc, s_lines, r_lines)
    if isinstance(elided, Match):
        return elided
    # An elision refusal waits for the fuzzy rung: the '...' lines may be literal code, a typo away from the file.
    found = find_fuzzy(doc, s_lines, r_lines, hint)
    if found is not None:
        return found
    if elided is not None:
        return elided
    return not_found(doc, old, new)


def _already_applied(doc: Doc, old: str, new: str) -> int | None:
    """1-based line where the replacement text already is, when the edit looks applied already."""
    if len(new.strip()) < 12:
        return None  # too short for its presence to mean anything
    pos = doc.norm.find(new)
    if pos != -1 and new not in old:
        return doc.line_of(pos)
    r_lines = list(split_lines(new))
    while r_lines and not r_lines[0].strip():
        r_lines.pop(0)
    while r_lines and not r_lines[-1].strip():
        r_lines.pop()
    if not r_lines:
        return None
    s_keys = {unicode_fold(s).strip() for s in split_lines(old)}
    r_keys = [unicode_fold(r).strip() for r in r_lines]
    if all(k in s_keys for k in r_keys):
        return None  # a pure deletion or re-ordering: presence of new lines says nothing
    hits = _find_runs(doc.keys("unicode"), r_keys)
    return hits[0] + 1 if hits else None


def closest_region(doc: Doc, old: str) -> tuple[int, int, float] | None:
    """(first line, last line, similarity) of the region most like ``old``, to show the model on a miss."""
    s_lines = split_lines(old)
    if not s_lines or doc.n == 0:
        return None
    scored = _fuzzy_windows(doc, s_lines, 0.0)
    if not scored:
        return None
    sim, i, j = scored[0]
    return (i + 1, j, sim)


def numbered(doc: Doc, first: int, last: int, limit: int = 30) -> str:
    """Lines ``first``..``last`` (1-based, at most ``limit``) prefixed with their line numbers."""
    last = min(last, doc.n, first + limit - 1)
    width = len(str(last))
    return "\n".join(f"{n:>{width}} | {doc.lines[n - 1]}" for n in range(first, last + 1))


def not_found(doc: Doc, old: str, new: str) -> Failure:
    """The refusal of an edit no rung placed: already applied, else the closest region to copy from."""
    applied_at = _already_applied(doc, old, new)
    closest = closest_region(doc, old)
    if applied_at is not None:
        return Failure(
            "already-applied",
            f"old_string was not found, but the replacement text is already present at line {applied_at}: "
            "this edit looks already applied; re-read the file before editing again",
            candidates=[applied_at],
            closest=closest,
        )
    msg = "old_string was not found in the file (compared exactly, then ignoring whitespace, indentation, " \
        "blank lines and look-alike characters, then fuzzily)"
    if closest is not None and closest[2] >= 0.4:
        first, last, sim = closest
        msg += f". The closest region is lines {first}-{last} ({sim:.0%} similar):\n" + numbered(doc, first, last)
        msg += "\nCopy the exact text from the file (re-read it if it may have changed)."
    else:
        msg += "; nothing in the file resembles it. Re-read the file before editing."
    return Failure("not-found", msg, closest=closest)
