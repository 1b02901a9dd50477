"""Sandbox: permission policy, OS sandbox for commands, path guard, git checkpoints and worktrees.

Public surface (the rest of the package is internal):

    await run_command(command, *, cwd, workspace, mode, network, timeout, output_limit=30000, env=None,
                      level=None, output_dir=None) -> CommandResult
    resolve_path(path, *, cwd, workspace, write, mode) -> Path           raises PathDenied
    detect_level() -> "bubblewrap" | "landlock" | "none";  check() -> dict
    Policy.from_config(permissions, level=...).evaluate(Action(tool, kind, paths, command), *, mode, approval,
        workspace)
        -> Decision(action="allow"|"ask"|"deny", reason);  suggest_rule(action) -> str
    remember(project, rule) / remembered(project) / forget(project, rule=None)   ("always allow")
    is_trusted(path) / trust(path) / untrust(path) / trusted_dirs()
    Checkpoints(workspace, session=None): snapshot(label) -> str | None, restore(ref), list(session),
        undo(session=None, turns=1);  create_worktree(repo, name) -> (path, branch)

Heavy modules (tree-sitter, GitPython) load on first use, never at import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ghostline.sandbox.envscrub import is_secret_name, scrub_env
from ghostline.sandbox.paths import PathDenied, protected_reason, resolve_path
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

if TYPE_CHECKING:
    from ghostline.sandbox.checkpoints import Checkpoint, CheckpointError, Checkpoints, create_worktree
    from ghostline.sandbox.policy import Action, Decision, Policy, parse_command, suggest_rule

_LAZY = {
    "Checkpoint": "ghostline.sandbox.checkpoints",
    "CheckpointError": "ghostline.sandbox.checkpoints",
    "Checkpoints": "ghostline.sandbox.checkpoints",
    "create_worktree": "ghostline.sandbox.checkpoints",
    "Action": "ghostline.sandbox.policy",
    "Decision": "ghostline.sandbox.policy",
    "Policy": "ghostline.sandbox.policy",
    "parse_command": "ghostline.sandbox.policy",
    "suggest_rule": "ghostline.sandbox.policy",
}


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'sandbox' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(mod), name)


__all__ = [
    "Checkpoint",
    "CheckpointError",
    "Checkpoints",
    "CommandResult",
    "Action",
    "Decision",
    "PathDenied",
    "Policy",
    "SandboxError",
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
