"""Edit formats models write, parsed leniently into file operations.

* ``edit-json``: one JSON object or a list of them: ``{path, old_string, new_string, replace_all?, line_hint?}``
  (``file_path``/``old``/``new`` accepted), or ``{path, content}`` for a whole-file write.
* ``search-replace``: aider's SEARCH/REPLACE blocks (5-9 marker characters, a trailing ``>``, code fences,
  the file name on the line before the block or before its fence, reused by following blocks; a near-miss
  file name is resolved when one existing file fits).  An empty SEARCH creates the file, or appends to it.
* ``udiff``: unified diffs, cleaned (fences, ``diff --git`` noise, wrong hunk counts, blank context lines that
  lost their space, added lines that lost their ``+``) and parsed with ``unidiff``; line numbers are hints only;
  a hunk that does not apply whole is split at its context runs, then its context is shrunk.
* ``patch``: Codex ``*** Begin Patch`` envelopes (Add/Update/Delete File, Move to, ``@@`` anchors,
  ``*** End of File``).  A patch applies whole or not at all.
* ``whole``: a file name line followed by a fenced block with the complete new content.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from ghostline.apply.core import Block

FORMATS = ("auto", "edit-json", "search-replace", "udiff", "patch", "whole")


class ParseError(Exception):
    """The text holds no edit in the requested (or any recognisable) format."""


@dataclass
class FileOp:
    path: str
    kind: str  # blocks | write | delete
    blocks: list[Block] = field(default_factory=list)
    content: str | None = None
    move_to: str | None = None
    fuzzy_path: bool = True  # a near-miss file name may be resolved to an existing file
    problems: list[str] = field(default_factory=list)  # per-op parse problems, reported as refusals


# ---------------------------------------------------------------------------------------------- detection

_HEAD_RE = re.compile(r"^\s*<{5,9}\s*SEARCH\b.*$")
_DIVIDER_RE = re.compile(r"^\s*={5,9}\s*$")
_UPDATED_RE = re.compile(r"^\s*>{5,9}\s*(?:REPLACE|UPDATED)\b\s*>?\s*$")
_FENCE_RE = re.compile(r"^\s*(```+|~~~+)\s*([\w.+#-]*)\s*$")


def detect(text: str) -> str:
    s = text.lstrip()
    if s[:1] in "[{":
        try:
            json.loads(s)
            return "edit-json"
        except ValueError:
            pass
    if re.search(r"^\s*\*\*\* Begin Patch\s*$", text, re.M):
        return "patch"
    if any(_HEAD_RE.match(ln) for ln in text.splitlines()):
        return "search-replace"
    if re.search(r"^(---|\+\+\+) \S", text, re.M) and re.search(r"^@@", text, re.M):
        return "udiff"
    if re.search(r"^@@ .*@@", text, re.M):
        return "udiff"
    return "whole"


def parse(text: str, fmt: str = "auto") -> tuple[str, list[FileOp]]:
    """Parse model text into file operations; returns the format used."""
    if fmt not in FORMATS:
        raise ParseError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    if fmt == "auto":
        fmt = detect(text)
    parser = {
        "edit-json": parse_edit_json,
        "search-replace": parse_search_replace,
        "udiff": parse_udiff,
        "patch": parse_patch,
        "whole": parse_whole,
    }[fmt]
    ops = parser(text)
    if not ops:
        raise ParseError(f"no edits found in the input (format {fmt})")
    return fmt, ops


# ---------------------------------------------------------------------------------------------- edit-json


def parse_edit_json(text: str) -> list[FileOp]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ParseError(f"invalid JSON: {exc}") from None
    items = data if isinstance(data, list) else [data]
    if isinstance(data, dict) and isinstance(data.get("edits"), list):
        base = data.get("path") or data.get("file_path")
        items = [{"path": base, **e} if isinstance(e, dict) else e for e in data["edits"]]
    ops: list[FileOp] = []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise ParseError(f"edit {n}: expected a JSON object, got {type(item).__name__}")
        path = item.get("path") or item.get("file_path") or item.get("file")
        if not isinstance(path, str) or not path:
            raise ParseError(f"edit {n}: missing 'path'")
        if "content" in item and "old_string" not in item and "old" not in item:
            content = item["content"]
            if not isinstance(content, str):
                raise ParseError(f"edit {n}: 'content' must be a string")
            ops.append(FileOp(path, "write", content=content, fuzzy_path=False))
            continue
        old = item.get("old_string", item.get("old"))
        new = item.get("new_string", item.get("new"))
        if not isinstance(old, str) or not isinstance(new, str):
            raise ParseError(f"edit {n}: 'old_string' and 'new_string' must be strings")
        hint = item.get("line_hint")
        ops.append(
            FileOp(
                path,
                "blocks",
                [Block(old, new, bool(item.get("replace_all", False)), hint if isinstance(hint, int) else None, n)],
                fuzzy_path=False,
            )
        )
    return ops


# ---------------------------------------------------------------------------------------------- search/replace


def _clean_filename(line: str) -> str | None:
    s = line.strip()
    if not s or _FENCE_RE.match(s) or _HEAD_RE.match(s) or _DIVIDER_RE.match(s) or _UPDATED_RE.match(s):
        return None
    s = s.rstrip(":").strip()
    s = s.strip("*`'\"").strip()
    s = re.sub(r"^(?:#+\s*|file(?:name)?:\s*|path:\s*)", "", s, flags=re.I).strip("*`'\" ")
    if not s or " " in s or len(s) > 250:
        return None
    if "/" not in s and "." not in s and s not in ("Makefile", "Dockerfile", "LICENSE"):
        return None
    return s


def _fence_filename(fence: re.Match[str]) -> str | None:
    """The file a code fence's info string names (```` ```src/app.py ````), if it names one."""
    info = fence.group(2)
    return info if info and ("." in info or "/" in info) else None


