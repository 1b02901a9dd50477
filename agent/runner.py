"""Composes a run: config → model → tools, policy, compaction, checkpoints → the loop → a renderer → exit code."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ghostline.agent import events as ev
from ghostline.agent.config import Config, load_config
from ghostline.agent.instructions import load_instructions, system_prompt
from ghostline.agent.loop import AgentLoop, Budgets
from ghostline.agent.options import EXIT_USAGE, RunOptions, UsageError
from ghostline.agent.providers.base import ConfigError, Provider, TurnComplete
from ghostline.agent.render import exit_code_for, make_renderer, result_object
from ghostline.agent.session import Session, list_sessions, sessions_root
from ghostline.agent.verify import DEFAULT_VERIFY_ATTEMPTS, DEFAULT_VERIFY_TIMEOUT_S, Verification
from ghostline.compaction import CompactionConfig, Compactor
from ghostline.sandbox import CheckpointError, Checkpoints, Policy, create_worktree, detect_level
from ghostline.tools import (
    ApprovalAnswer,
    ApprovalRequest,
    Approver,
    BashTool,
    ToolContext,
    ToolRegistry,
    default_tools,
)

from ghostline.dirs import config_dir, data_dir, find_project_root

log = logging.getLogger(__name__)

EXIT_INTERRUPTED = 130


def _err(msg: str) -> None:
    sys.stderr.write(f"agent: {msg}\n")
    sys.stderr.flush()


def is_headless() -> bool:
    ci = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
    return ci or not sys.stdin.isatty()


def _open_session(opts: RunOptions, cwd: Path) -> Session | None:
    root = sessions_root(data_dir())
    if opts.resume:
        try:
            return Session.open(root, opts.resume)
        except FileNotFoundError:
            raise UsageError(f"no session {opts.resume!r}; `agent sessions` lists them") from None
    if opts.cont:
        found = list_sessions(root, cwd)
        if not found:
            raise UsageError(f"no earlier session in {cwd} to continue; start one with `agent run \"task\"`")
        return Session.open(root, found[0].id)
    return None


def _make_summarizer(provider: Provider, max_output_tokens: int):
    async def summarize(messages: list[Any], system: str = "") -> str:
        text = ""
        async for item in provider.stream_turn(system or "You summarise coding sessions precisely.", messages, [],
                                               max_output_tokens):
            if isinstance(item, TurnComplete):
                text = item.message.text
        return text

    return summarize


def terminal_approver() -> Approver:
    """Asks on the terminal: y allows once, a allows and remembers the suggested rule, anything else denies (a
    typed sentence goes to the model as the reason)."""

    async def approve(request: ApprovalRequest) -> ApprovalAnswer:
        prompt = (f"\nallow {request.title}? ({request.reason}) [y]es / [a]lways `{request.suggested_rule}` / "
                  f"[N]o (or type why not) ")

        def ask() -> str:
            sys.stderr.write(prompt)
            sys.stderr.flush()
            try:
                return sys.stdin.readline().strip()
            except (EOFError, OSError):
                return ""

        answer = await asyncio.to_thread(ask)
        if answer.lower() in ("a", "always"):
            return ApprovalAnswer(True, always=True)
        if answer.lower() in ("y", "yes"):
            return ApprovalAnswer(True)
        return ApprovalAnswer.deny("" if answer.lower() in ("", "n", "no") else answer)

    return approve


def _git_status_files(root: Path) -> dict[str, str]:
    """Changed/untracked files with a content hash, to report changes made by shell commands too."""
    import hashlib
    import subprocess

    try:
        out = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "-z", "--untracked-files=all"],
                             capture_output=True, timeout=30, check=True).stdout.decode(errors="replace")
    except (OSError, subprocess.SubprocessError):
        return {}
    files: dict[str, str] = {}
    entries = out.split("\0")
    i = 0
    while i < len(entries):
        e = entries[i]
        i += 1
        if len(e) < 4:
            continue
        status, path = e[:2], e[3:]
        if status[0] in "RC":
            i += 1  # the rename source follows
        p = root / path
        try:
            files[path] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "deleted"
        except OSError:
            files[path] = "unreadable"
    return files


def run_task(opts: RunOptions) -> int:
    try:
        return _run_task(opts)
    except (UsageError, ConfigError) as e:
        _err(str(e))
        return EXIT_USAGE


@dataclass
class PreparedRun:
    """Everything a front end needs to drive a run: the loop, its session, and what the header shows."""

    loop: Any
    session: Session
    cwd: Path
    root: Path
    is_git: bool
    model_label: str
    sandbox_report: dict[str, Any]
    changed_before: dict[str, str]
    started: float
    config: Config
    base_url: str | None = None
    instructions: str = ""
    resumed: bool = False
    _start_recorded: bool = False

    def record_start(self) -> ev.SessionStarted:
        """The run's first event in the session (also what makes a new session's file appear)."""
        rep = self.sandbox_report
        start = ev.SessionStarted(self.session.id, self.model_label, str(self.cwd), rep["mode"], rep["approval"],
                                  rep["level"], resumed=self.resumed)
        if not self._start_recorded:
            self._start_recorded = True
            self.session.append(start.to_dict())
        return start


def switch_model(run: PreparedRun, spec: str) -> Provider:
    """/model: the next turns go to `spec`. Returns the provider it replaced (the caller closes it).
    Raises ConfigError for an unknown provider or a missing key, leaving the run as it was."""
    from ghostline.agent.models import cost_usd, make_provider, model_info

    provider = make_provider(spec, base_url=run.base_url, overrides=run.config.models,
                             retry=_retry_policy(run.config.retry))
    info = model_info(spec, run.config.models)
    old = run.loop.provider
    run.loop.set_provider(provider, cost_of=lambda u: cost_usd(u, info),
                          max_output_tokens=min(run.config.max_output_tokens, info.max_output_tokens))
    run.model_label = provider_label(spec)
    run.session.append({"type": "model_changed", "model": spec})
    return old


def _verification(opts: RunOptions) -> Any:
    """--verify and its companions → a loop.Verification (None without --verify). Raises UsageError."""
    if opts.verify is None:
        for flag, value in (("--verify-attempts", opts.verify_attempts), ("--verify-timeout", opts.verify_timeout)):
            if value is not None:
                raise UsageError(f"{flag} needs --verify CMD")
        return None
    if not opts.verify.strip():
        raise UsageError('--verify needs a command, e.g. --verify "pytest -q" (got an empty one)')
    attempts = DEFAULT_VERIFY_ATTEMPTS if opts.verify_attempts is None else opts.verify_attempts
    if attempts < 0:
        raise UsageError(f"--verify-attempts must be 0 or more (extra attempts after a failure); got {attempts}")
    timeout = DEFAULT_VERIFY_TIMEOUT_S if opts.verify_timeout is None else opts.verify_timeout
    if not timeout > 0:  # also refuses NaN
        raise UsageError(f"--verify-timeout must be a positive number of seconds; got {timeout:g}")
    return Verification(opts.verify, attempts, float(timeout))


def _check_verify_policy(cfg: Config, verification: Any, *, cwd: Path, mode: str, approval: str) -> None:
    """The verification command passes the same policy as the bash tool. The user typed it, so an "ask" counts as
    approved; a deny rule (or a mode that cannot run it) stops the run before any model call."""
    if verification is None:
        return
    root = find_project_root(cwd)
    decision = _make_policy(cfg, root).evaluate(BashTool().action({"command": verification.command}), mode=mode,
                                                approval=approval, workspace=root, cwd=cwd)
    if decision.action == "deny":
        raise UsageError(f"--verify command refused by the sandbox policy: {decision.reason}")


def prepare_run(opts: RunOptions, *, headless: bool, approver: Approver | None = None) -> PreparedRun:
    """Config → model → tools, policy, compaction, checkpoints → a ready AgentLoop. Raises UsageError/ConfigError."""
    started = time.monotonic()
    verification = _verification(opts)
    cwd = (opts.cwd or Path.cwd()).expanduser()
    if not cwd.is_dir():
        raise UsageError(f"working directory {cwd} does not exist")
    cwd = cwd.resolve()
    cfg: Config = load_config(cwd)
    for w in cfg.warnings:
        _err(f"warning: {w}")
    session = _open_session(opts, cwd)
    if session is not None and session.meta().get("cwd"):
        cwd = Path(session.meta()["cwd"])
    approval = opts.approval or cfg.approval or ("auto" if headless else "ask")
    sandbox_mode = opts.sandbox or cfg.sandbox
    network = opts.network if opts.network is not None else (cfg.network or sandbox_mode == "full-access")
    model_spec = opts.model or cfg.model or (session.current_model() if session else None)

    from ghostline.agent.models import cost_usd, make_provider, model_info

    provider = make_provider(model_spec, base_url=opts.base_url or cfg.base_url, overrides=cfg.models,
                             retry=_retry_policy(cfg.retry))
    info = model_info(model_spec, cfg.models)
    _check_verify_policy(cfg, verification, cwd=cwd, mode=sandbox_mode, approval=approval)

    worktree_note = None
    if opts.worktree is not None:
        root = find_project_root(cwd)
        if not (root / ".git").exists():
            raise UsageError(f"--worktree needs a git repository; {cwd} is not in one")
        try:
            wt_path, branch = create_worktree(root, opts.worktree or None)
        except Exception as e:  # git refuses: name taken, dirty state it cannot handle...
            raise UsageError(f"cannot create a worktree: {e}") from None
        cwd = Path(wt_path).resolve()
        worktree_note = {"path": str(cwd), "branch": branch}
        _err(f"worktree: {cwd} (branch {branch})")

    root = find_project_root(cwd)
    is_git = (root / ".git").exists()
    if session is None:
        session = Session.create(sessions_root(data_dir()), cwd=cwd, model=provider_label(model_spec))
    messages = session.transcript()

    instructions = load_instructions(root, cwd, config_dir())
    system = system_prompt(root=root, cwd=cwd, instructions=instructions, sandbox=sandbox_mode, is_git=is_git)
    sandbox_report: dict[str, Any] = {"mode": sandbox_mode, "approval": approval, "network": network,
                                      "level": _sandbox_level(sandbox_mode)}
    if worktree_note:
        sandbox_report["worktree"] = worktree_note

    max_output = min(cfg.max_output_tokens, info.max_output_tokens)
    ctx = ToolContext(workspace=root, cwd=cwd, sandbox_mode=sandbox_mode, approval=approval, network=network,
                      output_dir=session.output_dir, on_file_changed=_notify_index)
    registry = ToolRegistry(default_tools(), policy=_make_policy(cfg, root), approver=approver, project_root=root)
    loop = AgentLoop(
        provider=provider, registry=registry, ctx=ctx, system=system, session=session, messages=messages,
        budgets=Budgets(opts.max_turns or cfg.max_turns, opts.max_tokens or cfg.max_tokens,
                        opts.max_cost if opts.max_cost is not None else cfg.max_cost),
        compactor=_make_compactor(cfg, info, session, provider, instructions, max_output, registry),
        checkpoints=_make_checkpoints(root, session.id),
        cost_of=lambda u: cost_usd(u, info), max_output_tokens=max_output, verification=verification,
    )
    return PreparedRun(loop=loop, session=session, cwd=cwd, root=root, is_git=is_git,
                       model_label=provider_label(model_spec), sandbox_report=sandbox_report,
                       changed_before=_git_status_files(root) if is_git else {}, started=started, config=cfg,
                       base_url=opts.base_url or cfg.base_url, instructions=instructions,
                       resumed=bool(opts.resume or opts.cont))


def finish_run(run: PreparedRun, final: ev.Event | None, interrupted: bool) -> dict[str, Any]:
    """The result object (also appended to the session). Adds files changed by shell commands (git status)."""
    stats = run.loop.stats
    changed = [os.path.normpath(p) for p in stats.files_changed]
    if run.is_git:
        for path, digest in _git_status_files(run.root).items():
            full = os.path.normpath(str(run.root / path))
            if run.changed_before.get(path) != digest and full not in changed:
                changed.append(full)
    # Reported relative to the workspace root (stable whatever the cwd); absolute when outside it.
    stats.files_changed = [os.path.relpath(p, run.root) if Path(p).is_relative_to(run.root) else p
                           for p in changed]
    result = result_object(final=final, session_id=run.session.id, stats=stats,
                           duration_ms=int((time.monotonic() - run.started) * 1000), sandbox=run.sandbox_report,
                           interrupted=interrupted, verification=run.loop.verification_report())
    run.session.append({"type": "result", **result})
    return result


def _run_task(opts: RunOptions) -> int:
    headless = is_headless()
    if not opts.task and not (opts.resume or opts.cont):
        raise UsageError('give a task: agent run "what to do" (or --continue / --resume ID)')
    run = prepare_run(opts, headless=headless, approver=None if headless else terminal_approver())
    session, loop = run.session, run.loop
    renderer = make_renderer(opts.output_format, opts.verbose)
    rep = run.sandbox_report
    renderer.header(f"ghostline · {run.model_label} · {run.cwd} · sandbox {rep['mode']} ({rep['level']}) · "
                    f"approval {rep['approval']} · session {session.id}")
    renderer.handle(run.record_start())

    final: ev.Event | None = None
    interrupted = False

    async def drive() -> None:
        nonlocal final
        async for e in loop.run(opts.task):
            renderer.handle(e)
            if isinstance(e, (ev.Done, ev.Failed)):
                final = e

    async def main() -> None:
        nonlocal interrupted
        task = asyncio.ensure_future(drive())
        lp = asyncio.get_running_loop()
        try:
            lp.add_signal_handler(signal.SIGINT, task.cancel)
            lp.add_signal_handler(signal.SIGTERM, task.cancel)
        except (NotImplementedError, RuntimeError):
            pass
        try:
            await task
        except asyncio.CancelledError:
            interrupted = True
        finally:
            await close_quietly(loop.provider)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        interrupted = True
    if interrupted:
        loop.settle_interrupted()
        session.append({"type": "interrupted"})
        _err("interrupted; the session is saved: agent run --resume " + session.id)
    result = finish_run(run, final, interrupted)
    session.close()
    renderer.finish(result)
    return EXIT_INTERRUPTED if interrupted else exit_code_for(result["subtype"])


def _notify_index(path: Path) -> None:
    """The search index re-reads a file the agent changed before the next query."""
    from ghostline.tools.search import notify_file_changed

    notify_file_changed(path)


async def close_quietly(provider: Any) -> None:
    """Close the SDK client inside the event loop (else its finaliser complains after the loop is gone)."""
    aclose = getattr(provider, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:
            pass


def _retry_policy(settings: dict[str, Any]) -> Any:
    if not settings:
        return None
    from ghostline.agent.providers.retry import RetryPolicy

    known = {"max_attempts", "base_delay", "max_delay", "max_retry_after", "jitter"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(f"unknown [retry] setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return RetryPolicy(**settings)


def provider_label(spec: str | None) -> str:
    return spec or "(no model)"


def _sandbox_level(mode: str) -> str:
    if mode == "full-access":
        return "none (full-access)"
    try:
        return detect_level()
    except Exception:
        return "none"


def _make_policy(cfg: Config, root: Path) -> Policy:
    try:
        return Policy.from_config(cfg.permissions, workspace=root)
    except ValueError as e:
        raise ConfigError(f"[permissions] in config: {e}") from None


def _make_compactor(cfg: Config, info: Any, session: Session, provider: Provider, instructions: str,
                    reserved_output: int, registry: ToolRegistry) -> Compactor:
    try:
        ccfg = CompactionConfig.from_dict(cfg.compaction) if cfg.compaction else CompactionConfig()
    except ValueError as e:
        raise ConfigError(f"[compaction] in config: {e}") from None
    return Compactor(ccfg, window=info.context_window, reserved_output=reserved_output,
                     store_dir=session.dir, summarize=_make_summarizer(provider, 4096),
                     instructions=instructions, provider=provider.name, kind_of=registry.kind_of)


def _make_checkpoints(root: Path, session_id: str) -> Checkpoints | None:
    try:
        return Checkpoints(root, session=session_id)
    except CheckpointError as e:  # no git here: the run goes on, without undo
        log.debug("no checkpoints for %s: %s", root, e)
        return None


def list_sessions_command(*, all_dirs: bool, limit: int, as_json: bool) -> int:
    infos = list_sessions(sessions_root(data_dir()), None if all_dirs else Path.cwd().resolve())[:limit]
    if as_json:
        print(json.dumps([{"id": i.id, "cwd": i.cwd, "model": i.model, "created": i.created, "task": i.task,
                           "status": i.status} for i in infos], indent=2))
        return 0
    if not infos:
        print("no sessions" + ("" if all_dirs else " in this directory (try --all)"))
        return 0
    for i in infos:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(i.created))
        task = " ".join(i.task.split())
        task = task if len(task) <= 60 else task[:59] + "…"
        print(f"{i.id}  {when}  {i.status:<22} {i.model:<30} {task}")
    return 0
