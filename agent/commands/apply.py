"""`agent apply EDITFILE`: apply edits written by a model (or a person) from a file, through the ladder."""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ghostline.agent.commands import fail as _fail

if TYPE_CHECKING:  # the applier itself is imported when the command runs (see apply_cmd)
    from ghostline.apply import ApplyResult


class EditFormat(StrEnum):
    auto = "auto"
    edit_json = "edit-json"
    search_replace = "search-replace"
    udiff = "udiff"
    patch = "patch"
    whole = "whole"


_MAX_FILES = 20000  # past this many files a near-miss file name is not guessed


def project_files(root: Path) -> list[str]:
    """Every file under ``root`` (root-relative paths) that an edit naming a missing file may have meant;
    none when there are more than ``_MAX_FILES`` (too many to guess among, and too slow to list)."""
    from ghostline.index.walker import ALL_FILES, IgnoreRules, iter_files  # pathspec: not for `agent --help`

    files: list[str] = []
    # The repository's one walk (gitignore-aware, the usual build and tool folders skipped), every file kept.
    for f in iter_files(IgnoreRules(root), files=ALL_FILES):
        files.append(f.path)
        if len(files) > _MAX_FILES:
            return []
    return files


def register(app: typer.Typer) -> None:
    @app.command("apply")
    def apply_cmd(
        editfile: str = typer.Argument(..., metavar="EDITFILE", help="File holding the edits ('-' reads stdin)."),
        root: Path = typer.Option(Path("."), "--root", help="Directory the edited paths are relative to."),
        fmt: str = typer.Option("auto", "--format", metavar="FORMAT",
                                help="auto | edit-json | search-replace | udiff | patch | whole (auto detects it)."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object with every result."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Check and show the changes; write nothing."),
    ) -> None:
        """Apply edits (edit JSON, SEARCH/REPLACE blocks, unified diff, Codex patch, whole files) to files.

        Exit 0 when everything applied, 1 when anything was refused (refused edits change nothing),
        2 when the input cannot be read or holds no edit.
        """
        text = _read_edits(editfile)
        formats = [f.value for f in EditFormat]
        if fmt not in formats:
            raise _fail(f"--format {fmt}: unknown format (one of {', '.join(formats)})")
        if not root.is_dir():
            raise _fail(f"--root {root}: not a directory")

        # Imported here, not at the top: `agent --help` must not load the applier (tree-sitter, rapidfuzz).
        from ghostline.apply import ParseError, apply_text

        real_root = Path(os.path.realpath(root))
        try:
            results = apply_text(text, real_root, fmt, dry_run=dry_run,
                                 existing_files=lambda: project_files(real_root))
        except ParseError as exc:
            raise _fail(f"{editfile}: {exc}") from None
        ok = bool(results) and all(r.applied for r in results)
        if as_json:
            _print_json(results, ok=ok, dry_run=dry_run)
        else:
            _print_lines(results, dry_run=dry_run)
        raise typer.Exit(0 if ok else 1)


def _read_edits(editfile: str) -> str:
    try:
        if editfile == "-":
            return sys.stdin.read()
        return Path(editfile).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _fail(f"cannot read {editfile}: no such file") from None
    except IsADirectoryError:
        raise _fail(f"cannot read {editfile}: it is a directory") from None
    except UnicodeDecodeError:
        raise _fail(f"cannot read {editfile}: not UTF-8 text") from None
    except OSError as exc:
        raise _fail(f"cannot read {editfile}: {exc.strerror or exc}") from None


def _print_json(results: list[ApplyResult], *, ok: bool, dry_run: bool) -> None:
    fields = ("path", "rung", "applied", "error", "block", "line", "fuzzy", "similarity")
    payload = {
        "applied": ok,
        "dry_run": dry_run,
        "results": [{f: getattr(r, f) for f in fields} for r in results],
    }
    typer.echo(json.dumps(payload, indent=2))


def _print_lines(results: list[ApplyResult], *, dry_run: bool) -> None:
    """One line per result: applied ones on stdout (with the diff on a dry run), refusals on stderr."""
    for r in results:
        block = f" block {r.block}" if r.block is not None else ""
        if r.applied:
            extra = f", {r.similarity:.0%} similar" if r.fuzzy and r.similarity is not None else ""
            where = f" at line {r.line}" if r.line else ""
            verb = "would apply" if dry_run else "applied"
            typer.echo(f"{verb} {r.path}{block}{where} ({r.rung}{extra})")
            if dry_run and r.diff:
                typer.echo(r.diff.rstrip("\n"))
        else:
            first = (r.error or "refused").split("\n", 1)[0]
            typer.echo(f"refused {r.path}{block} ({r.rung}): {first}", err=True)