def parse_search_replace(text: str) -> list[FileOp]:
    lines = text.split("\n")
    by_path: dict[str, FileOp] = {}  # in order of first appearance
    current: str | None = None  # a block without a file name of its own edits the file of the block before
    n_block = 0
    i = 0
    while i < len(lines):
        if not _HEAD_RE.match(lines[i]):
            i += 1
            continue
        current = _filename_above(lines, i) or current
        search, divider = _read_section(lines, i + 1, _DIVIDER_RE, (_HEAD_RE, _UPDATED_RE))
        if divider is None:
            raise ParseError(f"SEARCH block at line {i + 1} has no '=======' divider")
        replace, end = _read_section(lines, divider + 1, _UPDATED_RE, (_HEAD_RE, _DIVIDER_RE))
        if end is None:
            raise ParseError(f"SEARCH block at line {i + 1} has no '>>>>>>> REPLACE' end marker")
        if current is None:
            raise ParseError(f"SEARCH block at line {i + 1} is not preceded by a file name")
        old = "\n".join(search) + ("\n" if search else "")
        new = "\n".join(replace) + ("\n" if replace else "")
        op = by_path.setdefault(current, FileOp(current, "blocks"))
        # aider: an empty SEARCH creates a new file, or appends to an existing one
        op.blocks.append(Block(old, new, index=n_block, append_at_eof=not old.strip()))
        n_block += 1
        i = end + 1
    return list(by_path.values())


def _filename_above(lines: list[str], head: int) -> str | None:
    """The file name on the nearest non-blank line above the SEARCH line (within 3 lines), or on its fence."""
    for k in range(head - 1, max(-1, head - 4), -1):
        line = lines[k]
        if not line.strip():
            continue
        fence = _FENCE_RE.match(line)
        if fence:
            name = _fence_filename(fence)
            if name:
                return name
            continue
        return _clean_filename(line)
    return None


def _read_section(lines: list[str], start: int, end_re: re.Pattern[str],
                  other_markers: tuple[re.Pattern[str], ...]) -> tuple[list[str], int | None]:
    """The lines from ``start`` up to the next line matching ``end_re``, and that line's index: None when
    another marker or the end of the text comes first."""
    k = start
    while k < len(lines) and not end_re.match(lines[k]):
        if any(marker.match(lines[k]) for marker in other_markers):
            return lines[start:k], None
        k += 1
    return lines[start:k], k if k < len(lines) else None


# ---------------------------------------------------------------------------------------------- unified diff

_HUNK_HEAD_RE = re.compile(r"^@@+\s*-(\d+)(?:,(\d+))?\s+\+(\d+)(?:,(\d+))?\s*@@+(.*)$")

# A hunk as the model wrote it: the old-file line its header names (a hint only) and its raw lines.
_RawHunk = tuple[int | None, list[str]]
# A hunk's lines as (marker, text): " " context, "-" removed, "+" added.
_HunkLines = list[tuple[str, str]]


