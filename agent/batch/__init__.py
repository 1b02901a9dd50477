"""`agent batch`: headless jobs from a JOBS file, in parallel, each in its own git worktree and branch; shards
for CI matrices and the merge of their reports; JUnit for dashboards.

Public surface: `BatchOptions`, `run_batch` (the command; returns its exit code), `merge_command`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from ghostline.agent.batch.engine import Batch
from ghostline.agent.batch.jobs import JobsError
from ghostline.agent.batch.junit import write_junit
from ghostline.agent.batch.plan import BatchOptions, plan_batch
from ghostline.agent.batch.progress import make_progress
from ghostline.agent.batch.report import ReportError, merge_reports, read_report, write_report
from ghostline.agent.headless import load_schema
from ghostline.agent.options import UsageError
from ghostline.agent.providers.base import ConfigError

__all__ = ["BatchOptions", "merge_command", "run_batch"]

EXIT_USAGE = 2


def _err(msg: str) -> None:
    sys.stderr.write(f"agent: {msg}\n")
    sys.stderr.flush()


def run_batch(opts: BatchOptions) -> int:
    """Plan (every problem is one error before anything runs), run, write the report (and JUnit)."""
    try:
        plan = plan_batch(opts)
        schema = load_schema(opts.run.output_schema)
    except (JobsError, ReportError, UsageError, ConfigError) as e:
        _err(str(e))
        return EXIT_USAGE
    progress = make_progress([p.job.id for p in plan.plans], tty=sys.stdout.isatty())
    batch = Batch(opts, plan, schema, progress)
    try:
        report = asyncio.run(batch.run())
    except KeyboardInterrupt:  # a signal before the handlers were in place
        batch.stopped_by = batch.stopped_by or "interrupted"
        report = batch.report()
    write_report(report, opts.report)
    if opts.junit is not None:
        write_junit(report, opts.junit)
    progress.close(report, str(opts.report))
    return report["exit_code"]


def merge_command(paths: list[Path], junit: Path | None = None) -> int:
    """`agent batch merge R1.json R2.json ...`: the shards' reports as one, on stdout. Exits like the batch
    would have (0 only when every job succeeded), or 2 when the reports do not make one batch."""
    try:
        report = merge_reports([(p, read_report(p)) for p in paths])
    except ReportError as e:
        _err(str(e))
        return EXIT_USAGE
    if junit is not None:
        write_junit(report, junit)
    sys.stdout.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return report["exit_code"]
