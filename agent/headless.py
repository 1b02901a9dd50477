"""`agent run`'s front end: one task, its events through a renderer, its result object (with where the work
landed and the --output-schema value), and the exit code. `execute` and `conclude` are shared with `agent batch`,
which drives many prepared runs at once."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ghostline.agent import events as ev
from ghostline.agent.landing import LandingRequest, head_commit, land
from ghostline.agent.output_schema import OutputSchema, SchemaCheckedRun
from ghostline.agent.plan import ACCEPT_MODE, PLAN_MODE
from ghostline.agent.providers.base import ConfigError
from ghostline.agent.render import exit_code_for, make_renderer
from ghostline.agent.report_ahead import ReportAhead, landed_paths
from ghostline.agent.runner import (
    PreparedRun,
    RunOptions,
    UsageError,
    attach_task_images,
    close_quietly,
    collect_result,
    expand_command,
    is_headless,
    prepare_run,
    record_result,
    terminal_approver,
)
from ghostline.agent.stdin_input import StdinError, task_with_stdin
from ghostline.tools import Approver

EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
_AUTHOR = re.compile(r"^[^<>]+ <[^<>@\s]+@[^<>\s]+>$")


def _err(msg: str) -> None:
    sys.stderr.write(f"agent: {msg}\n")
    sys.stderr.flush()


@dataclass
class Outcome:
    """How driving a run ended: its final event, whether it was cancelled, the --output-schema value."""

    final: ev.Event | None = None
    interrupted: bool = False
    structured: Any = None


def load_schema(path: Path | None) -> OutputSchema | None:
    """--output-schema FILE, read and checked before anything runs. Raises UsageError."""
    if path is None:
        return None
    try:
        return OutputSchema.load(path)
    except ValueError as e:
        raise UsageError(str(e)) from None


def landing_request(run: PreparedRun, opts: RunOptions) -> LandingRequest:
    """--commit/--patch as a LandingRequest (author from `[commit] author` in config). Raises UsageError."""
    if (opts.commit or opts.patch) and not run.is_git:
        flag = "--commit" if opts.commit else "--patch"
        raise UsageError(f"{flag} needs a git repository; {run.root} is not one")
    author = run.config.commit.get("author")
    if author is not None and not (isinstance(author, str) and _AUTHOR.match(author)):
        raise ConfigError(f'[commit] author in config must read "Name <email>" (got {author!r})')
    return LandingRequest(commit=opts.commit, patch=opts.patch, author=author)


async def execute(run: PreparedRun, task: str | None, schema: OutputSchema | None,
                  on_event: Callable[[ev.Event], None], ask: Approver | None = None) -> Outcome:
    """Start the run's servers, drive its loop (the final answer checked against `schema`), stop them. A
    cancellation (Ctrl-C) ends it as interrupted; the caller then `conclude`s."""
    outcome = Outcome()
    checked = SchemaCheckedRun(run.loop, schema)
    try:
        for line in await run.start(ask):
            _err(line)
        async for e in checked.events(task):
            run.observe(e)
            on_event(e)
            if isinstance(e, (ev.Done, ev.Failed)):
                outcome.final = e
    except asyncio.CancelledError:
        outcome.interrupted = True
    finally:
        await run.stop()
        await close_quietly(run.loop.provider)
    outcome.structured = checked.structured
    return outcome


def conclude(run: PreparedRun, outcome: Outcome, *, task: str | None, base: str | None,
             request: LandingRequest, schema: OutputSchema | None = None,
             ahead: ReportAhead | None = None) -> dict[str, Any]:
    """The result object, recorded in the session: the loop's outcome, what --output-schema parsed, and in a
    git repository where the work landed (branch, commit, patch, diffstat; agent/landing.py). `ahead`: what
    was counted while the model wrote its answer."""
    if outcome.interrupted:
        run.loop.mark_interrupted()
    result = collect_result(run, outcome.final, outcome.interrupted)
    if schema is not None:
        result["structured_result"] = outcome.structured
    if run.is_git:
        paths = landed_paths(result["files_changed"])
        result.update(land(run.root, base=base, paths=paths, request=request,
                           succeeded=result["subtype"] == "success", summary=result["result"], task=task or "",
                           session_id=run.session.id, counted=ahead.diffstat(paths) if ahead else None))
    record_result(run, result)
    return result


def run_task(opts: RunOptions) -> int:
    try:
        return _run_task(opts)
    except (UsageError, ConfigError, StdinError) as e:
        _err(str(e))
        return EXIT_USAGE


def _run_task(opts: RunOptions) -> int:
    headless = is_headless()
    opts = dataclasses.replace(opts, task=task_with_stdin(opts.task))
    if not opts.task and not (opts.resume or opts.cont):
        raise UsageError('give a task: agent run "what to do" (or --continue / --resume ID; `-` reads it from '
                         'stdin)')
    schema = load_schema(opts.output_schema)
    run = prepare_run(opts, headless=headless, approver=None if headless else terminal_approver())
    request = landing_request(run, opts)
    base = head_commit(run.root) if run.is_git else None
    task = expand_command(run, opts.task) if opts.task else opts.task
    attach_task_images(run, opts.images, task)
    renderer = make_renderer(opts.output_format, opts.verbose)
    rep = run.sandbox_report
    renderer.header(f"ghostline · {run.model_label} · {run.cwd} · sandbox {rep['mode']} ({rep['level']}) · "
                    f"approval {rep['approval']} · session {run.session.id}")
    renderer.handle(run.record_start())
    ahead = ReportAhead(run, base)

    def on_event(e: ev.Event) -> None:
        ahead.observe(e)
        renderer.handle(e)

    outcome = _drive(run, task, schema, on_event, None if headless else terminal_approver())
    if outcome.interrupted:
        _err("interrupted; the session is saved: agent run --resume " + run.session.id)
    result = conclude(run, outcome, task=opts.task, base=base, request=request, schema=schema, ahead=ahead)
    run.session.close()
    renderer.finish(result)
    return _exit_code(result, run)


def _drive(run: PreparedRun, task: str | None, schema: OutputSchema | None, on_event: Callable[[ev.Event], None],
           ask: Approver | None) -> Outcome:
    """`execute` in an event loop of its own; SIGINT/SIGTERM cancel it (the session is kept)."""
    outcome = Outcome(interrupted=True)

    async def main() -> None:
        nonlocal outcome
        job = asyncio.ensure_future(execute(run, task, schema, on_event, ask))
        lp = asyncio.get_running_loop()
        try:
            lp.add_signal_handler(signal.SIGINT, job.cancel)
            lp.add_signal_handler(signal.SIGTERM, job.cancel)
        except (NotImplementedError, RuntimeError):
            pass
        outcome = await job

    try:
        asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        outcome.interrupted = True
    return outcome


def _exit_code(result: dict[str, Any], run: PreparedRun) -> int:
    if result["subtype"] == "interrupted":
        return EXIT_INTERRUPTED
    if result.get("landing_error"):
        _err(f"the work did not land: {result['landing_error']}")
        if result["subtype"] == "success":
            return EXIT_FAILED
    if run.sandbox_report["approval"] == PLAN_MODE and result["subtype"] == "success":
        _err(f"plan mode: nothing was changed. To carry out the plan: agent run --resume {run.session.id} "
             f"--approval {ACCEPT_MODE} \"go ahead with the plan\"")
    return exit_code_for(result["subtype"])