def _strip_path(p: str) -> str:
    p = p.strip().split("\t")[0].strip()
    if p.startswith(("a/", "b/")):
        p = p[2:]
    return p


def _clean_udiff(text: str) -> list[tuple[str, str, list[_RawHunk]]]:
    """Split a (possibly sloppy) diff into files and hunks: (source, target, hunks)."""
    files: list[tuple[str, str, list[_RawHunk]]] = []
    src = tgt = None
    hunks: list[_RawHunk] = []
    cur: list[str] | None = None
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        ln = lines[i]
        if ln.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            if src is not None:
                files.append((src, tgt or src, hunks))
            src, tgt = _strip_path(ln[4:]), _strip_path(lines[i + 1][4:])
            hunks, cur = [], None
            i += 2
            continue
        if _FENCE_RE.match(ln) or ln.startswith(("diff --git", "index ", "new file mode", "deleted file mode",
                                                   "similarity index", "old mode", "new mode")):
            cur = None
            i += 1
            continue
        if ln.startswith("@@"):
            m = _HUNK_HEAD_RE.match(ln)
            cur = []
            hunks.append((int(m.group(1)) if m else None, cur))
            i += 1
            continue
        if cur is not None:
            cur.append(ln)
        i += 1
    if src is not None:
        files.append((src, tgt or src, hunks))
    return files


def _normalise_hunk(raw: list[str]) -> _HunkLines:
    """(marker, text) pairs; recovers blank context lines and added lines that lost their ``+``."""
    while raw and not raw[-1].strip():
        raw = raw[:-1]
    out: _HunkLines = []
    prev = " "
    for ln in raw:
        if ln.startswith("\\"):
            continue  # "\ No newline at end of file"
        if ln[:1] in (" ", "-", "+"):
            out.append((ln[0], ln[1:]))
            prev = ln[0]
        elif not ln.strip():
            out.append((" ", ""))
        else:
            # no marker: continues an addition, else context
            out.append(("+" if prev == "+" else " ", ln))
    return out


def _hunk_text(pairs: _HunkLines) -> tuple[str, str]:
    old = [t for m, t in pairs if m in " -"]
    new = [t for m, t in pairs if m in " +"]
    return ("\n".join(old) + "\n" if old else "", "\n".join(new) + "\n" if new else "")


def _split_hunk(pairs: _HunkLines) -> list[_HunkLines]:
    """Split a hunk into pieces, one per change group, each with the context around it."""
    groups: list[tuple[int, int]] = []
    k = 0
    while k < len(pairs):
        if pairs[k][0] != " ":
            a = k
            while k < len(pairs) and pairs[k][0] != " ":
                k += 1
            groups.append((a, k))
        else:
            k += 1
    if len(groups) < 2:
        return []
    pieces = []
    for g, (a, b) in enumerate(groups):
        lo = groups[g - 1][1] if g else 0
        hi = groups[g + 1][0] if g + 1 < len(groups) else len(pairs)
        # share the context between neighbours: take at most 3 lines on each side
        lo = max(lo, a - 3)
        hi = min(hi, b + 3)
        pieces.append(pairs[lo:hi])
    return pieces


def _shrunk(pairs: _HunkLines) -> list[_HunkLines]:
    """The hunk with progressively less outer context (at least one context line or one removed line kept)."""
    first = next((k for k, p in enumerate(pairs) if p[0] != " "), None)
    if first is None:
        return []
    last = max(k for k, p in enumerate(pairs) if p[0] != " ")
    out = []
    lead, trail = first, len(pairs) - 1 - last
    for keep in (2, 1):
        lo = first - min(lead, keep)
        hi = last + 1 + min(trail, keep)
        cand = pairs[lo:hi]
        if cand != pairs and cand not in out and any(m in " -" for m, _ in cand):
            out.append(cand)
    return out


def _hunk_block(pairs: _HunkLines, hint: int | None, index: int) -> Block:
    old, new = _hunk_text(pairs)
    fallbacks: list[list[Block]] = []
    pieces = _split_hunk(pairs)
    if pieces:
        fallbacks.append([Block(*_hunk_text(p), line_hint=hint, index=index) for p in pieces])
    for sh in _shrunk(pairs):
        fallbacks.append([Block(*_hunk_text(sh), line_hint=hint, index=index)])
    return Block(old, new, line_hint=hint, index=index, fallbacks=fallbacks)


