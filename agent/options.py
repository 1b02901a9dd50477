"""What a run is asked to do (the command line's options) and the error for a mistake in them.

Cheap to import (no loop, tools or SDKs), so the TUI can check the options before its first paint and prepare the
run behind it; `agent.runner` composes the run from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

EXIT_USAGE = 2


@dataclass
class RunOptions:
    task: str | None = None
    model: str | None = None
    base_url: str | None = None
    output_format: str = "text"
    max_turns: int | None = None
    max_tokens: int | None = None
    max_cost: float | None = None
    approval: str | None = None
    sandbox: str | None = None
    network: bool | None = None
    resume: str | None = None
    cont: bool = False
    worktree: str | None = None
    cwd: Path | None = None
    verbose: bool = False
    verify: str | None = None  # a command that must pass before the run counts as done
    verify_attempts: int | None = None  # extra attempts after the first failure (default 2)
    verify_timeout: float | None = None  # seconds per verification run (default 600)
    allow: list[str] = field(default_factory=list)  # --allow RULE: permission rules on top of the config's
    deny: list[str] = field(default_factory=list)  # --deny RULE
    branch: str | None = None  # work on this new branch (the worktree's, with --worktree)
    commit: bool = False  # commit the run's changes when it succeeds (agent/landing.py)
    patch: Path | None = None  # write the run's changes as a git diff here
    output_schema: Path | None = None  # the final answer must be JSON valid against this schema
    images: tuple[Path, ...] = ()  # --image: sent with the task


class UsageError(Exception):
    """A mistake in how the command was called or configured (exit 2)."""
