"""Running a planned batch: up to `--parallel` jobs at once, each a headless run (its own worktree, session,
loop and sandboxed commands) driven as a task of this process's event loop.

In-process rather than one `agent run` process per job: a job then costs its worktree and session (tens of
milliseconds) instead of a Python start and the SDK imports (about a second of CPU each, which on a small CI
machine is most of a short job); bench/batch_bench.py measures both. Each job's commands still run sandboxed in
their own process group and cgroup. Ctrl-C (SIGINT/SIGTERM) cancels every running job like Ctrl-C cancels
`agent run` (sessions saved, status `interrupted`); jobs not started yet are `not_run`. --max-cost-total stops
the same way, the running jobs ending as `error_budget`.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from typing import Any

from ghostline.agent import events as ev
from ghostline.agent.batch.plan import BatchOptions, BatchPlan, JobPlan
from ghostline.agent.batch.progress import Progress
from ghostline.agent.batch.report import (
    NOT_RUN,
    STOPPED_COST,
    STOPPED_INTERRUPTED,
    build_report,
    job_entry,
    write_report,
)
from ghostline.agent.batch.workspace import Place, create, remove
from ghostline.agent.headless import Outcome, conclude, execute, landing_request
from ghostline.agent.options import RunOptions, UsageError
from ghostline.agent.output_schema import OutputSchema
from ghostline.agent.providers.base import ConfigError
from ghostline.agent.report_ahead import ReportAhead
from ghostline.agent.runner import PreparedRun, close_quietly, prepare_run
from ghostline.sandbox import CheckpointError

# An interrupted job goes on in its session with this message (the task again: the job may have been stopped
# before its first message was sent).
CONTINUE = ("The run was interrupted before it finished. Carry on with the task from where it stopped (look at "
            "the files as they are now first). The task:\n\n{task}")


def _err(msg: str) -> None:
    sys.stderr.write(f"agent: {msg}\n")
    sys.stderr.flush()


class Batch:
    """One batch run: the slots, the jobs' live costs, and why it stopped early (if it did)."""

    def __init__(self, opts: BatchOptions, plan: BatchPlan, schema: OutputSchema | None, progress: Progress):
        self.opts = opts
        self.plan = plan
        self.schema = schema
        self.progress = progress
        self.entries: dict[str, dict[str, Any]] = {e["id"]: e for e in plan.carried}
        self.stopped_by: str | None = None
        self._running: dict[str, asyncio.Future[Outcome]] = {}
        self._costs: dict[str, float] = {}
        self._cost_unknown_said = False
        self._started = time.monotonic()

    # -- the batch ----------------------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        handled = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._interrupted, loop, sig)
                handled.append(sig)
            except (NotImplementedError, RuntimeError):
                pass
        slots = asyncio.Semaphore(self.opts.parallel)
        try:
            await asyncio.gather(*(self._slot(p, slots) for p in self.plan.plans))
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)
        return self.report()

    def _interrupted(self, loop: asyncio.AbstractEventLoop, sig: int) -> None:
        """Ctrl-C: stop cleanly. The handler goes, so a second Ctrl-C stops at once (the report then says what
        was known)."""
        self.stop(STOPPED_INTERRUPTED)
        loop.remove_signal_handler(sig)

    def report(self) -> dict[str, Any]:
        return build_report(self.plan.jobs_file, list(self.entries.values()), shard=self.plan.shard,
                            stopped_by=self.stopped_by, duration_ms=int((time.monotonic() - self._started) * 1000),
                            max_cost_total=self.opts.max_cost_total)

    def stop(self, why: str) -> None:
        """Ctrl-C, or --max-cost-total reached: running jobs are cancelled, queued ones will not start."""
        if self.stopped_by is None:
            self.stopped_by = why
        for job in self._running.values():
            job.cancel()

    async def _slot(self, plan: JobPlan, slots: asyncio.Semaphore) -> None:
        async with slots:
            if self.stopped_by is None:
                began = time.monotonic()
                entry = await self._run_job(plan)
                entry["elapsed_ms"] = int((time.monotonic() - began) * 1000)  # worktree to landed, all of it
            elif plan.continue_session and plan.previous:  # keep what lets a later --resume go on with it
                entry = plan.previous
            else:
                entry = job_entry(plan.job, None, status=NOT_RUN, model=plan.job.model or self.opts.run.model,
                                  error="the batch stopped before this job started")
        self.entries[plan.job.id] = entry
        self.progress.finished(entry)
        write_report(self.report(), self.opts.report)  # a batch killed outright leaves a report to --resume

    # -- one job ------------------------------------------------------------------------------------------

    def _options(self, plan: JobPlan, place: Place) -> RunOptions:
        base, job = self.opts.run, plan.job
        patch = self.opts.patch_dir / f"{job.id}.patch" if self.opts.patch_dir else None
        verify = job.verify or base.verify
        return RunOptions(**{
            **base.__dict__, "task": job.task, "model": job.model or base.model, "cwd": place.cwd,
            "max_turns": job.max_turns or base.max_turns,
            "max_cost": job.max_cost if job.max_cost is not None else base.max_cost,
            "verify": verify, "verify_attempts": base.verify_attempts if verify else None,
            "verify_timeout": base.verify_timeout if verify else None, "resume": plan.continue_session,
            "cont": False, "worktree": None,
            "branch": None, "commit": self.opts.commit, "patch": patch})

    def _place(self, plan: JobPlan) -> Place:
        if plan.continue_session:
            return plan.place
        if plan.replace:
            remove(plan.place)
        return create(plan.place)

    async def _run_job(self, plan: JobPlan) -> dict[str, Any]:
        job, worktree = plan.job, None
        try:
            place = await asyncio.to_thread(self._place, plan)
            worktree = str(place.worktree)
            opts = self._options(plan, place)
            run = prepare_run(opts, headless=True)
            request = landing_request(run, opts)
        except (UsageError, ConfigError, CheckpointError) as e:
            return job_entry(job, None, status="error_during_execution", model=job.model or self.opts.run.model,
                             worktree=worktree, error=str(e))
        run.record_start()
        self.progress.started(job.id, {"branch": place.branch, "worktree": worktree, "session_id": run.session.id})
        ahead = ReportAhead(run, place.base)
        outcome = await self._execute(job.id, run, CONTINUE.format(task=job.task) if plan.continue_session
                                      else job.task, ahead)
        result = await asyncio.to_thread(conclude, run, outcome, task=job.task, base=place.base, request=request,
                                         schema=self.schema, ahead=ahead)
        run.release()
        status, note = result["subtype"], None
        if outcome.interrupted and self.stopped_by == STOPPED_COST:
            status = "error_budget"
            note = f"stopped: the batch reached --max-cost-total (${self.opts.max_cost_total:g})"
        return job_entry(job, result, status=status, model=run.model_label, worktree=worktree,
                         base_commit=place.base, error=note)

    async def _execute(self, job_id: str, run: PreparedRun, task: str, ahead: ReportAhead) -> Outcome:
        if self.stopped_by is not None:  # stopped while this job was being set up
            await close_quietly(run.loop.provider)
            return Outcome(interrupted=True)
        def on_event(e: ev.Event) -> None:
            ahead.observe(e)
            self._on_event(job_id, e)

        future = asyncio.ensure_future(execute(run, task, self.schema, on_event))
        self._running[job_id] = future
        try:
            return await future
        except asyncio.CancelledError:  # cancelled before it began: nothing to stop but the client
            await close_quietly(run.loop.provider)
            return Outcome(interrupted=True)
        finally:
            self._running.pop(job_id, None)

    def _on_event(self, job_id: str, e: ev.Event) -> None:
        if isinstance(e, ev.TurnStarted):
            self.progress.turn(job_id, e.turn, self._costs.get(job_id))
        elif isinstance(ev.innermost(e), ev.Usage):  # a subagent's cost counts in its parent's run total
            self._count_cost(job_id, ev.innermost(e).cost_usd)  # type: ignore[attr-defined]

    def _count_cost(self, job_id: str, cost: float | None) -> None:
        cap = self.opts.max_cost_total
        if cost is None:
            if cap is not None and not self._cost_unknown_said:
                self._cost_unknown_said = True
                _err(f"warning: job {job_id}: the model's price is unknown, so --max-cost-total cannot count it")
            return
        self._costs[job_id] = cost  # the run's total so far
        if cap is not None and sum(self._costs.values()) >= cap and self.stopped_by is None:
            _err(f"the batch reached --max-cost-total (${cap:g}): stopping its jobs")
            self.stop(STOPPED_COST)
