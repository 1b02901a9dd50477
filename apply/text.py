"""Apply edits written as text by a model (any format in :mod:`apply.formats`) under a root directory."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from ghostline.apply.core import ApplyResult, apply_blocks_safe, delete_file, write_file
from ghostline.apply.formats import FileOp, parse

_SKIP_DIRS = {".git", ".hg", ".svn", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".tox"}
_MAX_SCAN = 20000


def _inside(root: Path, p: Path) -> bool:
    try:
        Path(os.path.realpath(p)).relative_to(root)
        return True
    except ValueError:
        return False


def _near_miss(root: Path, rel: str) -> str | None:
    """An existing file the model probably meant: unique same base name, else a unique close path."""
    files: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]
        for f in filenames:
            files.append(os.path.relpath(os.path.join(dirpath, f), root))
            if len(files) > _MAX_SCAN:
                return None
    base = os.path.basename(rel)
    same = [f for f in files if os.path.basename(f) == base]
    if len(same) == 1:
        return same[0]
    pool = same or files
    close = difflib.get_close_matches(rel, pool, n=2, cutoff=0.85)
    if len(close) == 1:
        return close[0]
    if len(close) == 2:
        r = difflib.SequenceMatcher(None, rel, close[0]).ratio()
        r2 = difflib.SequenceMatcher(None, rel, close[1]).ratio()
        if r - r2 >= 0.05:
            return close[0]
    return None


def resolve(root: Path, rel: str, *, fuzzy: bool) -> tuple[Path | None, str, str | None]:
    """(absolute path, display name, error).  Paths must stay inside ``root``."""
    rel = rel.strip()
    p = Path(rel)
    full = p if p.is_absolute() else root / p
    if not _inside(root, full):
        return None, rel, f"{rel}: path is outside the root directory {root}; refused"
    if not full.exists() and fuzzy:
        alt = _near_miss(root, rel)
        if alt is not None:
            return root / alt, alt, None
    return full, rel, None


def apply_ops(ops: list[FileOp], root: Path, *, dry_run: bool, atomic: bool, guard_whole: bool) -> list[ApplyResult]:
    results: list[ApplyResult] = []
    for op in ops:
        path, name, err = resolve(root, op.path, fuzzy=op.fuzzy_path and op.kind == "blocks")
        for prob in op.problems:
            results.append(ApplyResult(name, False, "invalid", f"{name}: {prob}"))
        if err or path is None:
            if op.blocks:
                results.extend(ApplyResult(name, False, "invalid", err, block=b.index) for b in op.blocks)
            else:
                results.append(ApplyResult(name, False, "invalid", err))
            continue
        if op.kind == "write":
            results.append(
                write_file(path, op.content or "", dry_run=dry_run, guard_syntax=True,
                           check_truncation=guard_whole, display=name)
            )
        elif op.kind == "delete":
            results.append(delete_file(path, dry_run=dry_run, display=name))
        else:
            if not path.exists() and op.blocks and all(not b.old.strip() for b in op.blocks):
                content = "".join(b.new for b in op.blocks)
                results.append(write_file(path, content, dry_run=dry_run, display=name))
                continue
            rs = apply_blocks_safe(path, op.blocks, dry_run=dry_run, atomic=atomic, display=name)
            results.extend(rs)
            if op.move_to and rs and all(r.applied for r in rs):
                dest, dname, derr = resolve(root, op.move_to, fuzzy=False)
                if derr or dest is None:
                    results.append(ApplyResult(dname, False, "invalid", derr, action="move"))
                elif dest.exists() and os.path.realpath(dest) != os.path.realpath(path):
                    results.append(ApplyResult(dname, False, "invalid",
                                               f"{dname}: cannot move {name} here: the file exists", action="move"))
                else:
                    try:
                        if not dry_run:
                            dest.parent.mkdir(parents=True, exist_ok=True)
                            os.replace(path, dest)
                        results.append(ApplyResult(dname, True, "move", None, action="move"))
                    except OSError as exc:
                        results.append(ApplyResult(dname, False, "io", f"{dname}: cannot move {name} here: "
                                                   f"{exc.strerror or exc}", action="move"))
    return results


def apply_text(
    text: str, root: Path | str = ".", format: str = "auto", *, dry_run: bool = False
) -> list[ApplyResult]:
    """Parse ``text`` (``format`` or auto-detected) and apply every edit under ``root``.

    Raises :class:`apply.formats.ParseError` when the text holds no recognisable edit.  Codex patches apply
    whole or not at all (a dry run of every file first); other formats apply block by block, and the
    results say which blocks applied.
    """
    root_p = Path(os.path.realpath(root))
    fmt, ops = parse(text, format)
    atomic = fmt == "patch"
    guard_whole = fmt == "whole"
    if atomic and not dry_run:
        trial = apply_ops(ops, root_p, dry_run=True, atomic=True, guard_whole=guard_whole)
        if not all(r.applied for r in trial):
            for r in trial:
                if r.applied:
                    r.applied, r.rung, r.diff = False, "not-applied", ""
                    r.error = f"{r.path}: not applied because another part of the patch was refused"
            return trial
    return apply_ops(ops, root_p, dry_run=dry_run, atomic=atomic, guard_whole=guard_whole)
