"""Between a backend and the editor: every suggestion of one job passes the filters (fill-in-the-middle requests)
and the credential scanner (every request) before it is answered, and a streamed suggestion is released only as
far as it is settled -- never part of a secret, never past the point where it starts repeating the rest of the
cursor line, never past the first line where the position calls for one.

A `SuggestionGuard` belongs to one Job and is called under the Job's lock: `feed` as the worker emits text
(returns what may be streamed now), `finish` with the final result (returns it post-processed; the streamed text
is always a prefix of the final one).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

from ghostline.daemon.engine.filters import Place, apply_filters, calls_for_multiline
from ghostline.daemon.engine.secrets import SecretScanner, undecided_tail
from ghostline.daemon.engine.types import Completion, CompletionRequest, CompletionResult


@dataclass
class GuardReport:
    """What the guard did to a job's suggestions (for counters and telemetry: names only, never text)."""

    blocked: list[str] = field(default_factory=list)  # secret kinds, one per suggestion cut or dropped
    changed: list[str] = field(default_factory=list)  # filters that changed a suggestion
    dropped: list[str] = field(default_factory=list)  # filters that dropped one
    scan_ms: float = 0.0  # the scanner's time on the final suggestions


class SuggestionGuard:
    def __init__(self, req: CompletionRequest, scanner: SecretScanner, *, stream: bool, filters: bool = True):
        self.req = req
        self.scanner = scanner
        self.stream = stream
        fim = req.raw_prompt is None
        self.filters = filters and fim
        prompt = req.prefix if fim else (req.raw_prompt or "")
        # the cursor line so far: a secret the suggestion completes may have started there
        self.context = prompt.rsplit("\n", 1)[-1][-256:]
        self.place = Place(req.prefix, req.suffix) if fim else Place(prompt, "")
        self.raw: dict[int, str] = {}
        self.released: dict[int, int] = {}
        self.stopped: set[int] = set()  # a secret showed up: nothing more of this candidate is streamed
        self.report = GuardReport()

    # ------------------------------------------------------------------------------------------ streaming
    def feed(self, index: int, piece: str) -> str:
        """The worker produced `piece` for candidate `index`: the text that may be streamed now ('' often)."""
        raw = self.raw.get(index, "") + piece
        self.raw[index] = raw
        if not self.stream or index in self.stopped:
            return ""
        done = self.released.get(index, 0)
        n = self._settled(index, raw)
        if n <= done:
            return ""
        self.released[index] = n
        return raw[done:n]

    def _settled(self, index: int, raw: str) -> int:
        ctx = self.context
        found = self.scanner.find(ctx + raw, after=len(ctx))
        if found is not None:  # nothing from the secret on is ever streamed
            self.stopped.add(index)
            return max(0, found.start - len(ctx))
        n = max(0, undecided_tail(ctx + raw) - len(ctx))
        if self.filters:
            rest = self.place.line_after.strip()
            if rest:
                i = raw.find(rest)
                n = min(n, i if i >= 0 else len(raw) - _overlap(raw, rest))
            nl = raw.find("\n")
            if nl >= 0 and not calls_for_multiline(self.place, raw):
                n = min(n, nl)
        return n

    # ------------------------------------------------------------------------------------------ the answer
    def finish(self, result: CompletionResult, *, follows_stream: bool = True) -> tuple[CompletionResult,
                                                                                       dict[int, str]]:
        """The result with every suggestion post-processed, and per candidate the text still to stream so the
        stream adds up to the final suggestion. `follows_stream`: the result continues what was streamed (not a
        stand-in answer from elsewhere, such as the deadline's classical completion)."""
        t0 = time.perf_counter()
        comps = []
        tails: dict[int, str] = {}
        for i, c in enumerate(result.completions):
            text = self._final_text(c.content, c.stop_type)
            shown = self.raw.get(i, "")[: self.released.get(i, 0)] if follows_stream else ""
            if not text.startswith(shown):  # what was streamed stays (it passed the scanner): stop there
                text = shown
            if len(text) > len(shown):
                tails[i] = text[len(shown) :]
            comps.append(dataclasses.replace(c, content=text) if text != c.content else c)
        self.report.scan_ms = (time.perf_counter() - t0) * 1e3
        if comps == result.completions:
            return result, tails
        return dataclasses.replace(result, completions=comps), tails

    def _final_text(self, text: str, stop_type: str) -> str:
        # the scanner first: a filter may cut a secret short (a loop filter shortens `Zq8Zq8Zq8...`) into a piece
        # no detector recognises any more
        text = self._cut_secret(text)
        if self.filters and text:
            text, changed, dropped = apply_filters(text, dataclasses.replace(self.place, stop_type=stop_type))
            self.report.changed += changed
            if dropped:
                self.report.dropped.append(dropped)
        return text

    def _cut_secret(self, text: str) -> str:
        """Cut before the line the first secret is on (the suggestion's own part of it); '' when nothing is left."""
        ctx = self.context
        found = self.scanner.find(ctx + text, after=len(ctx))
        if found is None:
            return text
        self.report.blocked.append(found.kind)
        line_start = (ctx + text).rfind("\n", 0, found.start) + 1
        kept = text[: max(0, line_start - len(ctx))].rstrip()
        return kept if kept.strip() else ""


def _overlap(text: str, stop: str) -> int:
    """The longest end of `text` that is a start of `stop` (it may be about to repeat it)."""
    for k in range(min(len(stop) - 1, len(text)), 0, -1):
        if text.endswith(stop[:k]):
            return k
    return 0


def guard_completions(req: CompletionRequest, scanner: SecretScanner,
                      completions: list[Completion]) -> tuple[list[Completion], GuardReport]:
    """Post-process finished suggestions outside a job (the LSP bridge's own classical answers)."""
    g = SuggestionGuard(req, scanner, stream=False)
    res, _ = g.finish(CompletionResult(completions))
    return res.completions, g.report
