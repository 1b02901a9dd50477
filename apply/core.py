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

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ghostline.apply.diff import make_diff
from ghostline.apply.ladder import RUNGS, Doc, Failure, run_ladder, split_lines, unicode_fold
from ghostline.apply.rewrite import check_rewrite
from ghostline.apply.syntax import check as check_syntax
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


# ---------------------------------------------------------------------------------------------- several blocks


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
    name = display or str(path)
    if not blocks:
        return []
    original = _open_for_blocks(path, blocks, name, dry_run=dry_run)
    if not isinstance(original, TextFile):
        return original
    results, edited = _place_blocks(original, blocks, name)
    refused = [r for r in results if not r.applied]
    if atomic and refused:
        withdraw(results, "not-applied",
                 f"{name}: not applied because another block of this patch for the file was refused")
        return results
    if not any(r.applied and r.rung != "no-op" for r in results):
        return results  # nothing to write
    written = _guard_and_write(path, original, edited, results, name, guard_syntax=guard_syntax, dry_run=dry_run)
    if written and refused:
        _name_blocks_that_applied(refused, results)
    return results


def apply_blocks_safe(path: Path | str, blocks: list[Block], **options: Any) -> list[ApplyResult]:
    """:func:`apply_blocks`, except that an internal error refuses every block instead of raising.

    A bug must cost the user neither a traceback nor a file: the file is left untouched.
    """
    try:
        return apply_blocks(path, blocks, **options)
    except Exception as exc:
        name = options.get("display") or str(path)
        msg = f"{name}: internal error while applying the edit ({type(exc).__name__}: {exc}); the file was left unchanged"
        return [ApplyResult(name, False, "error", msg, block=b.index) for b in blocks]


def _open_for_blocks(path: Path, blocks: list[Block], name: str, *, dry_run: bool) -> TextFile | list[ApplyResult]:
    """The file to edit, or the results when there is none: a created file, or every block refused."""

    def refuse_all(kind: str, msg: str) -> list[ApplyResult]:
        return [ApplyResult(name, False, kind, msg, block=b.index) for b in blocks]

    if not path.exists():
        if len(blocks) == 1 and not blocks[0].old.strip():
            return [_create(path, blocks[0].new, dry_run=dry_run, display=name, index=blocks[0].index)]
        return refuse_all("not-found", f"{name}: file does not exist (to create it, use an empty search text)")
    if path.is_dir():
        return refuse_all("invalid", f"{name} is a directory")
    try:
        return TextFile.from_bytes(path.read_bytes())
    except FileFormatError as exc:
        return refuse_all("invalid", f"{name}: {exc}")
    except OSError as exc:
        return refuse_all("io", f"{name}: cannot read: {exc.strerror or exc}")


def _place_blocks(original: TextFile, blocks: list[Block], name: str) -> tuple[list[ApplyResult], TextFile]:
    """One result per block, each block placed in the file as the blocks before it left it; the final file."""
    results = []
    current = original
    for block in blocks:
        result, current = _place_block(current, block, name)
        results.append(result)
    return results, current


def withdraw(results: list[ApplyResult], rung: str, error: str, *, no_ops_too: bool = False) -> None:
    """Mark every applied result not applied: the file is not written after all.

    A block that changed nothing ("no-op") stays applied when the edit is refused as a whole (its text is in
    the file either way), but not when the file cannot be encoded or written.
    """
    for r in results:
        if r.applied and (no_ops_too or r.rung != "no-op"):
            r.applied, r.rung, r.error, r.diff = False, rung, error, ""


def _guard_and_write(path: Path, original: TextFile, edited: TextFile, results: list[ApplyResult], name: str, *,
                     guard_syntax: bool, dry_run: bool) -> bool:
    """Write the edited file unless the syntax guard refuses it or it cannot be encoded; False when refused
    (a dry run passes without writing).  A refusal or a failed write withdraws every applied result."""
    if guard_syntax:
        why = check_syntax(path, original.norm, edited.norm)
        if why:
            withdraw(results, "syntax", f"{name}: {why}")
            return False
    try:
        data = edited.encode(edited.text)
    except FileFormatError as exc:
        withdraw(results, "invalid", f"{name}: {exc}", no_ops_too=True)
        return False
    if not dry_run:
        try:
            atomic_write_bytes(path, data)
        except OSError as exc:
            withdraw(results, "io", f"{name}: cannot write: {exc.strerror or exc}", no_ops_too=True)
    return True


def _name_blocks_that_applied(refused: list[ApplyResult], results: list[ApplyResult]) -> None:
    """Tell the model, in each refusal, which blocks of the file did apply (so it resends only the others)."""
    done = [str(r.block) for r in results if r.applied and r.block is not None]
    if done:
        note = f" (blocks {', '.join(done)} of this file did apply)"
        for r in refused:
            if r.error:
                r.error += note


