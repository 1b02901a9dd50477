"""Where each job works: its own git worktree (`<repo>.worktrees/<id>`) on its own branch (`ghostline/<id>` by
default) made from its `base` (else HEAD). Everything is resolved and checked before anything runs, so a
missing repository, an unknown base or a branch left by an earlier batch is one error up front."""

from __future__ import annotations

import dataclasses
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ghostline.agent.batch.jobs import Job, JobsError
from ghostline.sandbox import create_worktree

DEFAULT_BRANCH = "ghostline/{id}"


@dataclass(frozen=True)
class Place:
    repo: Path  # the repository's top level
    worktree: Path
    subdir: Path  # the job's cwd inside its repository (`.` for the top level)
    branch: str
    base: str  # the commit the branch starts from

    @property
    def cwd(self) -> Path:
        return self.worktree / self.subdir


def _git(cwd: Path, *args: str) -> str | None:
    """stdout, or None when git fails (not a repository, an unknown revision...)."""
    try:
        proc = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def branch_name(template: str, job_id: str) -> str:
    if "{id}" not in template:
        raise JobsError(f"--branch for a batch must contain {{id}} (each job gets its own branch); got {template!r}")
    return template.replace("{id}", job_id)


def plan_place(job: Job, *, start: Path, template: str, where: str) -> Place:
    """The job's repository, base commit, branch and worktree path (nothing is created). `where`: how to name
    the job in an error (`JOBS:line`). Raises JobsError."""
    cwd = (start / job.cwd).resolve() if job.cwd else start.resolve()
    if not cwd.is_dir():
        raise JobsError(f"{where}: cwd {cwd} is not a directory")
    top = _git(cwd, "rev-parse", "--show-toplevel")
    if top is None:
        raise JobsError(f"{where}: {cwd} is not in a git repository (each job works in a git worktree)")
    repo = Path(top).resolve()
    base = _git(repo, "rev-parse", "--verify", "-q", f"{job.base or 'HEAD'}^{{commit}}")
    if base is None:
        what = f"base {job.base!r} is not a commit, branch or tag" if job.base else "the repository has no commit"
        raise JobsError(f"{where}: {what} in {repo}")
    branch = branch_name(template, job.id)
    if _git(repo, "check-ref-format", "--branch", branch) != branch:
        raise JobsError(f"{where}: {branch!r} is not a valid branch name")
    return Place(repo, repo.parent / f"{repo.name}.worktrees" / job.id, cwd.relative_to(repo), branch, base)


def leftovers(place: Place) -> list[str]:
    """What an earlier run left where this job would start: its branch, its worktree directory."""
    found = []
    if _git(place.repo, "rev-parse", "--verify", "-q", f"refs/heads/{place.branch}") is not None:
        found.append(f"branch {place.branch}")
    if place.worktree.exists():
        found.append(f"directory {place.worktree}")
    return found


def create(place: Place) -> Place:
    """The job's worktree and branch (the place as made: git may have had to pick another directory name).
    Raises CheckpointError (git refused)."""
    path, _ = create_worktree(place.repo, place.worktree.name, branch=place.branch, base=place.base)
    return dataclasses.replace(place, worktree=Path(path))


def remove(place: Place) -> None:
    """Remove the job's worktree and branch (a job that --resume runs again starts from its base)."""
    if place.worktree.exists():
        _git(place.repo, "worktree", "remove", "--force", str(place.worktree))
    _git(place.repo, "worktree", "prune")
    _git(place.repo, "branch", "-D", place.branch)
