"""`agent apply EDITFILE`: apply edits written by a model (or a person) from a file, through the ladder."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path

import typer
from ghostline.agent.commands import fail as _fail


class EditFormat(StrEnum):
    auto = "auto"
    edit_json = "edit-json"
    search_replace = "search-replace"
    udiff = "udiff"
    patch = "patch"
    whole = "whole"



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
        try:
            if editfile == "-":
                text = sys.stdin.read()
            else:
                text = Path(editfile).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise _fail(f"cannot read {editfile}: no such file") from None
        except IsADirectoryError:
            raise _fail(f"cannot read {editfile}: it is a directory") from None
        except UnicodeDecodeError:
            raise _fail(f"cannot read {editfile}: not UTF-8 text") from None
        except OSError as exc:
            raise _fail(f"cannot read {editfile}: {exc.strerror or exc}") from None
        formats = [f.value for f in EditFormat]
        if fmt not in formats:
            raise _fail(f"--format {fmt}: unknown format (one of {', '.join(formats)})")
        if not root.is_dir():
            raise _fail(f"--root {root}: not a directory")

        from ghostline.apply import ParseError, apply_text

        try:
            results = apply_text(text, root, fmt, dry_run=dry_run)
        except ParseError as exc:
            raise _fail(f"{editfile}: {exc}") from None
        ok = bool(results) and all(r.applied for r in results)
        if as_json:
            payload = {
                "applied": ok,
                "dry_run": dry_run,
                "results": [
                    {
                        "path": r.path,
                        "rung": r.rung,
                        "applied": r.applied,
                        "error": r.error,
                        "block": r.block,
                        "line": r.line,
                        "fuzzy": r.fuzzy,
                        "similarity": r.similarity,
                    }
                    for r in results
                ],
            }
            typer.echo(json.dumps(payload, indent=2))
        else:
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
        raise typer.Exit(0 if ok else 1)