# ---------------------------------------------------------------------------------------------- one block


def _place_block(current: TextFile, block: Block, name: str) -> tuple[ApplyResult, TextFile]:
    """The result of one block and the file after it (``current`` itself when the block is refused)."""
    old = normalize_newlines(block.old)
    new = normalize_newlines(block.new)
    if old == new:
        return _unchanged_block(current, old, name, block.index), current
    if block.append_at_eof:
        return _append_at_eof(current, new, name, block.index)
    if not old.strip():
        return _fill_blank_file(current, new, name, block.index)
    return _place_by_ladder(current, block, old, new, name)


def _unchanged_block(current: TextFile, old: str, name: str, index: int | None) -> ApplyResult:
    if old and old in current.norm:
        return ApplyResult(name, True, "no-op", None, block=index)
    return ApplyResult(name, False, "invalid", "old_string and new_string are identical; nothing to change",
                       block=index)


def _append_at_eof(current: TextFile, new: str, name: str, index: int | None) -> tuple[ApplyResult, TextFile]:
    separator = "" if not current.norm or current.norm.endswith("\n") else "\n"
    after = current.with_text(current.text + current.in_file_newlines(separator + new))
    result = ApplyResult(name, True, "append", None, diff=make_diff(current.norm, after.norm, name),
                         line=Doc(current.norm).n + 1, block=index)
    return result, after


def _fill_blank_file(current: TextFile, new: str, name: str, index: int | None) -> tuple[ApplyResult, TextFile]:
    """An empty search text: allowed only when the file holds nothing but whitespace."""
    if current.norm.strip():
        return ApplyResult(name, False, "invalid",
                           f"{name}: the search text is empty but the file is not; quote the lines to replace "
                           "(or rewrite the whole file)", block=index), current
    new_text = current.in_file_newlines(new)
    if current.text:
        new_text = current.fix_final_newline(new_text)
    result = ApplyResult(name, True, "exact", None, diff=make_diff(current.norm, new, name), line=1, block=index)
    return result, current.with_text(new_text)


def _place_by_ladder(current: TextFile, block: Block, old: str, new: str,
                     name: str) -> tuple[ApplyResult, TextFile]:
    doc = Doc(current.norm)
    found = run_ladder(doc, old, new, replace_all=block.replace_all, hint=_line_hint(doc, block))
    if isinstance(found, Failure) and block.fallbacks:
        alternative = _try_fallbacks(current, block)
        if alternative is not None:
            after, rung, first_line = alternative
            return ApplyResult(name, True, rung, None, diff=make_diff(current.norm, after.norm, name),
                               line=first_line, block=block.index), after
    if isinstance(found, Failure):
        return _refusal(found, name, block.index), current
    rung = found.rung
    if rung == "exact" and block.old not in current.text:
        rung = "line-endings"  # the text matched only once both had `\n` newlines
    after = current.with_replacements(found.spans)
    if after.norm == current.norm:
        return ApplyResult(name, False, "no-change",
                           f"{name}: the edit matched at line {found.line} (rung {rung}) but would not change the "
                           "file; it looks already applied", line=found.line, block=block.index), current
    return ApplyResult(name, True, rung, None, diff=make_diff(current.norm, after.norm, name), fuzzy=found.fuzzy,
                       similarity=found.similarity, line=found.line, block=block.index), after


def _refusal(failure: Failure, name: str, index: int | None) -> ApplyResult:
    result = ApplyResult(name, False, failure.kind, f"{name}: {failure.message}", candidates=failure.candidates,
                         already_applied=failure.kind == "already-applied", block=index)
    if failure.closest:
        result.line, result.similarity = failure.closest[0], failure.closest[2]
    if failure.kind == "already-applied" and failure.candidates:
        result.line = failure.candidates[0]
    return result


def _line_hint(doc: Doc, block: Block) -> int | None:
    """1-based line the change is expected near: after its Codex ``@@`` anchors, at the end of the file, or
    the block's own hint."""
    if block.anchors:
        after_anchors = _line_after_anchors(doc, block.anchors)
        if after_anchors is not None:
            return after_anchors
    if block.at_eof:
        return max(1, doc.n - len(split_lines(normalize_newlines(block.old))) + 1)
    return block.line_hint


def _line_after_anchors(doc: Doc, anchors: list[str]) -> int | None:
    """Anchors are found in order, each after the previous one (a line equal to it, else one starting with it)."""
    keys = doc.keys("unicode")
    pos = 0  # 0-based line after the last anchor found
    for anchor in anchors:
        key = unicode_fold(anchor).strip()
        try:
            found = keys.index(key, pos)
        except ValueError:
            found = next((k for k in range(pos, len(keys)) if keys[k].startswith(key)), None)
        if found is None:
            return None
        pos = found + 1
    return pos + 1


