"""How a batch shows its progress: a live table on a terminal (job, status, turns, cost, elapsed), JSON lines on
stdout otherwise (CI logs: one line when a job starts, at each of its turns, when it ends, and at the end)."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

STATUS_STYLE = {"success": "green", "running": "cyan", "queued": "dim", "not_run": "dim", "interrupted": "yellow"}


class Progress(Protocol):
    def started(self, job_id: str, info: dict[str, Any]) -> None: ...
    def turn(self, job_id: str, turn: int, cost_usd: float | None) -> None: ...
    def finished(self, entry: dict[str, Any]) -> None: ...
    def close(self, report: dict[str, Any], report_path: str) -> None: ...


def _summary(entry: dict[str, Any]) -> str:
    text = " ".join(str(entry.get("result") or "").split())
    return text if len(text) <= 200 else text[:199] + "…"


class JsonLinesProgress:
    """One JSON object per line on stdout."""

    def __init__(self, out: TextIO | None = None):
        self.out = out or sys.stdout

    def _line(self, obj: dict[str, Any]) -> None:
        self.out.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self.out.flush()

    def started(self, job_id: str, info: dict[str, Any]) -> None:
        self._line({"type": "job_started", "id": job_id, **info})

    def turn(self, job_id: str, turn: int, cost_usd: float | None) -> None:
        self._line({"type": "job_turn", "id": job_id, "turn": turn, "cost_usd": cost_usd})

    def finished(self, entry: dict[str, Any]) -> None:
        keys = ("id", "status", "turns", "cost_usd", "duration_ms", "branch", "commit", "patch", "session_id")
        self._line({"type": "job_finished", **{k: entry.get(k) for k in keys}, "result": _summary(entry)})

    def close(self, report: dict[str, Any], report_path: str) -> None:
        self._line({"type": "batch_finished", "report": report_path, "exit_code": report["exit_code"],
                    "stopped_by": report["stopped_by"], "totals": report["totals"]})


@dataclass
class _Row:
    status: str = "queued"
    turns: int = 0
    cost: float | None = None
    started: float | None = None
    ended: float | None = None
    note: str = ""

    def elapsed(self, now: float) -> str:
        if self.started is None:
            return ""
        secs = (self.ended or now) - self.started
        return f"{int(secs // 60)}:{secs % 60:04.1f}"


@dataclass
class _Board:
    """What the table shows; read by rich's refresh thread (rows are created up front, only their fields
    change)."""

    rows: dict[str, _Row]
    started: float = field(default_factory=time.monotonic)

    def __rich__(self) -> Any:
        from rich.table import Table

        now = time.monotonic()
        done = sum(1 for r in self.rows.values() if r.status not in ("queued", "running"))
        cost = sum(r.cost or 0.0 for r in self.rows.values())
        table = Table(title=f"agent batch · {done}/{len(self.rows)} done · ${cost:.4f} · "
                            f"{_Row(started=self.started).elapsed(now)}", title_justify="left")
        for name, justify in (("job", "left"), ("status", "left"), ("turns", "right"), ("cost", "right"),
                              ("elapsed", "right"), ("commit", "left")):
            table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
        for job_id, r in self.rows.items():
            style = STATUS_STYLE.get(r.status, "red")
            table.add_row(job_id, f"[{style}]{r.status}[/]", str(r.turns or ""),
                          "" if r.cost is None else f"${r.cost:.4f}", r.elapsed(now), r.note)
        return table


class TableProgress:
    """A live rich table (stderr lines from the jobs are printed above it)."""

    def __init__(self, job_ids: list[str], console: Any = None):
        from rich.console import Console
        from rich.live import Live

        self.board = _Board({job_id: _Row() for job_id in job_ids})
        self.console = console or Console()
        self.live = Live(self.board, console=self.console, refresh_per_second=4)
        self.live.start()

    def started(self, job_id: str, info: dict[str, Any]) -> None:
        row = self.board.rows[job_id]
        row.status, row.started = "running", time.monotonic()

    def turn(self, job_id: str, turn: int, cost_usd: float | None) -> None:
        row = self.board.rows[job_id]
        row.turns, row.cost = turn, cost_usd

    def finished(self, entry: dict[str, Any]) -> None:
        row = self.board.rows[entry["id"]]
        row.status, row.turns, row.cost = entry["status"], entry["turns"], entry["cost_usd"]
        row.ended = time.monotonic() if row.started is not None else None
        row.note = entry.get("commit", "")[:10] if entry.get("commit") else ""

    def close(self, report: dict[str, Any], report_path: str) -> None:
        self.live.stop()
        t = report["totals"]
        cost = "" if t["cost_usd"] is None else f", ${t['cost_usd']:.4f}"
        self.console.print(f"{t['succeeded']}/{t['jobs']} jobs succeeded ({t['turns']} turns{cost}); "
                           f"report: {report_path}", highlight=False, markup=False)


def make_progress(job_ids: list[str], *, tty: bool) -> Progress:
    return TableProgress(job_ids) if tty else JsonLinesProgress()