def _unidiff_hunks(
    src: str, tgt: str, hunks: list[_RawHunk]
) -> list[tuple[int | None, _HunkLines]]:
    """Rebuild a well-formed diff (recounted headers, recovered markers) and parse it with ``unidiff`` (imported
    here: ~2 ms a run's start need not wait for)."""
    import unidiff

    hunks = [(h, raw) for h, raw in hunks if _normalise_hunk(raw)]
    cleaned = [_normalise_hunk(raw) for _h, raw in hunks]
    if not cleaned:
        return []
    text = [f"--- a/{src}", f"+++ b/{tgt}"]
    for (hint, _raw), pairs in zip(hunks, cleaned, strict=True):
        n_old = sum(1 for m, _ in pairs if m in " -")
        n_new = sum(1 for m, _ in pairs if m in " +")
        start = hint if hint is not None and hint > 0 else 1
        text.append(f"@@ -{start},{n_old} +{start},{n_new} @@")
        text.extend(m + t for m, t in pairs)
    try:
        patch = unidiff.PatchSet("\n".join(text) + "\n")
    except unidiff.UnidiffParseError:
        return [(h, p) for (h, _r), p in zip(hunks, cleaned, strict=True)]
    out: list[tuple[int | None, _HunkLines]] = []
    for (hint, _raw), hunk in zip(hunks, patch[0] if len(patch) else [], strict=False):
        pairs = [(ln.line_type, ln.value[:-1] if ln.value.endswith("\n") else ln.value) for ln in hunk
                 if ln.line_type in (" ", "-", "+")]
        out.append((hint, pairs))
    return out


def parse_udiff(text: str) -> list[FileOp]:
    files = _clean_udiff(text)
    if not files:
        raise ParseError("no '--- file' / '+++ file' headers found in the diff")
    ops: list[FileOp] = []
    n = 0
    for src, tgt, hunks in files:
        if tgt == "/dev/null":
            ops.append(FileOp(src, "delete"))
            continue
        if src == "/dev/null":
            pairs = [p for _h, raw in hunks for p in _normalise_hunk(raw)]
            ops.append(FileOp(tgt, "write", content=_hunk_text(pairs)[1], fuzzy_path=False))
            continue
        op = FileOp(src, "blocks", move_to=tgt if tgt != src else None)
        for hint, pairs in _unidiff_hunks(src, tgt, hunks):
            if not pairs:
                continue
            if not any(m in " -" for m, _ in pairs):
                op.problems.append(
                    f"hunk {n} of {src} only adds lines and has no context; include a few unchanged lines "
                    "around the insertion"
                )
                n += 1
                continue
            op.blocks.append(_hunk_block(pairs, hint, n))
            n += 1
        ops.append(op)
    return ops


# ---------------------------------------------------------------------------------------------- codex patch

_P_BEGIN = "*** Begin Patch"
_P_END = "*** End Patch"
_P_ADD = re.compile(r"^\*\*\* Add File:\s*(.+?)\s*$")
_P_DEL = re.compile(r"^\*\*\* Delete File:\s*(.+?)\s*$")
_P_UPD = re.compile(r"^\*\*\* Update File:\s*(.+?)\s*$")
_P_MOVE = re.compile(r"^\*\*\* Move to:\s*(.+?)\s*$")
_P_EOF = "*** End of File"


def parse_patch(text: str) -> list[FileOp]:
    lines = text.split("\n")
    begin = next((k for k, ln in enumerate(lines) if ln.strip() == _P_BEGIN), None)
    if begin is None:
        raise ParseError("no '*** Begin Patch' line")
    return _PatchReader(lines).read(begin + 1)


def _patch_line(line: str) -> tuple[str, str]:
    """(marker, text) of a chunk line; a line without a marker is context (models drop the leading space)."""
    if line[:1] in (" ", "-", "+"):
        return line[0], line[1:]
    if not line.strip():
        return " ", ""
    return " ", line


