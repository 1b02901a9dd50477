"""Completion in the input box: which token is being completed, the candidates for it, and the popup list.

Two kinds of token: `/name` at the very start of the input (slash commands, from a callable the app gives, so
custom commands can join later) and `@path` anywhere after a space or at a line start (repository files,
matched fuzzily). The file list comes from the repository walker, built in a thread and kept; a query over
20k paths narrows from the previous query's survivors, so typing stays well inside a frame.
"""

from __future__ import annotations

import heapq
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rapidfuzz import fuzz, process
from textual.content import Content
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from ghostline.index.walker import ALL_FILES, IgnoreRules, walk

# (name without the slash, argument hint, description)
CommandSpec = tuple[str, str, str]
CommandSource = Callable[[], Iterable[CommandSpec]]

MAX_CANDIDATES = 50
ALIGNMENT_RANK_MAX = 1500  # scattered matches beyond this many are ranked by length alone (speed)
WORD_SEPARATORS = frozenset("/_-. ")
FILES_MAX_AGE_S = 30.0


@dataclass(frozen=True)
class Candidate:
    insert: str  # replaces the whole token, trigger included ("/help ", "@src/app.py ")
    label: str
    detail: str = ""


@dataclass(frozen=True)
class Token:
    kind: Literal["slash", "path"]
    row: int
    start: int  # column of the trigger character
    end: int  # column after the token's last character (the token may go on past the cursor)
    query: str  # what is typed between the trigger and the cursor


def find_token(line: str, row: int, column: int) -> Token | None:
    """The completable token under the cursor at (row, column) of a line, if any."""
    end = column
    while end < len(line) and not line[end].isspace():
        end += 1
    before = line[:column]
    if row == 0 and before.startswith("/") and not before.startswith("//") and not _has_space(before):
        return Token("slash", row, 0, end, before[1:])
    at = before.rfind("@")
    if at >= 0 and (at == 0 or before[at - 1].isspace()) and not _has_space(before[at + 1:]):
        return Token("path", row, at, end, before[at + 1:])
    return None


def _has_space(text: str) -> bool:
    return any(ch.isspace() for ch in text)


def slash_candidates(commands: Iterable[CommandSpec], query: str) -> list[Candidate]:
    """Commands whose name starts with the query, then those containing it, then fuzzy ones (in order given)."""
    q = query.lower()
    specs = list(commands)
    ranked = [s for s in specs if s[0].lower().startswith(q)]
    ranked += [s for s in specs if q in s[0].lower() and s not in ranked]
    if q and not ranked:
        names = {i: s[0].lower() for i, s in enumerate(specs)}
        ranked = [specs[i] for _, _, i in process.extract(q, names, scorer=fuzz.ratio, score_cutoff=50)]
    return [Candidate(f"/{name} ", f"/{name}" + (f" {hint}" if hint else ""), desc) for name, hint, desc in ranked]


class PathMatcher:
    """fzf-like matching of a query against repository paths: every character of the query, in order,
    case-insensitively; ranked by where they fall (the file name starts with the query, contains it, the path
    contains it, the name holds them scattered, the path does), shorter paths first, scattered ones by how
    they align (`alignment_score`). A query that matches no path at all (a typo) gets rapidfuzz's nearest
    file names instead."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = list(paths)
        self._low = [p.lower() for p in self.paths]
        self._names = [p.rpartition("/")[2] for p in self._low]
        self._narrowed: tuple[str, list[int]] = ("", list(range(len(self.paths))))
        self._shallow_first: list[int] | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def match(self, query: str, limit: int = MAX_CANDIDATES) -> list[str]:
        q = query.lower()
        if not q:
            if self._shallow_first is None:
                self._shallow_first = heapq.nsmallest(
                    MAX_CANDIDATES, range(len(self.paths)), key=lambda i: (self._low[i].count("/"), self._low[i]))
            return [self.paths[i] for i in self._shallow_first[:limit]]
        survivors = self._survivors(q)
        ranked = self._rank(q, survivors, limit) if survivors else self._nearest_names(q, limit)
        return [self.paths[i] for i in ranked]

    def _survivors(self, q: str) -> list[int]:
        last_query, last = self._narrowed
        pool = last if last_query and q.startswith(last_query) else range(len(self.paths))
        low = self._low
        for ch in dict.fromkeys(q):  # cheap C-level filters first: every character is somewhere in the path
            pool = [i for i in pool if ch in low[i]]
        in_order = _subsequence(q)
        survivors = [i for i in pool if in_order.match(low[i])]
        self._narrowed = (q, survivors)
        return survivors

    def _rank(self, q: str, survivors: list[int], limit: int) -> list[int]:
        names, low = self._names, self._low
        in_name = _subsequence(q)
        tiers: list[tuple[Callable[[int], bool], bool | None]] = [  # (membership, scattered in the name?)
            (lambda i: names[i].startswith(q), None),
            (lambda i: q in names[i], None),
            (lambda i: q in low[i], None),
            (lambda i: in_name.match(names[i]) is not None, True),
            (lambda i: True, False),
        ]
        out: list[int] = []
        rest = survivors
        for in_tier, scattered_in_name in tiers:
            tier, rest = _split(rest, in_tier)
            want = limit - len(out)
            if scattered_in_name is not None and len(tier) <= ALIGNMENT_RANK_MAX:
                out += self._most_compact(q, tier, scattered_in_name, want)
            else:
                out += heapq.nsmallest(want, tier, key=lambda i: (len(low[i]), low[i]))
            if len(out) >= limit or not rest:
                break
        return out

    def _most_compact(self, q: str, tier: list[int], in_name: bool, n: int) -> list[int]:
        """Scattered matches, best aligned first (render_widget before frontend_widget for "rendwid")."""
        def key(i: int) -> tuple[int, int]:
            text = self.paths[i]
            if in_name:
                text = text[text.rfind("/") + 1:]
            return -alignment_score(q, text), len(self._low[i])
        return heapq.nsmallest(n, tier, key=key)

    def _nearest_names(self, q: str, limit: int) -> list[int]:
        hits = process.extract(q, self._names, scorer=fuzz.ratio, limit=limit, score_cutoff=60)
        return [i for _, _, i in hits]


def alignment_score(q: str, text: str) -> int:
    """How well the lower-case query `q` aligns with `text` (which must hold it in order), as fzf judges it:
    in the shortest window holding it, characters at word starts (after a separator, or a camelCase hump)
    and characters right after the previous match count; the window's gaps cost."""
    low = text.lower()
    if len(low) != len(text):  # a few characters change length when lowered: no camelCase humps then
        text = low
    end = -1
    for ch in q:  # the end of the first match
        end = low.index(ch, end + 1)
    start = end + 1
    for ch in reversed(q):  # from there back: the latest start, so the shortest window
        start = low.rindex(ch, 0, start)
    score, j, previous = 0, 0, -2
    for i in range(start, end + 1):
        if j < len(q) and low[i] == q[j]:
            at_word_start = i == 0 or text[i - 1] in WORD_SEPARATORS or (text[i].isupper() and text[i - 1].islower())
            score += 3 * at_word_start + 2 * (previous == i - 1)
            previous, j = i, j + 1
    return score - (end - start + 1 - len(q))


