"""What a batch will do, decided before anything runs: the jobs of this shard, where each works, which jobs an
earlier report (--resume) already finished, which continue an interrupted session, and every problem as one
error up front (a bad JOBS line, an unknown base, a branch left by an earlier batch, a model without a key)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ghostline.agent.batch.jobs import Job, JobsError, JobsFile, load_jobs, parse_shard, select_shard
from ghostline.agent.batch.report import SUCCESS, ReportError, read_report
from ghostline.agent.batch.workspace import DEFAULT_BRANCH, Place, leftovers, plan_place
from ghostline.agent.config import load_config
from ghostline.agent.options import RunOptions

INTERRUPTED = "interrupted"


@dataclass
class BatchOptions:
    jobs: Path
    run: RunOptions = field(default_factory=RunOptions)  # what every job shares: model, budgets, sandbox, verify...
    parallel: int = 4
    report: Path = Path("batch-report.json")
    shard: str | None = None
    max_cost_total: float | None = None
    junit: Path | None = None
    resume: Path | None = None
    commit: bool = False
    patch_dir: Path | None = None  # <dir>/<id>.patch per job
    branch: str = DEFAULT_BRANCH  # a template with {id}


@dataclass
class JobPlan:
    job: Job
    place: Place
    previous: dict[str, Any] | None = None  # the job's entry in the --resume report
    continue_session: str | None = None  # an interrupted job goes on in its session and worktree
    replace: bool = False  # remove the branch and worktree an earlier run of this job left, then start afresh


@dataclass
class BatchPlan:
    jobs_file: JobsFile
    shard: tuple[int, int] | None
    plans: list[JobPlan]
    carried: list[dict[str, Any]]  # entries of jobs the --resume report shows succeeded


def _continues(prev: dict[str, Any] | None) -> bool:
    return bool(prev and prev.get("status") == INTERRUPTED and prev.get("session_id") and prev.get("worktree")
                and Path(prev["worktree"]).is_dir())


def _owned(prev: dict[str, Any] | None, found: str) -> bool:
    """Whether a leftover is the earlier run's own (recorded in the --resume report), so it may be replaced."""
    return bool(prev) and found in (f"branch {prev.get('branch')}", f"directory {prev.get('worktree')}")


def _plan_job(job: Job, prev: dict[str, Any] | None, opts: BatchOptions, start: Path,
              conflicts: list[str]) -> JobPlan:
    place = plan_place(job, start=start, template=opts.branch, where=f"{opts.jobs}:{job.line}")
    if _continues(prev):
        assert prev is not None
        place = Place(place.repo, Path(prev["worktree"]), place.subdir, prev.get("branch") or place.branch,
                      prev.get("base_commit") or place.base)
        return JobPlan(job, place, prev, continue_session=prev["session_id"])
    found = leftovers(place)
    conflicts.extend(f"{x} (job {job.id})" for x in found if not _owned(prev, x))
    return JobPlan(job, place, prev, replace=bool(found))


def _previous(opts: BatchOptions, shard: tuple[int, int] | None) -> dict[str, dict[str, Any]]:
    if opts.resume is None:
        return {}
    report = read_report(opts.resume)
    want = f"{shard[0]}/{shard[1]}" if shard else None
    if report.get("shard") != want:
        raise ReportError(f"{opts.resume} is the report of shard {report.get('shard') or '(none)'}; resume it with "
                          f"the same --shard")
    return {e["id"]: e for e in report["jobs"] if isinstance(e, dict) and "id" in e}


def _check_models(plans: list[JobPlan], opts: BatchOptions, start: Path) -> None:
    """Each model the jobs use can be made (a known provider, its key set): else one error before any job."""
    from ghostline.agent.models import make_provider

    cfg = load_config(start)
    for spec in sorted({p.job.model or opts.run.model or cfg.model or "" for p in plans}):
        make_provider(spec or None, base_url=opts.run.base_url or cfg.base_url, overrides=cfg.models)


def plan_batch(opts: BatchOptions) -> BatchPlan:
    """Raises JobsError, ReportError or ConfigError: nothing has run."""
    if opts.parallel < 1:
        raise JobsError(f"--parallel must be 1 or more (got {opts.parallel})")
    jobs_file = load_jobs(opts.jobs)
    shard = parse_shard(opts.shard) if opts.shard else None
    previous = _previous(opts, shard)
    start = (opts.run.cwd or Path.cwd()).resolve()
    plans: list[JobPlan] = []
    carried: list[dict[str, Any]] = []
    conflicts: list[str] = []
    for job in select_shard(jobs_file.jobs, shard):
        prev = previous.get(job.id)
        if prev is not None and prev.get("status") == SUCCESS:
            carried.append({**prev, "index": job.index})
            continue
        plans.append(_plan_job(job, prev, opts, start, conflicts))
    if (opts.run.verify_attempts is not None or opts.run.verify_timeout is not None) and not opts.run.verify \
            and not any(j.verify for j in jobs_file.jobs):
        raise JobsError("--verify-attempts/--verify-timeout need --verify CMD or jobs with a \"verify\" command")
    if conflicts:
        raise JobsError(f"an earlier run left {', '.join(conflicts)}; rerun with --resume REPORT to redo what did "
                        f"not succeed, or remove them (git worktree remove PATH; git branch -D NAME)")
    _check_models(plans, opts, start)
    return BatchPlan(jobs_file, shard, plans, carried)
