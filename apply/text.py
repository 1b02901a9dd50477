"""Apply edits written as text by a model (any format in :mod:`apply.formats`) under a root directory."""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from ghostline.apply.core import ApplyResult, apply_blocks_safe, delete_file, withdraw, write_file
from ghostline.apply.formats import FileOp, parse

# Lists the files under the root (root-relative paths); see `apply_text`.
ExistingFiles = Callable[[], Iterable[str]]


@dataclasses.dataclass(frozen=True)
class _Options:
    root: Path  # real path: edited paths must stay inside it
    dry_run: bool
    atomic: bool  # one refused block refuses every block of its file
    guard_whole: bool  # whole-file writes are checked for truncation and placeholders
    existing_files: ExistingFiles | None


def apply_text(
    text: str,
    root: Path | str = ".",
    format: str = "auto",
    *,
    dry_run: bool = False,
    existing_files: ExistingFiles | None = None,
) -> list[ApplyResult]:
    """Parse ``text`` (``format`` or auto-detected) and apply every edit under ``root``.

    Raises :class:`apply.formats.ParseError` when the text holds no recognisable edit.  Codex patches apply
    whole or not at all (a dry run of every file first); other formats apply block by block, and the
    results say which blocks applied.

    ``existing_files`` lists the files under ``root`` (root-relative paths).  It is called when a
    SEARCH/REPLACE block or a diff names a file that does not exist, to find the file the model probably
    meant (a unique file of the same name, else a unique close path).  Without it paths are taken as written.
    """
    fmt, ops = parse(text, format)
    return apply_ops(fmt, ops, root, dry_run=dry_run, existing_files=existing_files)


def apply_ops(
    fmt: str,
    ops: list[FileOp],
    root: Path | str = ".",
    *,
    dry_run: bool = False,
    existing_files: ExistingFiles | None = None,
) -> list[ApplyResult]:
    """Apply operations :func:`parse` gave for format ``fmt`` under ``root``, as :func:`apply_text` does (for a
    caller that checks or rewrites the paths between parsing and applying)."""
    options = _Options(Path(os.path.realpath(root)), dry_run, atomic=fmt == "patch", guard_whole=fmt == "whole",
                       existing_files=existing_files)
    if options.atomic and not dry_run:
        trial = _apply_ops(ops, dataclasses.replace(options, dry_run=True))
        if not all(r.applied for r in trial):
            for r in trial:
                withdraw([r], "not-applied", f"{r.path}: not applied because another part of the patch was refused",
                         no_ops_too=True)
            return trial
    return _apply_ops(ops, options)


def _apply_ops(ops: list[FileOp], options: _Options) -> list[ApplyResult]:
    results: list[ApplyResult] = []
    for op in ops:
        results.extend(_apply_op(op, options))
    return results


def _apply_op(op: FileOp, options: _Options) -> list[ApplyResult]:
    guess_from = options.existing_files if op.fuzzy_path and op.kind == "blocks" else None
    path, name, error = _resolve(options.root, op.path, guess_from)
    results = [ApplyResult(name, False, "invalid", f"{name}: {problem}") for problem in op.problems]
    if error or path is None:
        if op.blocks:
            results.extend(ApplyResult(name, False, "invalid", error, block=b.index) for b in op.blocks)
        else:
            results.append(ApplyResult(name, False, "invalid", error))
    elif op.kind == "write":
        results.append(write_file(path, op.content or "", dry_run=options.dry_run, guard_syntax=True,
                                  check_truncation=options.guard_whole, display=name))
    elif op.kind == "delete":
        results.append(delete_file(path, dry_run=options.dry_run, display=name))
    else:
        results.extend(_apply_blocks_op(op, path, name, options))
    return results


def _apply_blocks_op(op: FileOp, path: Path, name: str, options: _Options) -> list[ApplyResult]:
    if not path.exists() and op.blocks and all(not b.old.strip() for b in op.blocks):
        # Blocks that only add text to a file that does not exist yet: the file is their text.
        return [write_file(path, "".join(b.new for b in op.blocks), dry_run=options.dry_run, display=name)]
    results = apply_blocks_safe(path, op.blocks, dry_run=options.dry_run, atomic=options.atomic, display=name)
    if op.move_to and results and all(r.applied for r in results):
        results.append(_move(path, name, op.move_to, options))
    return results


def _move(path: Path, name: str, move_to: str, options: _Options) -> ApplyResult:
    dest, dest_name, error = _resolve(options.root, move_to, None)
    if error or dest is None:
        return ApplyResult(dest_name, False, "invalid", error, action="move")
    if dest.exists() and os.path.realpath(dest) != os.path.realpath(path):
        return ApplyResult(dest_name, False, "invalid", f"{dest_name}: cannot move {name} here: the file exists",
                           action="move")
    try:
        if not options.dry_run:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest)
        return ApplyResult(dest_name, True, "move", None, action="move")
    except OSError as exc:
        return ApplyResult(dest_name, False, "io", f"{dest_name}: cannot move {name} here: {exc.strerror or exc}",
                           action="move")


def _resolve(root: Path, rel: str, guess_from: ExistingFiles | None) -> tuple[Path | None, str, str | None]:
    """(absolute path, display name, error) of a path an edit names; it must stay inside ``root``.

    With ``guess_from``, a path that names no file is replaced by the existing file it most likely meant.
    """
    rel = rel.strip()
    p = Path(rel)
    full = p if p.is_absolute() else root / p
    if not _inside(root, full):
        return None, rel, f"{rel}: path is outside the root directory {root}; refused"
    if not full.exists() and guess_from is not None:
        meant = _near_miss(rel, list(guess_from()))
        if meant is not None:
            return root / meant, meant, None
    return full, rel, None


def _inside(root: Path, p: Path) -> bool:
    try:
        Path(os.path.realpath(p)).relative_to(root)
        return True
    except ValueError:
        return False


def _near_miss(rel: str, files: list[str]) -> str | None:
    """The file of ``files`` the model probably meant by ``rel``: the one file of the same base name, else the
    one close path (or the clearly closest of two)."""
    base = os.path.basename(rel)
    same = [f for f in files if os.path.basename(f) == base]
    if len(same) == 1:
        return same[0]
    pool = same or files
    close = difflib.get_close_matches(rel, pool, n=2, cutoff=0.85)
    if len(close) == 1:
        return close[0]
    if len(close) == 2:
        best = difflib.SequenceMatcher(None, rel, close[0]).ratio()
        second = difflib.SequenceMatcher(None, rel, close[1]).ratio()
        if best - second >= 0.05:
            return close[0]
    return None
