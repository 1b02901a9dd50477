"""`agent index build|status|search`: the repository index behind the `search` tool and the daemon."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ghostline.agent.commands import fail as _fail
from ghostline.dirs import find_project_root

if TYPE_CHECKING:  # imported where used: the index pulls numpy and SQLite, `agent --help` must stay fast
    from ghostline.index import Hit, RefreshStats, RepoIndex

# `search` embeds new chunks for at most this long before answering; `build` embeds everything.
SEARCH_EMBED_BUDGET_S = 30.0


class Embeddings(StrEnum):
    auto = "auto"
    on = "on"
    off = "off"


class Mode(StrEnum):
    hybrid = "hybrid"
    lexical = "lexical"
    dense = "dense"


def _default_embeddings() -> Embeddings:
    value = os.environ.get("GHOSTLINE_EMBEDDINGS", "auto").strip().lower()
    if value in ("0", "off", "false", "no", "none"):
        return Embeddings.off
    if value in ("1", "on", "true", "yes"):
        return Embeddings.on
    return Embeddings.auto


def _open(root: Path | None, embeddings: Embeddings | None) -> RepoIndex:
    from ghostline.index import EmbeddingsUnavailable, IndexOpenError, RepoIndex

    base = root if root is not None else find_project_root(Path.cwd().resolve())
    if not base.is_dir():
        raise _fail(f"not a directory: {base}")
    mode = (embeddings or _default_embeddings()).value
    try:
        return RepoIndex.open(base, embeddings=mode)  # type: ignore[arg-type]
    except EmbeddingsUnavailable as exc:
        raise _fail(f"embeddings requested but unavailable: {exc}") from None
    except IndexOpenError as exc:
        raise _fail(str(exc), 1) from None
    except OSError as exc:
        raise _fail(f"cannot open the index: {exc}", 1) from None


def _say_notice(idx: RepoIndex) -> None:
    if idx.notice:
        typer.echo(f"agent index: {idx.notice}", err=True)


def _refresh(idx: RepoIndex, *, embed_budget_s: float | None, quiet: bool) -> RefreshStats:
    """Refresh with a rich progress bar on a terminal (stderr), silently otherwise."""
    if quiet or not sys.stderr.isatty():
        return idx.refresh(embed_budget_s=embed_budget_s)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    labels = {"index": "Indexing files", "embed": "Embedding chunks"}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        tasks: dict[str, Any] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(labels.get(phase, phase), total=total)
            bar.update(tasks[phase], completed=done, total=total)

        return idx.refresh(embed_budget_s=embed_budget_s, progress=progress)


index_app = typer.Typer(
    name="index", help="Build, inspect and query the repository index (used by `search` and the daemon).",
    no_args_is_help=True,
)
_ROOT = typer.Option(None, "--root", help="Repository root (default: the enclosing git repository).")
_EMBEDDINGS = typer.Option(None, "--embeddings",
                           help="Dense embeddings: auto (when the model loads), on (required), off. "
                                "Default: $GHOSTLINE_EMBEDDINGS or auto.")


def register(app: typer.Typer) -> None:
    app.add_typer(index_app, name="index")


@index_app.command("build")
def build_cmd(
    root: Path | None = _ROOT,
    embeddings: Embeddings | None = _EMBEDDINGS,
    rebuild: bool = typer.Option(False, "--rebuild", help="Drop the index and build it from scratch."),
    as_json: bool = typer.Option(False, "--json", help="Print the refresh statistics as JSON."),
) -> None:
    """Index (or bring up to date) the repository: chunks, symbols, imports, embeddings."""
    idx = _open(root, embeddings)
    if rebuild:
        idx = _reopen_empty(idx, root, embeddings)
    try:
        stats = _refresh(idx, embed_budget_s=None, quiet=as_json)
        _say_notice(idx)
        status = idx.status()
    except KeyboardInterrupt:
        raise _fail("interrupted (the index keeps what was done; run build again to finish)", 130) from None
    finally:
        idx.close()
    if as_json:
        typer.echo(json.dumps({"stats": asdict(stats), "status": asdict(status)}, indent=2))
        return
    typer.echo(
        f"indexed {status.files} files, {status.chunks} chunks, {status.symbols} symbols in {stats.seconds:.1f}s "
        f"(+{stats.added} ~{stats.changed} -{stats.removed}, {stats.embedded} embedded)"
    )
    typer.echo(f"embeddings: {status.embeddings}; index at {status.db_path}")


def _reopen_empty(idx: RepoIndex, root: Path | None, embeddings: Embeddings | None) -> RepoIndex:
    """Close the index, delete its database and open a new, empty one."""
    db = Path(idx.db_path)
    idx.close()
    for suffix in ("", "-wal", "-shm"):
        try:
            os.unlink(str(db) + suffix)
        except FileNotFoundError:
            pass
    return _open(root, embeddings)


@index_app.command("status")
def status_cmd(
    root: Path | None = _ROOT,
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
) -> None:
    """Show what the index holds (without refreshing it or loading a model)."""
    idx = _open(root, Embeddings.off if _default_embeddings() == Embeddings.off else Embeddings.auto)
    try:
        status = idx.status()
    finally:
        idx.close()
    if as_json:
        typer.echo(json.dumps(asdict(status), indent=2))
        return
    langs = ", ".join(f"{k} {v}" for k, v in list(status.languages.items())[:8]) or "-"
    rows = [
        ("root", status.root),
        ("index", f"{status.db_path} ({status.size_bytes / 1e6:.1f} MB, schema v{status.schema_version})"),
        ("files", f"{status.files} ({langs})"),
        ("chunks", f"{status.chunks} ({status.embedded_chunks} embedded)"),
        ("symbols", str(status.symbols)),
        ("imports", str(status.imports)),
        ("root hash", status.root_hash or "-"),
    ]
    for k, v in rows:
        typer.echo(f"{k:>10}  {v}")


@index_app.command("search")
def search_cmd(
    query: str = typer.Argument(..., metavar="QUERY", help="What to look for (words, identifiers)."),
    k: int = typer.Option(10, "--k", "-k", min=1, max=200, help="How many results."),
    mode: Mode = typer.Option(Mode.hybrid, "--mode", help="hybrid, lexical or dense."),
    root: Path | None = _ROOT,
    embeddings: Embeddings | None = _EMBEDDINGS,
    as_json: bool = typer.Option(False, "--json", help="Print results as JSON."),
) -> None:
    """Search the index (refreshing it first: only changed files are re-read)."""
    if mode == Mode.lexical and embeddings is None:
        embeddings = Embeddings.off  # never load a model for a lexical query
    idx = _open(root, embeddings)
    try:
        stats = _refresh(idx, embed_budget_s=SEARCH_EMBED_BUDGET_S, quiet=as_json)
        if stats.pending_embeddings and not as_json:
            typer.echo(f"agent index: {stats.pending_embeddings} chunks not embedded yet (semantic ranking is "
                       "partial); `agent index build` embeds them all", err=True)
        hits = idx.search(query, k=k, mode=mode.value)
        _say_notice(idx)
    except KeyboardInterrupt:
        raise _fail("interrupted", 130) from None
    finally:
        idx.close()
    if as_json:
        typer.echo(json.dumps([asdict(h) for h in hits], indent=2))
        return
    _print_hits(hits)


def _print_hits(hits: list[Hit]) -> None:
    if not hits:
        typer.echo("no results")
        raise typer.Exit(1)
    for n, h in enumerate(hits, 1):
        label = f"  {h.symbol}" if h.symbol else ""
        typer.echo(f"{n:>2}. {h.path}:{h.start_line}-{h.end_line}{label}  [{h.score:.3f}]")
        for line in h.text.splitlines()[:3]:
            if line.strip():
                typer.echo(f"      {line.strip()[:100]}")