def _try_fallbacks(current: TextFile, block: Block) -> tuple[TextFile, str, int | None] | None:
    """The first fallback whose pieces all apply, in order: (file after, rung, first changed line)."""
    for pieces in block.fallbacks:
        placed = _place_all_pieces(current, pieces)
        if placed is not None and placed[0].norm != current.norm:
            after, rungs, first_line = placed
            kind = "split" if len(pieces) > 1 else "shrunk-context"
            worst = max(rungs, key=RUNGS.index) if rungs else "exact"
            return after, f"{kind}:{worst}", first_line
    return None


def _place_all_pieces(current: TextFile, pieces: list[Block]) -> tuple[TextFile, list[str], int | None] | None:
    state = current
    rungs: list[str] = []
    first_line: int | None = None
    for piece in pieces:
        old, new = normalize_newlines(piece.old), normalize_newlines(piece.new)
        if not old.strip() or old == new:
            return None
        found = run_ladder(Doc(state.norm), old, new, hint=piece.line_hint)
        if isinstance(found, Failure):
            return None
        rungs.append(found.rung)
        first_line = found.line if first_line is None else min(first_line, found.line)
        state = state.with_replacements(found.spans)
    return state, rungs, first_line


# ---------------------------------------------------------------------------------------------- tool entry points


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
    return apply_blocks_safe(
        path, [Block(old_string, new_string, replace_all, line_hint)], dry_run=dry_run, guard_syntax=guard_syntax
    )[0]


def edit_text(text: str, old_string: str, new_string: str, replace_all: bool = False, *, path: Path | str,
              display: str | None = None, guard_syntax: bool = True) -> tuple[ApplyResult, str | None]:
    """:func:`apply_edit` on a text instead of a file (an editor's unsaved buffer): the result and the new text
    (None when the edit is refused or changes nothing). ``path`` picks the syntax guard's language."""
    name = display or str(path)
    try:
        original = TextFile.from_text(text)
        results, edited = _place_blocks(original, [Block(old_string, new_string, replace_all)], name)
        result = results[0]
        if not result.applied or result.rung == "no-op":
            return result, None
        why = check_syntax(Path(path), original.norm, edited.norm) if guard_syntax else None
    except Exception as exc:  # a bug must cost neither a traceback nor the text
        return ApplyResult(name, False, "error", f"{name}: internal error while applying the edit "
                                                 f"({type(exc).__name__}: {exc}); nothing was changed"), None
    if why:
        withdraw(results, "syntax", f"{name}: {why}")
        return result, None
    return result, edited.text


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
    name = display or str(path)

    def refuse(kind: str, why: str) -> ApplyResult:
        return ApplyResult(name, False, kind, why, action="write")

    if path.is_dir():
        return refuse("invalid", f"{name} is a directory")
    if not path.exists():
        return _create(path, content, dry_run=dry_run, display=name, index=None)
    try:
        current = TextFile.from_bytes(path.read_bytes())
    except FileFormatError as exc:
        return refuse("invalid", f"{name}: {exc}")
    except OSError as exc:
        return refuse("io", f"{name}: cannot read: {exc.strerror or exc}")
    new_norm = normalize_newlines(content)
    if check_truncation:
        why = check_rewrite(current.norm, new_norm)
        if why:
            return refuse("truncated", f"{name}: {why}")
    if guard_syntax:
        why = check_syntax(path, current.norm, new_norm)
        if why:
            return refuse("syntax", f"{name}: {why}")
    try:
        data = current.encode(current.in_file_newlines(new_norm))
    except FileFormatError as exc:
        return refuse("invalid", f"{name}: {exc}")
    diff = make_diff(current.norm, new_norm, name)
    if not dry_run:
        try:
            atomic_write_bytes(path, data)
        except OSError as exc:
            return refuse("io", f"{name}: cannot write: {exc.strerror or exc}")
    return ApplyResult(name, True, "write", None, diff=diff, line=1, action="write")


def delete_file(path: Path | str, *, dry_run: bool = False, display: str | None = None) -> ApplyResult:
    """Delete a file; the result's diff shows the removed text (empty when it cannot be read as text)."""
    path = Path(path)
    name = display or str(path)
    if not path.is_file():
        return ApplyResult(name, False, "not-found", f"{name}: cannot delete: no such file", action="delete")
    try:
        before = TextFile.from_bytes(path.read_bytes()).norm
    except (FileFormatError, OSError):
        before = ""
    if not dry_run:
        try:
            os.unlink(path)
        except OSError as exc:
            return ApplyResult(name, False, "io", f"{name}: cannot delete: {exc.strerror or exc}", action="delete")
    return ApplyResult(name, True, "delete", None, diff=make_diff(before, "", name), action="delete")
