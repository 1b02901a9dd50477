"""The whole-file fallback: after repeated failed edits of a file, ask for a complete rewrite, and check it."""

from __future__ import annotations

import re

from ghostline.apply.ladder import is_elision
from ghostline.apply.textfile import normalize_newlines

# A comment (or bare line) standing for code the model did not write out.
_PLACEHOLDER_RE = re.compile(
    r"(?i)^\s*(?:#|//|/\*|<!--|--|;|\*|\{/\*)?\s*(?:\.\.\.|…)?\s*[\[(<]?\s*"
    r"(?:\.\.\.\s*)?(?:the\s+)?(?:rest\s+of\s+(?:the\s+)?(?:file|code|class|function|module|method|implementation)"
    r"|existing\s+(?:code|implementation|methods?|functions?|imports?|content)"
    r"|(?:remaining|other)\s+(?:code|methods?|functions?|lines?|content)"
    r"|(?:code|content|lines?)\s+(?:omitted|unchanged|elided|truncated)"
    r"|omitted\s+for\s+brevity|same\s+as\s+(?:before|above|original)|unchanged\s+(?:code|below|above)"
    r"|(?:no|without)\s+changes?\s+(?:below|above|here))\b.*$"
)

MIN_LINES_FOR_TRUNCATION = 40  # files shorter than this may legitimately shrink a lot
MAX_DROP = 0.5  # refuse a rewrite of a large file that drops more than this fraction of its lines

REWRITE_REQUEST = (
    "Edits to {path} have failed {count} times in a row. Stop patching it: re-read {path}, then send its "
    "complete new content with the write tool — every line of the file, with your change made. Do not use "
    "'...', '// existing code' or '# rest unchanged' placeholders: a rewrite that elides or truncates the file "
    "is refused."
)


def _placeholder_lines(new: str, old: str) -> list[tuple[int, str]]:
    """(line number, text) of the rewrite's lines that stand for code left out; a line the old file has too
    is the file's own text, not a placeholder."""
    old_lines = {ln.strip() for ln in old.split("\n")}
    out = []
    for n, ln in enumerate(new.split("\n"), 1):
        s = ln.strip()
        if not s or s in old_lines:
            continue
        if is_elision(ln) or _PLACEHOLDER_RE.match(ln):
            out.append((n, s))
    return out


def check_rewrite(old_text: str, new_text: str) -> str | None:
    """None when a whole-file rewrite looks complete; else why it is refused (truncation, elisions)."""
    old = normalize_newlines(old_text)
    new = normalize_newlines(new_text)
    ph = _placeholder_lines(new, old)
    if ph:
        n, s = ph[0]
        return (
            f"the rewrite contains a placeholder instead of code at line {n} ({s[:60]!r}); send the complete "
            "file with every line written out"
        )
    old_n = sum(1 for ln in old.split("\n") if ln.strip())
    new_n = sum(1 for ln in new.split("\n") if ln.strip())
    if old_n >= MIN_LINES_FOR_TRUNCATION and new_n < old_n * (1 - MAX_DROP):
        return (
            f"the rewrite has {new_n} non-blank lines where the file has {old_n}; it looks truncated. Send the "
            "complete file, or make the deletion with edits"
        )
    return None


class RewriteRule:
    """The whole-file fallback, in one place: after `threshold` failed edits of a file in a row, the model is asked
    for the complete file, and its next write of that file is checked (`check_rewrite`) before it lands.

    One per session; the edit tool reports outcomes, the write tool asks whether a write is such a rewrite."""

    def __init__(self, threshold: int = 2) -> None:
        self.threshold = threshold
        self._failures: dict[str, int] = {}
        self._pending: set[str] = set()

    def edit_failed(self, path: str, shown_as: str) -> str | None:
        """Count a failed edit of `path` (a real path); the rewrite request for the model once it is due."""
        key = str(path)
        count = self._failures.get(key, 0) + 1
        self._failures[key] = count
        if count < self.threshold:
            return None
        self._pending.add(key)
        return REWRITE_REQUEST.format(path=shown_as, count=count)

    def edit_succeeded(self, path: str) -> None:
        self._failures.pop(str(path), None)

    def wants_rewrite(self, path: str) -> bool:
        """Whether a write of `path` is the rewrite asked for (and must pass `check_rewrite`)."""
        return str(path) in self._pending

    def rewritten(self, path: str) -> None:
        self._pending.discard(str(path))
        self._failures.pop(str(path), None)
