"""Composes a run: config → model → tools, policy, compaction, checkpoints → the loop → a renderer → exit code."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ghostline.agent import events as ev
from ghostline.agent.agent_types import load_agent_types, subagent_model
from ghostline.agent.attachments import attach_images
from ghostline.agent.config import Config, load_config
from ghostline.agent.custom_commands import CustomCommand, load_commands, parse_invocation
from ghostline.agent.hooks import Hooks, report_event
from ghostline.agent.instructions import (
    EDIT_RULES,
    TOOL_RULES,
    load_instructions,
    system_prompt,
    with_edit_rules,
)
from ghostline.agent.landing import LandingError, is_work_tree, start_branch
from ghostline.agent.later import Later
from ghostline.agent.loop import AgentLoop, Budgets
from ghostline.agent.mcp_config import load_servers
from ghostline.agent.mcp_session import McpSession
from ghostline.agent.mentions import expand_mentions
from ghostline.agent.options import RunOptions, UsageError
from ghostline.agent.providers.base import ConfigError, Provider, TurnComplete
from ghostline.agent.providers.sdk_import import wait_for_background_imports
from ghostline.agent.render import result_object
from ghostline.agent.scope import MessageScope, ModelSwitch
from ghostline.agent.session import Session, list_sessions, sessions_root
from ghostline.agent.subagents import ChildModel, SubagentSetup, TaskTool, parent_model
from ghostline.agent.verify import DEFAULT_VERIFY_ATTEMPTS, DEFAULT_VERIFY_TIMEOUT_S, Verification
from ghostline.compaction import CompactionConfig, Compactor
from ghostline.dirs import config_dir, data_dir, find_project_root
from ghostline.sandbox import CheckpointError, Checkpoints, Policy, create_worktree, detect_level
from ghostline.sandbox.rules import Rule
from ghostline.sandbox.store import is_trusted
from ghostline.tools import (
    ApprovalAnswer,
    ApprovalRequest,
    Approver,
    BashTool,
    ToolContext,
    ToolRegistry,
    default_tools,
    edit_tool,
)
from ghostline.tools.mcp import ServerSpec
from ghostline.tools.scope import ToolScope
from ghostline.tools.skill import Skill, SkillTool, discover_skills, skill_dirs

log = logging.getLogger(__name__)


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
    """Files git reports as changed or untracked, each with a cheap signature (size and mtime, never the content:
    an untracked 18k-file tree must not be read twice a run), to report changes made by shell commands too."""
    try:
        out = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "-z", "--untracked-files=all"],
                             capture_output=True, timeout=30, check=True).stdout.decode(errors="replace")
    except (OSError, subprocess.SubprocessError):
        return {}
    files: dict[str, str] = {}
    entries = iter(out.split("\0"))
    for e in entries:
        if len(e) < 4:
            continue
        if e[0] in "RC":
            next(entries, None)  # the rename source follows
        path = e[3:]
        try:
            st = os.lstat(root / path)
            files[path] = f"{st.st_size}:{st.st_mtime_ns}"
        except FileNotFoundError:
            files[path] = "deleted"
        except OSError:
            files[path] = "unreadable"
    return files


def _status_at_start(root: Path, is_git: bool, checkpoints: Checkpoints | None) -> Later | None:
    """The git status before the run, for a report without checkpoints to compare with; None when the
    checkpoint store tells instead (on an untracked 18k-file tree the status costs ~0.1 s of CPU)."""
    if is_git and (checkpoints is None or checkpoints.notice is not None):
        return Later(_git_status_files, root)
    return None


# Tool kinds whose calls change no file they do not report (reads nothing, edits their `files_changed`).
SELF_REPORTING_KINDS = ("read", "edit")


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
    changed_before: Later | None  # _git_status_files while the run starts; None: the checkpoints tell
    started: float
    config: Config
    base_url: str | None = None
    instructions: str = ""
    resumed: bool = False
    mcp: McpSession | None = None
    hooks: Hooks | None = None
    _start_recorded: bool = False
    _status_now: Later | None = None  # git status taken while the model thinks: files are quiet then
    _files_moved: bool = False  # something that may change files it does not report ran since that status

    def observe(self, e: ev.Event) -> None:
        """Follow the run's events so the report at the end costs nothing after the last answer. Reads change
        nothing and edits report their own files; only what may change others (a command, a subagent, a
        verification) calls for a `git status`, taken once while the next model call runs (nothing changes the
        files then) and dropped again if something may change them before the run ends. Only without
        checkpoints: with them, the report reads the checkpoint store."""
        if self.changed_before is None:
            return
        if isinstance(e, ev.ToolCall) and e.kind not in SELF_REPORTING_KINDS or \
                isinstance(e, (ev.ShellRun, ev.VerificationStarted)):
            self._files_moved, self._status_now = True, None
        elif isinstance(e, ev.TurnStarted) and self._files_moved:
            self._files_moved, self._status_now = False, Later(_git_status_files, self.root)

    def changed_by_run(self) -> list[str]:
        """Files the run changed beyond what its tools reported: from the checkpoint store (what differs from the
        run's first checkpoint: a stat of each file, as a snapshot does) when one was taken; else by comparing
        git status with the one taken at the start."""
        checkpoints, first = self.loop.checkpoints, self.loop.first_checkpoint
        moved = checkpoints.changed_since(first) if checkpoints is not None and first is not None else None
        if moved is not None:
            return [os.path.normpath(p) for p in moved]
        if self.changed_before is None:
            return []
        before = self.changed_before.get()
        if self._files_moved:
            after = _git_status_files(self.root)
        else:
            after = self._status_now.get() if self._status_now is not None else before
        return [os.path.normpath(self.root / path) for path, digest in after.items() if before.get(path) != digest]

    async def start(self, ask: Approver | None = None, extra_servers: Sequence[ServerSpec] = ()) -> list[str]:
        """Start the session's MCP servers (in parallel, each within its startup timeout) before the first turn;
        one line per server left out or failed. `ask` approves a project's servers in an untrusted directory
        (None: they stay off); `extra_servers`: servers an editor passed (ACP)."""
        if self.mcp is None:
            return []
        return await self.mcp.start(ask, extra_servers)

    def lend_editor(self, files: Any = None, run_command: Any = None) -> None:
        """An editor hosting the session (ACP) keeps the files (`files`: tools.base.FileAccess) and/or runs
        commands in its terminal (`run_command`). Its terminal confines nothing, so the policy is told there is
        no OS sandbox: commands that may write are then asked about."""
        ctx = self.loop.ctx
        ctx.files = files
        if run_command is not None:
            ctx.run_command = run_command
            policy = self.loop.registry.policy
            if isinstance(policy, Policy):
                policy.level = "none"
            self.sandbox_report["level"] = "none (editor terminal)"

    @property
    def has_servers(self) -> bool:
        """Whether `start` has anything to start (or to say about the configuration)."""
        return self.mcp is not None and bool(self.mcp.servers.specs or self.mcp.servers.problems)

    async def stop(self) -> None:
        """Stop the MCP servers (every front end awaits this when the session ends)."""
        if self.mcp is not None:
            await self.mcp.stop()

    def release(self) -> None:
        """The run is over and its process goes on (`agent batch`): close its session file and the checkpoints'
        watch on the tree (an inotify descriptor each, of the user's 128)."""
        self.session.close()
        if self.loop.checkpoints is not None:
            self.loop.checkpoints.close()

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
    from ghostline.agent.models import cost_usd, image_limits, make_provider, model_info

    provider = make_provider(spec, base_url=run.base_url, overrides=run.config.models,
                             retry=_retry_policy(run.config.retry))
    info = model_info(spec, run.config.models)
    run.loop.ctx.images = image_limits(info)
    _use_edit_tool(run.loop, info.edit_tool)
    old = run.loop.provider
    run.loop.set_provider(provider, cost_of=lambda u: cost_usd(u, info),
                          max_output_tokens=min(run.config.max_output_tokens, info.max_output_tokens))
    run.model_label = provider_label(spec)
    run.session.append({"type": "model_changed", "model": spec})
    return old


def _use_edit_tool(loop: AgentLoop, name: str) -> None:
    """After a model switch: the edit tool the new model knows best, in the old one's place, and the system
    prompt's rules for it."""
    current = next((t for t in loop.registry.tools if t.name in EDIT_RULES), None)
    if current is None or current.name == name:
        return
    loop.registry.replace(current.name, edit_tool(name))
    loop.base_system = with_edit_rules(loop.base_system, [t.name for t in loop.registry.tools])
    loop.set_approval_mode(loop.ctx.approval)  # rebuilds the system prompt from the base


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
    _add_cli_rules(cfg, opts)
    session = _open_session(opts, cwd)
    if session is not None and session.meta().get("cwd"):
        cwd = Path(session.meta()["cwd"])
    approval = opts.approval or cfg.approval or ("auto" if headless else "ask")
    sandbox_mode = opts.sandbox or cfg.sandbox
    network = opts.network if opts.network is not None else (cfg.network or sandbox_mode == "full-access")
    model_spec = opts.model or cfg.model or (session.current_model() if session else None)

    from ghostline.agent.models import cost_usd, image_limits, make_provider, model_info

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
            wt_path, branch = create_worktree(root, opts.worktree or None, branch=opts.branch)
        except Exception as e:  # git refuses: name taken, dirty state it cannot handle...
            raise UsageError(f"cannot create a worktree: {e}") from None
        cwd = Path(wt_path).resolve()
        worktree_note = {"path": str(cwd), "branch": branch}
        _err(f"worktree: {cwd} (branch {branch})")

    elif opts.branch:
        _start_branch(cwd, opts.branch)

    root = find_project_root(cwd)
    is_git = (root / ".git").exists()
    if session is None:
        session = Session.create(sessions_root(data_dir()), cwd=cwd, model=provider_label(model_spec))
    messages = session.transcript()

    instructions = load_instructions(root, cwd, config_dir())
    skills = _load_skills(root)
    system = system_prompt(root=root, cwd=cwd, instructions=instructions, sandbox=sandbox_mode, is_git=is_git,
                           skills=[(s.name, s.description) for s in skills])
    sandbox_report: dict[str, Any] = {"mode": sandbox_mode, "approval": approval, "network": network,
                                      "level": _sandbox_level(sandbox_mode)}
    if worktree_note:
        sandbox_report["worktree"] = worktree_note

    max_output = min(cfg.max_output_tokens, info.max_output_tokens)
    ctx = ToolContext(workspace=root, cwd=cwd, sandbox_mode=sandbox_mode, approval=approval, network=network,
                      output_dir=session.output_dir, on_file_changed=_notify_index, images=image_limits(info))
    hooks = Hooks(cfg.hooks, session_id=session.id, transcript_path=session.path, project_dir=root) \
        if cfg.hooks else None
    registry = _make_registry(cfg, root, approver, hooks, skills, info.edit_tool)
    system = with_edit_rules(system, [t.name for t in registry.tools])
    loop = AgentLoop(
        provider=provider, registry=registry, ctx=ctx, system=system, session=session, messages=messages,
        budgets=Budgets(opts.max_turns or cfg.max_turns, opts.max_tokens or cfg.max_tokens,
                        opts.max_cost if opts.max_cost is not None else cfg.max_cost),
        compactor=_make_compactor(cfg, info, session.dir, provider, instructions, max_output, registry),
        checkpoints=_make_checkpoints(root, session.id),
        cost_of=lambda u: cost_usd(u, info), max_output_tokens=max_output, verification=verification, hooks=hooks,
    )
    mcp = McpSession(load_servers(root), registry, root, trusted=is_trusted(root),
                     log_dir=data_dir() / "logs" / "mcp")
    registry.add(TaskTool(loop, _subagent_setup(cfg, root=root, cwd=cwd, session=session, instructions=instructions,
                                                sandbox=sandbox_mode, is_git=is_git, tools=registry.tools,
                                                base_url=opts.base_url or cfg.base_url)))
    return PreparedRun(loop=loop, session=session, cwd=cwd, root=root, is_git=is_git,
                       model_label=provider_label(model_spec), sandbox_report=sandbox_report,
                       changed_before=_status_at_start(root, is_git, loop.checkpoints), started=started, config=cfg,
                       base_url=opts.base_url or cfg.base_url, instructions=instructions,
                       resumed=bool(opts.resume or opts.cont), mcp=mcp, hooks=hooks)


def finish_run(run: PreparedRun, final: ev.Event | None, interrupted: bool) -> dict[str, Any]:
    """The result object (also appended to the session), with the files shell commands changed too."""
    result = collect_result(run, final, interrupted)
    record_result(run, result)
    return result


def record_result(run: PreparedRun, result: dict[str, Any]) -> None:
    """The result object as the session's last record (`agent sessions` reads the outcome from it)."""
    run.session.append({"type": "result", **result})


def collect_result(run: PreparedRun, final: ev.Event | None, interrupted: bool) -> dict[str, Any]:
    """The result object, not yet recorded (a front end may add to it: where the work landed, ...); runs the
    SessionEnd hooks."""
    stats = run.loop.stats
    stats.files_changed = report_paths(run.root, stats.files_changed, run.changed_by_run())
    if run.hooks is not None:
        for report in run.hooks.session_ended("other", run.loop.ctx):
            run.session.append(report_event(report).to_dict())
    return result_object(final=final, session_id=run.session.id, stats=stats,
                         duration_ms=int((time.monotonic() - run.started) * 1000), sandbox=run.sandbox_report,
                         interrupted=interrupted, verification=run.loop.verification_report())


def report_paths(root: Path, tool_paths: Sequence[str], moved: Sequence[str]) -> list[str]:
    """The report's `files_changed`: what the tools said they changed, then what else changed (`moved`);
    relative to the workspace root (stable whatever the cwd), absolute when outside it."""
    changed = [os.path.normpath(p) for p in tool_paths]
    changed += [p for p in moved if p not in changed]
    return [os.path.relpath(p, root) if Path(p).is_relative_to(root) else p for p in changed]


def attach_task_images(run: PreparedRun, paths: Sequence[Path], task: str | None) -> None:
    """--image FILE: checked against the model's limits (UsageError: the first problem), sent with the task."""
    if paths and not task:
        raise UsageError('--image goes with a task to send it with: agent run "what is wrong here?" --image shot.png')
    images, problems = attach_images(paths, run.loop.ctx.images, run.session.output_dir, model=run.model_label,
                                     cwd=run.cwd)
    if problems:
        raise UsageError(f"--image {problems[0]}")
    run.loop.attach_images(images)


def expand_command(run: PreparedRun, text: str) -> str:
    """`/name args` naming a custom command → its prompt, with its allowed-tools and model put in force for that
    message (on `run.loop`). Any other text is returned as it is. Raises UsageError for a command that cannot
    be used as written."""
    invocation = parse_invocation(text)
    if invocation is None:
        return text
    name, arguments = invocation
    commands, _ = load_commands(run.root, config_dir())
    command = commands.get(name)
    if command is None:
        return text
    scope, warnings = command_scope(run, command)
    expansion = expand_mentions(command.expand(arguments), run.cwd, run.root)  # `@file` in the body, as the TUI
    for w in warnings + expansion.notes:
        _err(f"warning: {w}")
    run.loop.scope_next_message(scope)
    return expansion.text


def command_scope(run: PreparedRun, command: CustomCommand) -> tuple[MessageScope, list[str]]:
    """What a custom command's frontmatter puts in force for its message. A `model` that cannot be used is a
    warning (the session's model answers); an `allowed-tools` entry that does not parse is a UsageError."""
    label = f"/{command.name}"
    try:
        tools = ToolScope(command.allowed_tools, label) if command.allowed_tools else None
    except ValueError as e:
        raise UsageError(f"{command.path}: allowed-tools: {e}") from None
    if not command.model:
        return MessageScope(label, tools), []
    from ghostline.agent.models import cost_usd, make_provider, model_info

    try:
        provider = make_provider(command.model, base_url=run.base_url, overrides=run.config.models,
                                 retry=_retry_policy(run.config.retry))
        info = model_info(command.model, run.config.models)
    except ConfigError as e:
        return MessageScope(label, tools), [f"{label}: not switching to model {command.model!r}: {e}"]
    switch = ModelSwitch(provider, lambda u: cost_usd(u, info),
                         min(run.config.max_output_tokens, info.max_output_tokens), command.model)
    return MessageScope(label, tools, switch), []


def _make_registry(cfg: Config, root: Path, approver: Approver | None, hooks: Hooks | None,
                   skills: list[Skill], edit: str) -> ToolRegistry:
    tools = default_tools(edit) + ([SkillTool(skills)] if skills else [])  # no skills: no tool the model never needs
    return ToolRegistry(tools, policy=_make_policy(cfg, root), approver=approver, project_root=root, hooks=hooks)


def _load_skills(root: Path) -> list[Skill]:
    skills, warnings = discover_skills(skill_dirs(root, config_dir()))
    for w in warnings:
        _err(f"warning: {w}")
    return skills


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


def _start_branch(cwd: Path, name: str) -> None:
    """--branch NAME without --worktree: the run works on a new branch made from HEAD in this checkout."""
    if not is_work_tree(cwd):
        raise UsageError(f"--branch needs a git repository; {cwd} is not in one")
    try:
        start_branch(cwd, name)
    except LandingError as e:
        raise UsageError(f"--branch: {e}") from None
    _err(f"branch: {name}")


def _add_cli_rules(cfg: Config, opts: RunOptions) -> None:
    """--allow/--deny RULE: the person running the command gives them, so they count like the user's config
    (a deny still wins over any allow). Raises UsageError for a rule that does not parse."""
    for flag, key, rules in (("--allow", "allow", opts.allow), ("--deny", "deny", opts.deny)):
        for rule in rules:
            try:
                Rule.parse(rule)
            except ValueError as e:
                raise UsageError(f"{flag}: {e}") from None
        if rules:
            have = cfg.permissions.get(key) or []
            cfg.permissions = {**cfg.permissions, key: ([have] if isinstance(have, str) else list(have)) + rules}


def _make_policy(cfg: Config, root: Path) -> Policy:
    try:
        return Policy.from_config(cfg.permissions, workspace=root)
    except ValueError as e:
        raise ConfigError(f"[permissions] in config: {e}") from None


def _make_compactor(cfg: Config, info: Any, store_dir: Path, provider: Provider, instructions: str,
                    reserved_output: int, registry: ToolRegistry) -> Compactor:
    try:
        ccfg = CompactionConfig.from_dict(cfg.compaction) if cfg.compaction else CompactionConfig()
    except ValueError as e:
        raise ConfigError(f"[compaction] in config: {e}") from None
    return Compactor(ccfg, window=info.context_window, reserved_output=reserved_output,
                     store_dir=store_dir, summarize=_make_summarizer(provider, 4096),
                     instructions=instructions, provider=provider.name, kind_of=registry.kind_of)


def _subagent_setup(cfg: Config, *, root: Path, cwd: Path, session: Session, instructions: str, sandbox: str,
                    is_git: bool, tools: list[Any], base_url: str | None) -> SubagentSetup:
    """The agent types of this user and project (a warning line for each file skipped or tool unknown here), and
    how a subagent's system prompt, model and compactor are made."""
    from ghostline.agent.models import cost_usd, make_provider, model_info

    types, warnings = load_agent_types(root, config_dir())
    have = {t.name for t in tools}
    if have & EDIT_RULES.keys():  # a type naming either edit tool gets the one this model has
        have |= EDIT_RULES.keys()
    for t in types.values():
        missing = [name for name in t.tools or () if name not in have]
        if missing:
            warnings.append(f"agent type {t.name!r} ({t.source}) names tools Ghostline does not have here: "
                            f"{', '.join(missing)}; it runs without them")
    for w in warnings:
        _err(f"warning: {w}")

    def model_for(agent_type: Any, parent: AgentLoop) -> ChildModel:
        mine = parent_model(parent)
        spec = subagent_model(agent_type.model, mine.label, cfg.models)
        if spec is None or spec == mine.label:
            return mine
        try:
            provider = make_provider(spec, base_url=base_url if spec.split(":")[0] == parent.provider.name else None,
                                     overrides=cfg.models, retry=_retry_policy(cfg.retry))
        except ConfigError as e:  # no key for that provider, say: it runs on the main model (its result says which)
            log.debug("subagent %s runs on %s: %s", agent_type.name, mine.label, e)
            return mine
        info = model_info(spec, cfg.models)
        return ChildModel(provider, lambda u: cost_usd(u, info), min(cfg.max_output_tokens, info.max_output_tokens),
                          spec, owned=True)

    def compactor_for(model: ChildModel, registry: ToolRegistry, call_id: str) -> Compactor:
        return _make_compactor(cfg, model_info(model.label, cfg.models), session.dir / "subagents" / call_id,
                               model.provider, instructions, model.max_output_tokens, registry)

    def system_for(prompt: str) -> str:
        return system_prompt(root=root, cwd=cwd, instructions=instructions, sandbox=sandbox, is_git=is_git,
                             base=prompt.rstrip("\n") + "\n\n" + TOOL_RULES)

    return SubagentSetup(types, system_for, model_for, compactor_for)


def _make_checkpoints(root: Path, session_id: str) -> Checkpoints | None:
    try:
        # its prime (a walk of the tree, git) goes after the SDK's import: the first request does not wait for it
        return Checkpoints(root, session=session_id, prime_after=wait_for_background_imports)
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