def _subsequence(q: str) -> re.Pattern[str]:
    # "[^a]*a[^b]*b": linear, no backtracking; `match` anchors it at the start.
    return re.compile("".join(f"[^{re.escape(ch)}]*{re.escape(ch)}" for ch in q))


def _split(items: list[int], pred: Callable[[int], bool]) -> tuple[list[int], list[int]]:
    yes: list[int] = []
    no: list[int] = []
    for i in items:
        (yes if pred(i) else no).append(i)
    return yes, no


class RepoFiles:
    """The repository's files for @-completion: listed in a daemon thread (an exit never waits for a listing
    of a huge tree), kept, listed again once stale; the old list serves meanwhile."""

    def __init__(self, root: Path, max_age_s: float = FILES_MAX_AGE_S) -> None:
        self.root = root
        self.max_age_s = max_age_s
        self.matcher = PathMatcher([])
        self.built_at: float | None = None
        self._lock = threading.Lock()
        self._listing: threading.Event | None = None  # set when the running listing ends

    def refresh(self, on_done: Callable[[], None] = lambda: None) -> bool:
        """Start a listing when the list is missing or stale and none runs; `on_done` is then called from
        the listing's thread. True when one was started."""
        with self._lock:
            fresh = self.built_at is not None and time.monotonic() - self.built_at < self.max_age_s
            if fresh or (self._listing is not None and not self._listing.is_set()):
                return False
            self._listing = done = threading.Event()
        threading.Thread(target=self._list, args=(done, on_done), name="ghostline-repo-files", daemon=True).start()
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the running listing, if any; False on timeout."""
        listing = self._listing
        return listing is None or listing.wait(timeout)

    def _list(self, done: threading.Event, on_done: Callable[[], None]) -> None:
        try:
            self.build()
        finally:
            done.set()
        on_done()

    def build(self) -> None:
        """List the files now (blocking)."""
        matcher = PathMatcher(list_repo_files(self.root))
        self.matcher, self.built_at = matcher, time.monotonic()

    def candidates(self, query: str) -> list[Candidate]:
        return [Candidate(f"@{p} ", p) for p in self.matcher.match(query)]


def list_repo_files(root: Path) -> list[str]:
    """Paths relative to root (forward slashes), as the repository walker sees them (.gitignore honoured)."""
    return [f.path for f in walk(IgnoreRules(root), files=ALL_FILES)]


class CompletionPopup(OptionList):
    """The candidate list: an overlay drawn just above the widget it is mounted before (never focused;
    the input box moves its highlight and accepts)."""

    DEFAULT_CSS = """
    CompletionPopup {
        overlay: screen;
        offset-y: -100%;
        display: none;
        width: 100%;
        height: auto;
        max-height: 12;
        border: round $accent;
        background: $surface;
        padding: 0 1;
    }
    CompletionPopup.-open { display: block; }
    """
    can_focus = False

    def __init__(self, on_pick: Callable[[int], None], **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self._on_pick = on_pick
        self.candidates: list[Candidate] = []

    @property
    def is_open(self) -> bool:
        return self.has_class("-open")

    def show(self, candidates: list[Candidate], title: str = "", empty: str = "") -> None:
        """Open (or refill) the list; `empty` is the one greyed row shown when there is no candidate."""
        self.candidates = candidates
        if candidates:
            self.set_options(Option(_row(c)) for c in candidates)
        else:
            self.set_options([Option(Content.styled(empty, "dim italic"), disabled=True)])
        self.border_title = Content(title) if title else None
        self.highlighted = 0 if candidates else None
        self.add_class("-open")

    def hide(self) -> None:
        self.remove_class("-open")
        self.candidates = []
        self.clear_options()

    def move(self, delta: int) -> None:
        if self.candidates:
            self.highlighted = ((self.highlighted or 0) + delta) % len(self.candidates)

    @property
    def current(self) -> Candidate | None:
        i = self.highlighted
        return self.candidates[i] if i is not None and 0 <= i < len(self.candidates) else None

    def _on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._on_pick(event.option_index)


def _row(c: Candidate) -> Content:
    return Content.assemble((c.label, "bold"), ("  " + c.detail, "dim") if c.detail else "")
