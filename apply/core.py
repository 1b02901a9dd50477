"""Applying edits to files: the ladder, the syntax guard, failure messages and atomic writes.

Multi-block semantics (documented for the model and the user):

* Blocks for one file are matched **in order against the file as changed by the earlier blocks** (aider's
  behaviour).  A block that cannot be placed is refused and changes nothing; the other blocks still apply and
  the results say which blocks applied and which did not.
* With ``atomic=True`` (Codex ``*** Begin Patch`` envelopes, whose users expect a patch to apply whole or not
  at all) one refused block refuses every block of that file.
* The syntax guard runs once on the file's final text (an edit split over two blocks may be unparsable in
  between); if it refuses, no block of that file is written.
* One atomic write per file (temp file + rename); on any refusal the file is byte-identical to before.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ghostline.apply import ladder, syntax
from ghostline.apply.textfile import FileFormatError, TextFile, atomic_write_bytes, normalize_newlines


@dataclass
class ApplyResult:
    """What happened to one edit (or one block of a multi-block edit)."""

    path: str
    applied: bool
    rung: str  # ladder rung that placed the edit, or the refusal kind (not-found, ambiguous, syntax, ...)
    error: str | None = None
    diff: str = ""  # unified diff of this change (empty when refused)
    fuzzy: bool = False
    similarity: float | None = None  # fuzzy similarity, or closest-region similarity on a miss
    line: int | None = None  # 1-based first line of the change (or of the closest region on a miss)
    candidates: list[int] = field(default_factory=list)  # candidate lines of an ambiguous edit
    already_applied: bool = False
    block: int | None = None  # index of the block in multi-block input
    action: str = "edit"  # edit | create | write | delete | move

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Block:
    """One replacement: ``old`` -> ``new`` (text as the model wrote it)."""

    old: str
    new: str
    replace_all: bool = False
    line_hint: int | None = None
    index: int | None = None
    # Tried in order when the block itself cannot be placed: each is a list of blocks that must all apply
    # (unified-diff hunks split at their context runs, then with shrunk context).
    fallbacks: list[list[Block]] = field(default_factory=list)
    anchors: list[str] = field(default_factory=list)  # Codex "@@ def f():" lines locating the change
    at_eof: bool = False  # Codex "*** End of File": the change is at the end of the file
    append_at_eof: bool = False  # pure addition at the end of the file


def _keepends(s: str) -> list[str]:
    parts = s.split("\n")
    out = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


_HUNK_RE = re.compile(r"^@@ -(\d+)(,\d+)? \+(\d+)(,\d+)? @@")


def _common_prefix(a: str, b: str) -> int:
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: str, b: str, limit: int) -> int:
    lo, hi = 0, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[len(a) - mid :] == b[len(b) - mid :]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def make_diff(before: str, after: str, path: str, context: int = 3) -> str:
    """Unified diff of two normalised texts; cheap on big files (only the changed window is diffed)."""
    if before == after:
        return ""
    p = _common_prefix(before, after)
    s = _common_suffix(before, after, min(len(before), len(after)) - p)
    # widen to whole lines plus context
    start = before.rfind("\n", 0, p) + 1
    for _ in range(context):
        if start == 0:
            break
        start = before.rfind("\n", 0, start - 1) + 1
    lo = before.count("\n", 0, start)
    end_a, end_b = len(before) - s, len(after) - s
    for _ in range(context + 1):
        k = before.find("\n", end_a)
        if k == -1:
            end_a, end_b = len(before), len(after)
            break
        end_b += k + 1 - end_a
        end_a = k + 1
    a_win = _keepends(before[start:end_a])
    b_win = _keepends(after[start:end_b])
    out = []
    for line in difflib.unified_diff(a_win, b_win, f"a/{path}", f"b/{path}", n=context):
        m = _HUNK_RE.match(line)
        if m:
            a0, a1, b0, b1 = m.groups()
            line = f"@@ -{int(a0) + lo}{a1 or ''} +{int(b0) + lo}{b1 or ''} @@\n"
        if not line.endswith("\n"):
            line += "\n\\ No newline at end of file\n"
        out.append(line)
    return "".join(out)


def _display(path: Path) -> str:
    return str(path)


def _read(path: Path) -> TextFile:
    return TextFile.from_bytes(path.read_bytes())


def apply_blocks(
    path: Path | str,
    blocks: list[Block],
    *,
    dry_run: bool = False,
    atomic: bool = False,
    guard_syntax: bool = True,
    display: str | None = None,
) -> list[ApplyResult]:
    """Apply several blocks to one file (see the module docstring for the semantics)."""
    path = Path(path)
    name = display or _display(path)
    results: list[ApplyResult] = []

    def refuse_all(kind: str, msg: str) -> list[ApplyResult]:
        return [ApplyResult(name, False, kind, msg, block=b.index) for b in blocks]

    if not blocks:
        return []
    if not path.exists():
        if len(blocks) == 1 and not blocks[0].old.strip():
            return [_create(path, blocks[0].new, dry_run=dry_run, display=name, index=blocks[0].index)]
        return refuse_all("not-found", f"{name}: file does not exist (to create it, use an empty search text)")
    if path.is_dir():
        return refuse_all("invalid", f"{name} is a directory")
    try:
        tf = _read(path)
    except FileFormatError as exc:
        return refuse_all("invalid", f"{name}: {exc}")
    except OSError as exc:
        return refuse_all("io", f"{name}: cannot read: {exc.strerror or exc}")

    original = tf
    current = tf
    any_applied = False
    for b in blocks:
        old = normalize_newlines(b.old)
        new = normalize_newlines(b.new)
        if old == new:
            if old and old in current.norm:
                results.append(ApplyResult(name, True, "no-op", None, block=b.index))
            else:
                results.append(
                    ApplyResult(name, False, "invalid", "old_string and new_string are identical; nothing to change",
                                block=b.index)
                )
            continue
        if b.append_at_eof:
            sep = "" if not current.norm or current.norm.endswith("\n") else "\n"
            after = TextFile.from_text(
                current.text + (sep + new).replace("\n", current.newline), encoding=current.encoding, bom=current.bom
            )
            results.append(ApplyResult(name, True, "append", None, diff=make_diff(current.norm, after.norm, name),
                                       line=ladder.Doc(current.norm).n + 1, block=b.index))
            current = after
            any_applied = True
            continue
        if not old.strip():
            if not current.norm.strip():
                new_text = current.fix_final_newline(new.replace("\n", current.newline)) if current.text else \
                    new.replace("\n", current.newline)
                results.append(
                    ApplyResult(name, True, "exact", None, diff=make_diff(current.norm, new, name), line=1,
                                block=b.index)
                )
                current = TextFile.from_text(new_text, encoding=current.encoding, bom=current.bom)
                any_applied = True
                continue
            results.append(
                ApplyResult(name, False, "invalid",
                            f"{name}: the search text is empty but the file is not; quote the lines to replace "
                            "(or rewrite the whole file)", block=b.index)
            )
            continue
        doc = ladder.Doc(current.norm)
        hint = _hint(doc, b)
        res = ladder.run_ladder(doc, old, new, replace_all=b.replace_all, hint=hint)
        if isinstance(res, ladder.Failure) and b.fallbacks:
            alt = _try_fallbacks(current, b)
            if alt is not None:
                after, rung, first_line = alt
                results.append(ApplyResult(name, True, rung, None, diff=make_diff(current.norm, after.norm, name),
                                           line=first_line, block=b.index))
                current = after
                any_applied = True
                continue
        if isinstance(res, ladder.Failure):
            r = ApplyResult(name, False, res.kind, f"{name}: {res.message}", candidates=res.candidates,
                            already_applied=res.kind == "already-applied", block=b.index)
            if res.closest:
                r.line, r.similarity = res.closest[0], res.closest[2]
            if res.kind == "already-applied" and res.candidates:
                r.line = res.candidates[0]
            results.append(r)
            continue
        new_text = current.fix_final_newline(current.splice_many(res.spans))
        rung = res.rung
        if rung == "exact" and b.old not in current.text:
            rung = "line-endings"
        after = TextFile.from_text(new_text, encoding=current.encoding, bom=current.bom)
        if after.norm == current.norm:
            results.append(
                ApplyResult(name, False, "no-change",
                            f"{name}: the edit matched at line {res.line} (rung {rung}) but would not change the file; "
                            "it looks already applied",
                            line=res.line, block=b.index)
            )
            continue
        results.append(
            ApplyResult(name, True, rung, None, diff=make_diff(current.norm, after.norm, name), fuzzy=res.fuzzy,
                        similarity=res.similarity, line=res.line, block=b.index)
        )
        current = after
        any_applied = True

    failed = [r for r in results if not r.applied]
    if not any_applied or (atomic and failed):
        if atomic and failed:
            for r in results:
                if r.applied and r.rung != "no-op":
                    r.applied = False
                    r.diff = ""
                    r.rung = "not-applied"
                    r.error = f"{name}: not applied because another block of this patch for the file was refused"
        return results
    if guard_syntax:
        why = syntax.check(path, original.norm, current.norm)
        if why:
            msg = f"{name}: {why}"
            for r in results:
                if r.applied and r.rung != "no-op":
                    r.applied, r.rung, r.error, r.diff = False, "syntax", msg, ""
            return results
    try:
        data = current.encode(current.text)
    except FileFormatError as exc:
        for r in results:
            if r.applied:
                r.applied, r.rung, r.error, r.diff = False, "invalid", f"{name}: {exc}", ""
        return results
    if not dry_run:
        try:
            atomic_write_bytes(path, data)
        except OSError as exc:
            for r in results:
                if r.applied:
                    r.applied, r.rung, r.error, r.diff = False, "io", f"{name}: cannot write: {exc.strerror or exc}", ""
    if failed:
        done = [str(r.block) for r in results if r.applied and r.block is not None]
        if done:
            note = f" (blocks {', '.join(done)} of this file did apply)"
            for r in failed:
                if r.error:
                    r.error += note
    return results


def _hint(doc: ladder.Doc, b: Block) -> int | None:
    if b.anchors:
        keys = doc.keys("unicode")
        pos = 0
        found = None
        for a in b.anchors:
            ak = ladder.unicode_fold(a).strip()
            try:
                found = keys.index(ak, pos)
            except ValueError:
                found = next((k for k in range(pos, len(keys)) if keys[k].startswith(ak)), None)
            if found is None:
                break
            pos = found + 1
        if found is not None:
            return found + 2  # the change follows its anchor line
    if b.at_eof:
        return max(1, doc.n - len(ladder.split_lines(normalize_newlines(b.old))) + 1)
    return b.line_hint


def _try_fallbacks(current: TextFile, b: Block) -> tuple[TextFile, str, int | None] | None:
    for alt in b.fallbacks:
        state = current
        rungs: list[str] = []
        first: int | None = None
        ok = True
        for piece in alt:
            old, new = normalize_newlines(piece.old), normalize_newlines(piece.new)
            if not old.strip() or old == new:
                ok = False
                break
            doc = ladder.Doc(state.norm)
            res = ladder.run_ladder(doc, old, new, hint=piece.line_hint)
            if isinstance(res, ladder.Failure):
                ok = False
                break
            rungs.append(res.rung)
            first = res.line if first is None else min(first, res.line)
            state = TextFile.from_text(state.fix_final_newline(state.splice_many(res.spans)),
                                       encoding=state.encoding, bom=state.bom)
        if ok and state.norm != current.norm:
            kind = "split" if len(alt) > 1 else "shrunk-context"
            worst = max(rungs, key=ladder.RUNGS.index) if rungs else "exact"
            return state, f"{kind}:{worst}", first
    return None


def _apply_blocks_safe(path: Path | str, blocks: list[Block], **kw: Any) -> list[ApplyResult]:
    try:
        return apply_blocks(path, blocks, **kw)
    except Exception as exc:  # a bug must not cost the user a traceback or a file: refuse, file untouched
        name = kw.get("display") or str(path)
        msg = f"{name}: internal error while applying the edit ({type(exc).__name__}: {exc}); the file was left unchanged"
        return [ApplyResult(name, False, "error", msg, block=b.index) for b in blocks]


def apply_edit(
    path: Path | str,
    old_string: str,
    new_string: str,
    replace_all: bool = False,
    *,
    dry_run: bool = False,
    line_hint: int | None = None,
    guard_syntax: bool = True,
) -> ApplyResult:
    """Replace ``old_string`` by ``new_string`` in ``path`` through the ladder; the ``edit`` tool calls this.

    On refusal the file is untouched and ``error`` tells the model why (closest region, candidates, already
    applied).  ``new_string`` is literal text, never a regex template.  An empty ``old_string`` creates a
    missing file (or fills an empty one).
    """
    return _apply_blocks_safe(
        path, [Block(old_string, new_string, replace_all, line_hint)], dry_run=dry_run, guard_syntax=guard_syntax
    )[0]


def _create(path: Path, content: str, *, dry_run: bool, display: str, index: int | None) -> ApplyResult:
    diff = make_diff("", normalize_newlines(content), display)
    if not dry_run:
        try:
            atomic_write_bytes(path, content.encode("utf-8"))
        except OSError as exc:
            return ApplyResult(display, False, "io", f"{display}: cannot write: {exc.strerror or exc}", block=index)
    return ApplyResult(display, True, "create", None, diff=diff, line=1, block=index, action="create")


def write_file(
    path: Path | str,
    content: str,
    *,
    dry_run: bool = False,
    guard_syntax: bool = False,
    check_truncation: bool = False,
    display: str | None = None,
) -> ApplyResult:
    """Write a whole file atomically; the ``write`` tool calls this.

    A new file is written as UTF-8 (parent directories created).  An existing file keeps its encoding, BOM and
    dominant line ending (the content's newlines are converted); its permission bits are preserved.  With
    ``guard_syntax`` a rewrite that breaks a file that parsed is refused; with ``check_truncation`` a rewrite
    that looks truncated (see :func:`apply.rewrite.check_rewrite`) is refused.
    """
    path = Path(path)
    name = display or _display(path)
    if path.is_dir():
        return ApplyResult(name, False, "invalid", f"{name} is a directory", action="write")
    if not path.exists():
        return _create(path, content, dry_run=dry_run, display=name, index=None)
    try:
        tf = _read(path)
    except FileFormatError as exc:
        return ApplyResult(name, False, "invalid", f"{name}: {exc}", action="write")
    except OSError as exc:
        return ApplyResult(name, False, "io", f"{name}: cannot read: {exc.strerror or exc}", action="write")
    new_norm = normalize_newlines(content)
    if check_truncation:
        from ghostline.apply.rewrite import check_rewrite

        why = check_rewrite(tf.norm, new_norm)
        if why:
            return ApplyResult(name, False, "truncated", f"{name}: {why}", action="write")
    if guard_syntax:
        why = syntax.check(path, tf.norm, new_norm)
        if why:
            return ApplyResult(name, False, "syntax", f"{name}: {why}", action="write")
    text = new_norm.replace("\n", tf.newline) if tf.newline != "\n" else new_norm
    try:
        data = tf.encode(text)
    except FileFormatError as exc:
        return ApplyResult(name, False, "invalid", f"{name}: {exc}", action="write")
    diff = make_diff(tf.norm, new_norm, name)
    if not dry_run:
        try:
            atomic_write_bytes(path, data)
        except OSError as exc:
            return ApplyResult(name, False, "io", f"{name}: cannot write: {exc.strerror or exc}", action="write")
    return ApplyResult(name, True, "write", None, diff=diff, line=1, action="write")


def delete_file(path: Path | str, *, dry_run: bool = False, display: str | None = None) -> ApplyResult:
    path = Path(path)
    name = display or _display(path)
    if not path.is_file():
        return ApplyResult(name, False, "not-found", f"{name}: cannot delete: no such file", action="delete")
    try:
        before = normalize_newlines(_read(path).norm)
    except (FileFormatError, OSError):
        before = ""
    if not dry_run:
        try:
            os.unlink(path)
        except OSError as exc:
            return ApplyResult(name, False, "io", f"{name}: cannot delete: {exc.strerror or exc}", action="delete")
    return ApplyResult(name, True, "delete", None, diff=make_diff(before, "", name), action="delete")