class _PatchReader:
    """Reads the body of one Codex patch envelope: file headers, then each file's chunks."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.ops: list[FileOp] = []
        self.op: FileOp | None = None  # the file the lines being read belong to
        # the chunk being read, with the "@@ anchor" lines before it and whether "*** End of File" closed it
        self.chunk: _HunkLines | None = None
        self.anchors: list[str] = []
        self.at_eof = False
        self.n_chunks = 0  # every chunk of the patch, numbered in order (the results' `block`)

    def read(self, start: int) -> list[FileOp]:
        i = start
        while i < len(self.lines):
            line = self.lines[i]
            stripped = line.rstrip()
            if stripped == _P_END:
                break
            if _P_ADD.match(stripped) or _P_DEL.match(stripped) or _P_UPD.match(stripped):
                self._end_chunk()
                i = self._read_file_header(i, stripped)
                continue
            if self.op is not None and self.op.kind == "blocks":
                self._read_chunk_line(line, stripped)
            i += 1
        self._end_chunk()
        return self.ops

    def _start_file(self, op: FileOp) -> None:
        self.op = op
        self.ops.append(op)

    def _read_file_header(self, i: int, header: str) -> int:
        """Start the file the header at line ``i`` names; the index of the line after what it consumed."""
        if added := _P_ADD.match(header):
            return self._read_added_file(added.group(1), i + 1)
        if deleted := _P_DEL.match(header):
            self._start_file(FileOp(deleted.group(1), "delete", fuzzy_path=False))
            return i + 1
        updated = _P_UPD.match(header)
        assert updated is not None  # the caller matched one of the three headers
        op = FileOp(updated.group(1), "blocks", fuzzy_path=False)
        self._start_file(op)
        i += 1
        if i < len(self.lines) and (move := _P_MOVE.match(self.lines[i].rstrip())):
            op.move_to = move.group(1)
            i += 1
        return i

    def _read_added_file(self, path: str, i: int) -> int:
        body = []
        while i < len(self.lines) and not self.lines[i].startswith("*** "):
            line = self.lines[i]
            body.append(line[1:] if line.startswith("+") else line)
            i += 1
        while body and body[-1] == "":
            body.pop()
        self._start_file(FileOp(path, "write", content="\n".join(body) + "\n" if body else "", fuzzy_path=False))
        return i

    def _read_chunk_line(self, line: str, stripped: str) -> None:
        if stripped.startswith("@@"):
            if self.chunk:
                self._end_chunk()
            anchor = stripped[2:].strip()
            if anchor:
                self.anchors.append(anchor)
        elif stripped == _P_EOF:
            self.at_eof = True
            self._end_chunk()
        else:
            if self.chunk is None:
                self.chunk = []
            self.chunk.append(_patch_line(line))

    def _end_chunk(self) -> None:
        if self.op is not None and self.op.kind == "blocks" and self.chunk:
            self._add_block(self.op, self.chunk)
        self.chunk, self.anchors, self.at_eof = None, [], False

    def _add_block(self, op: FileOp, chunk: _HunkLines) -> None:
        old, new = _hunk_text(chunk)
        index = self.n_chunks
        self.n_chunks += 1
        if not old.strip() and not self.at_eof:
            # Without context nor "*** End of File" nothing says where the added lines go.
            op.problems.append(f"chunk {index} of {op.path} only adds lines and has no context lines")
            return
        op.blocks.append(Block(old, new, index=index, anchors=list(self.anchors), at_eof=self.at_eof,
                               append_at_eof=not old.strip()))


# ---------------------------------------------------------------------------------------------- whole file


def parse_whole(text: str) -> list[FileOp]:
    lines = text.split("\n")
    ops: list[FileOp] = []
    i = 0
    while i < len(lines):
        m = _FENCE_RE.match(lines[i])
        if not m:
            i += 1
            continue
        fence = m.group(1)
        fname = _fence_filename(m) or _filename_just_above(lines, i)
        j = i + 1
        while j < len(lines) and lines[j].strip() != fence:
            j += 1
        if j >= len(lines):
            raise ParseError(f"code fence at line {i + 1} is not closed")
        if fname is None:
            raise ParseError(f"fenced block at line {i + 1} is not preceded by a file name")
        body = lines[i + 1 : j]
        ops.append(FileOp(fname, "write", content="\n".join(body) + "\n" if body else "", fuzzy_path=False))
        i = j + 1
    return ops


def _filename_just_above(lines: list[str], fence_line: int) -> str | None:
    """The file name on the nearest non-blank line of the two above a fence."""
    for k in range(fence_line - 1, max(-1, fence_line - 3), -1):
        if lines[k].strip():
            return _clean_filename(lines[k])
    return None
