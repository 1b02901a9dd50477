"""The batch report: one entry per job (status, turns, tokens, cost, verification, files, branch, commit, patch,
session), the totals, and the exit code; merging shard reports into one, and reading one back for --resume."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from ghostline.agent.batch.jobs import Job, JobsFile
from ghostline.files import replace_file

REPORT_TYPE = "batch_report"
VERSION = 1
SUCCESS = "success"
NOT_RUN = "not_run"  # the batch stopped (Ctrl-C, --max-cost-total) before the job started
STOPPED_INTERRUPTED = "interrupted"
STOPPED_COST = "max_cost_total"
USAGE_KEYS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
EXIT_FAILED = 1
EXIT_BUDGET = 4
EXIT_INTERRUPTED = 130


class ReportError(ValueError):
    """A report that cannot be read, resumed from or merged: one line for the user."""


def job_entry(job: Job, result: dict[str, Any] | None, *, status: str, model: str | None,
              worktree: str | None = None, base_commit: str | None = None, error: str | None = None) -> dict[str, Any]:
    """A job's line in the report, from the run's result object (None: the job never got as far as a run)."""
    r = result or {}
    usage = r.get("usage") or dict.fromkeys(USAGE_KEYS, 0)
    entry: dict[str, Any] = {
        "id": job.id, "index": job.index, "task": job.task, "model": model, "status": status,
        "result": error if error is not None else r.get("result", ""),
        "session_id": r.get("session_id"), "turns": r.get("num_turns", 0), "usage": usage,
        "tokens": sum(usage.get(k, 0) for k in USAGE_KEYS), "cost_usd": r.get("cost_usd"),
        "duration_ms": r.get("duration_ms", 0), "verification": r.get("verification"),
        "files_changed": r.get("files_changed", []), "branch": r.get("branch"), "worktree": worktree,
        "base_commit": base_commit, "commit": r.get("commit"), "patch": r.get("patch"),
        "diffstat": r.get("diffstat") or {"files": 0, "insertions": 0, "deletions": 0},
    }
    for key in ("structured_result", "landing_error"):
        if key in r:
            entry[key] = r[key]
    return entry


def totals(entries: list[dict[str, Any]]) -> dict[str, Any]:
    by_status = Counter(e["status"] for e in entries)
    costs = [e["cost_usd"] for e in entries if e.get("cost_usd") is not None]
    out: dict[str, Any] = {
        "jobs": len(entries), "succeeded": by_status.get(SUCCESS, 0),
        "failed": len(entries) - by_status.get(SUCCESS, 0), "by_status": dict(sorted(by_status.items())),
        "turns": sum(e["turns"] for e in entries), "tokens": sum(e["tokens"] for e in entries),
    }
    for key in USAGE_KEYS:
        out[key] = sum(e["usage"].get(key, 0) for e in entries)
    out["cost_usd"] = round(sum(costs), 6) if costs else None
    out["files_changed"] = sum(len(e["files_changed"]) for e in entries)
    out["insertions"] = sum(e["diffstat"]["insertions"] for e in entries)
    out["deletions"] = sum(e["diffstat"]["deletions"] for e in entries)
    out["commits"] = sum(1 for e in entries if e.get("commit"))
    return out


def exit_code(entries: list[dict[str, Any]], stopped_by: str | None) -> int:
    """0 when every job succeeded; 130 after Ctrl-C; 4 when --max-cost-total stopped the batch; else 1."""
    if stopped_by == STOPPED_INTERRUPTED:
        return EXIT_INTERRUPTED
    if stopped_by == STOPPED_COST:
        return EXIT_BUDGET
    return 0 if all(e["status"] == SUCCESS for e in entries) else EXIT_FAILED


def build_report(jobs_file: JobsFile, entries: list[dict[str, Any]], *, shard: tuple[int, int] | None,
                 stopped_by: str | None, duration_ms: int, max_cost_total: float | None) -> dict[str, Any]:
    entries = sorted(entries, key=lambda e: e["index"])
    return {
        "type": REPORT_TYPE, "version": VERSION, "jobs_file": str(jobs_file.path), "jobs_digest": jobs_file.digest,
        "jobs_total": len(jobs_file.jobs), "shard": f"{shard[0]}/{shard[1]}" if shard else None,
        "stopped_by": stopped_by, "max_cost_total": max_cost_total, "duration_ms": duration_ms,
        "exit_code": exit_code(entries, stopped_by), "totals": totals(entries), "jobs": entries,
    }


def write_report(report: dict[str, Any], path: Path) -> None:
    """Atomically (a killed batch leaves the last complete report, which --resume can use)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, [(json.dumps(report, indent=2, ensure_ascii=False) + "\n").encode("utf-8")])


def read_report(path: Path) -> dict[str, Any]:
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ReportError(f"cannot read the report {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise ReportError(f"{path} is not JSON: {e}") from None
    if not isinstance(report, dict) or report.get("type") != REPORT_TYPE or not isinstance(report.get("jobs"), list):
        raise ReportError(f"{path} is not an `agent batch` report")
    return report


def merge_reports(named: list[tuple[Path, dict[str, Any]]]) -> dict[str, Any]:
    """Shard reports of one batch (the same jobs file, shards 1..N each once) as one report. Raises
    ReportError."""
    first_path, first = named[0]
    shards: dict[int, Path] = {}
    n = None
    for path, report in named:
        if report.get("jobs_digest") != first.get("jobs_digest"):
            raise ReportError(f"{path} comes from another jobs file than {first_path}")
        k, of = _shard_of(path, report)
        if n is not None and of != n:
            raise ReportError(f"{path} is shard {k}/{of}, but {first_path} is from a split into {n}")
        if k in shards:
            raise ReportError(f"{path} and {shards[k]} are both shard {k}/{of}")
        n, shards[k] = of, path
    assert n is not None
    missing = [f"{k}/{n}" for k in range(1, n + 1) if k not in shards]
    if missing:
        raise ReportError(f"shard report(s) missing: {', '.join(missing)}")
    entries = [e for _, r in named for e in r["jobs"]]
    stopped = [r.get("stopped_by") for _, r in named]
    stopped_by = next((s for s in (STOPPED_INTERRUPTED, STOPPED_COST) if s in stopped), None)
    entries.sort(key=lambda e: e["index"])
    return {**first, "shard": None, "shards": [f"{k}/{n}" for k in sorted(shards)], "stopped_by": stopped_by,
            "duration_ms": max(r.get("duration_ms", 0) for _, r in named),
            "exit_code": exit_code(entries, stopped_by), "totals": totals(entries), "jobs": entries}


def _shard_of(path: Path, report: dict[str, Any]) -> tuple[int, int]:
    shard = report.get("shard")
    if not isinstance(shard, str) or "/" not in shard:
        raise ReportError(f"{path} is not a shard report (run the batch with --shard K/N to split it)")
    k, n = shard.split("/", 1)
    return int(k), int(n)
