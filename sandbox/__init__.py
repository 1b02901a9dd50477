"""Sandbox: permission policy, OS sandbox for commands, path guard, git checkpoints and worktrees.

Public surface (the rest of the package is internal):

    await run_command(command, *, cwd, workspace, mode, network, timeout, output_limit=30000, env=None,
                      level=None, output_dir=None) -> CommandResult
    resolve_path(path, *, cwd, workspace, write, mode) -> Path           raises PathDenied
    detect_level() -> "bubblewrap" | "landlock" | "none";  check() -> dict
    SandboxMode / SANDBOX_MODES, SandboxLevel / SANDBOX_LEVELS            (Literal types and their values)
    Policy.from_config(permissions, level=...).evaluate(Action(tool, kind, paths, command), *, mode, approval,
        workspace) -> Decision(action="allow"|"ask"|"deny", reason);  suggest_rule(action) -> str
    remember(project, rule) / remembered(project) / forget(project, rule=None)   ("always allow")
    is_trusted(path) / trust(path) / untrust(path) / trusted_dirs()
    Checkpoints(workspace, session=None, *, prime=None, max_bytes=None): snapshot(label) -> str | None,
        restore(ref), list(session), sessions(), undo(session=None, turns=1) -> (Checkpoint, changed paths),
        prime(wait=False), notice;  create_worktree(repo, name) -> (path, branch)

Every name loads on first use: importing the package (or `ghostline.sandbox.modes` for a CLI option's choices)
costs nothing; asyncio and tree-sitter come with the modules that need them.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # not `from typing import ...`: typing costs ~3 ms of each first-snapshot packer process
if TYPE_CHECKING:
    from typing import Any

    from ghostline.sandbox.checkpoints import Checkpoint, CheckpointError, Checkpoints, create_worktree
    from ghostline.sandbox.envscrub import is_secret_name, scrub_env
    from ghostline.sandbox.modes import SANDBOX_LEVELS, SANDBOX_MODES, SandboxLevel, SandboxMode
    from ghostline.sandbox.paths import PathDenied, protected_reason, resolve_path
    from ghostline.sandbox.policy import Action, Decision, Policy, parse_command, suggest_rule
    from ghostline.sandbox.runner import CommandResult, SandboxError, check, detect_level, run_command
    from ghostline.sandbox.store import (
        all_remembered,
        forget,
        is_trusted,
        remember,
        remembered,
        trust,
        trusted_dirs,
        untrust,
    )

_MODULE_OF = {
    **dict.fromkeys(("Checkpoint", "CheckpointError", "Checkpoints", "create_worktree"), "checkpoints"),
    **dict.fromkeys(("is_secret_name", "scrub_env"), "envscrub"),
    **dict.fromkeys(("SANDBOX_LEVELS", "SANDBOX_MODES", "SandboxLevel", "SandboxMode"), "modes"),
    **dict.fromkeys(("PathDenied", "protected_reason", "resolve_path"), "paths"),
    **dict.fromkeys(("Action", "Decision", "Policy", "parse_command", "suggest_rule"), "policy"),
    **dict.fromkeys(("CommandResult", "SandboxError", "check", "detect_level", "run_command"), "runner"),
    **dict.fromkeys(("all_remembered", "forget", "is_trusted", "remember", "remembered", "trust", "trusted_dirs",
                     "untrust"), "store"),
}


def __getattr__(name: str) -> Any:
    mod = _MODULE_OF.get(name)
    if mod is None:
        raise AttributeError(f"module 'ghostline.sandbox' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"ghostline.sandbox.{mod}"), name)
    globals()[name] = value  # bound once, as an import at the top would have done
    return value


__all__ = [
    "Checkpoint",
    "CheckpointError",
    "Checkpoints",
    "CommandResult",
    "Action",
    "Decision",
    "PathDenied",
    "Policy",
    "SANDBOX_LEVELS",
    "SANDBOX_MODES",
    "SandboxError",
    "SandboxLevel",
    "SandboxMode",
    "all_remembered",
    "check",
    "create_worktree",
    "detect_level",
    "forget",
    "is_secret_name",
    "is_trusted",
    "parse_command",
    "protected_reason",
    "remember",
    "remembered",
    "resolve_path",
    "run_command",
    "scrub_env",
    "suggest_rule",
    "trust",
    "trusted_dirs",
    "untrust",
]
