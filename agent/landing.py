"""Where a run's work lands: its branch, a commit on it, a patch file and a diffstat (`agent run --commit
--patch FILE --branch NAME`, and each `agent batch` job).

Only the files the run changed are touched (its `files_changed`, which includes what shell commands changed), so
changes a person had made in the checkout before the run are neither committed nor put in the patch. The patch
and the diffstat come from a throwaway index (the repository's own index is not used), so they include new files
without staging anything; the commit uses ordinary `git add`/`git commit -- PATHS`, so the repository's hooks run
as they would for a person.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # git's well-known empty tree: the base of a first commit
SUBJECT_MAX = 72
FALLBACK_IDENTITY = ("Ghostline", "ghostline@users.noreply.localhost")  # when git knows nobody (a bare CI box)


class LandingError(Exception):
    """git refused (a branch name taken, a failing commit hook...): one line for the user."""


@dataclass(frozen=True)
class LandingRequest:
    """What the user asked for. `author`: "Name <email>" from config (`[commit] author`), else GIT_AUTHOR_* or
    the repository's identity."""

    commit: bool = False
    patch: Path | None = None
    author: str | None = None


def _git_bytes(repo: Path, *args: str, env: dict[str, str] | None = None, check: bool = True,
               stdin: bytes | None = None) -> bytes:
    proc = subprocess.run(["git", "-C", str(repo), "--literal-pathspecs", *args], capture_output=True, env=env,
                          input=stdin, timeout=600)
    if check and proc.returncode != 0:
        text = (proc.stderr or proc.stdout).decode(errors="replace").strip() or f"exit {proc.returncode}"
        verb = next((a for a in args if not a.startswith("-") and "=" not in a), "")
        raise LandingError(f"git {verb} failed: {text.splitlines()[-1]}")
    return proc.stdout


def _git(repo: Path, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    return _git_bytes(repo, *args, env=env, check=check).decode(errors="replace")


def is_work_tree(repo: Path) -> bool:
    return _git(repo, "rev-parse", "--is-inside-work-tree", check=False).strip() == "true"


def head_commit(repo: Path) -> str | None:
    """The commit HEAD points at (None in a repository with no commit yet)."""
    out = _git(repo, "rev-parse", "--verify", "-q", "HEAD^{commit}", check=False).strip()
    return out or None


def current_branch(repo: Path) -> str | None:
    """The checked-out branch (None when HEAD is detached)."""
    return _git(repo, "symbolic-ref", "-q", "--short", "HEAD", check=False).strip() or None


def check_branch_name(repo: Path, name: str) -> None:
    if _git(repo, "check-ref-format", "--branch", name, check=False).strip() != name:
        raise LandingError(f"{name!r} is not a valid branch name")


def start_branch(repo: Path, name: str) -> None:
    """`--branch NAME` without `--worktree`: the run works on a new branch NAME made from HEAD in this checkout
    (uncommitted changes come along, as with `git switch -c`). Raises LandingError if it exists."""
    check_branch_name(repo, name)
    if _git(repo, "rev-parse", "--verify", "-q", f"refs/heads/{name}", check=False).strip():
        raise LandingError(f"branch {name!r} already exists; pick another --branch name")
    _git(repo, "switch", "-q", "-c", name)


def commit_message(summary: str, task: str, session_id: str) -> str:
    """The model's final summary as a commit message: its first line as the subject (at most 72 characters),
    the rest as the body, and the session as a trailer. No summary: the task's first line."""
    lines = [line.rstrip() for line in summary.strip().splitlines()]
    if not lines or not lines[0].strip():
        lines = [f"Ghostline: {' '.join(task.split())}"]
    subject = lines[0].strip().lstrip("#").strip() or "Ghostline changes"
    body = "\n".join(lines[1:]).strip()
    if len(subject) > SUBJECT_MAX:
        cut = subject[: SUBJECT_MAX - 3]
        subject = (cut.rsplit(" ", 1)[0] if " " in cut[20:] else cut).rstrip(" ,.;:") + "..."
        body = (lines[0].strip() + ("\n\n" + body if body else "")).strip()
    return f"{subject}\n\n{body + chr(10) + chr(10) if body else ''}Ghostline-Session: {session_id}\n"


def _addable(repo: Path, paths: list[str], env: dict[str, str] | None = None) -> list[str]:
    """Of `paths`, those git can stage in this index: tracked ones (deleted too) and new ones it does not
    ignore. A file the run created and removed again, or an ignored one, is not a change to land."""
    if not paths:
        return []
    out = _git(repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *paths, env=env)
    return sorted({p for p in out.split("\0") if p})


def _diffstat(numstat: str) -> dict[str, int]:
    files = insertions = deletions = 0
    for line in numstat.splitlines():
        added, removed, _ = (line.split("\t", 2) + ["", ""])[:3]
        files += 1
        insertions += int(added) if added.isdigit() else 0  # a binary file shows "-"
        deletions += int(removed) if removed.isdigit() else 0
    return {"files": files, "insertions": insertions, "deletions": deletions}


@dataclass
class _Staged:
    """The run's changes staged on top of `base` in a throwaway index (`env` points git at it)."""

    env: dict[str, str]
    base: str
    paths: list[str]  # the run's paths that are changes git can record

    def numstat(self, repo: Path) -> dict[str, int]:
        return _diffstat(_git(repo, "diff", "--cached", "--numstat", self.base, "--", *self.paths, env=self.env))

    def patch(self, repo: Path) -> bytes:
        return _git_bytes(repo, "diff", "--cached", "--binary", self.base, "--", *self.paths, env=self.env)


@contextmanager
def _staged(repo: Path, base: str | None, paths: list[str]) -> Iterator[_Staged]:
    with tempfile.TemporaryDirectory(prefix="ghostline-index-") as tmp:
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        base = base or EMPTY_TREE
        _git(repo, "read-tree", base, env=env)
        addable = _addable(repo, paths, env) if paths else []
        if addable:
            _git(repo, "add", "-A", "--", *addable, env=env)
        yield _Staged(env, base, addable)


def worktree_diffstat(repo: Path, base: str | None, paths: list[str]) -> dict[str, int]:
    """The diffstat of `paths` from `base` to the working tree, from one `git diff` against the working tree
    (reading the repository's index, writing nothing) when it shows every path (the usual case: edits). A path
    it does not show is unchanged, ignored, or new — git diffs only what an index holds — and a new one needs
    the throwaway index."""
    if not paths:
        return _diffstat("")
    stat, shown = _numstat_z(_git(repo, "diff", "--numstat", "-z", base or EMPTY_TREE, "--", *paths))
    if shown.issuperset(paths):
        return stat
    tagged = _git(repo, "ls-files", "-z", "-t", "--others", "--exclude-standard", "--",
                  *sorted(set(paths) - shown))
    if any(e.startswith("? ") for e in tagged.split("\0")):
        return diff_against(repo, base, paths)[1]
    return stat


def _numstat_z(out: str) -> tuple[dict[str, int], set[str]]:
    """`git diff --numstat -z`: the diffstat, and every path it names (a rename names two)."""
    lines, shown = [], set()
    fields = iter(out.split("\0"))
    for entry in fields:
        if not entry:
            continue
        added, removed, path = (entry.split("\t", 2) + ["", ""])[:3]
        names = [path] if path else [next(fields, ""), next(fields, "")]  # a rename: "a\td\t", old, new
        shown.update(names)
        lines.append(f"{added}\t{removed}\t{names[-1]}")
    return _diffstat("\n".join(lines)), shown


def diff_against(repo: Path, base: str | None, paths: list[str]) -> tuple[bytes, dict[str, int]]:
    """The binary git diff of `paths` from `base` to the working tree, and its diffstat, through a throwaway
    index (new files included, nothing staged in the repository's own index)."""
    with _staged(repo, base, paths) as staged:
        if not staged.paths:
            return b"", _diffstat("")
        return staged.patch(repo), staged.numstat(repo)


def _identity_args(repo: Path) -> list[str]:
    """`-c user.name/email` when git would not know who commits (no config, no GIT_* variables): a CI machine
    often has no identity, and a commit must not fail for it. (The author falls back to the committer's.)"""
    if _git(repo, "var", "GIT_COMMITTER_IDENT", check=False).strip():
        return []
    return ["-c", f"user.name={FALLBACK_IDENTITY[0]}", "-c", f"user.email={FALLBACK_IDENTITY[1]}"]


def _commit(repo: Path, message: str, author: str | None, *, pathspec: list[str],
            env: dict[str, str] | None = None) -> None:
    author_arg = [f"--author={author}"] if author else []
    _git_bytes(repo, *_identity_args(repo), "commit", "-q", "-F", "-", *author_arg, "--", *pathspec,
               env=env, stdin=message.encode())


def commit_paths(repo: Path, paths: list[str], message: str, author: str | None = None) -> str | None:
    """Commit the current state of `paths` (only them: whatever else is staged stays staged) on the checked-out
    branch. Returns the new commit, or None when they hold no change. Raises LandingError."""
    addable = _addable(repo, paths)
    if not addable:
        return None
    _git(repo, "add", "-A", "--", *addable)
    if head_commit(repo) and not _git(repo, "diff", "--cached", "--name-only", "HEAD", "--", *addable).strip():
        return None
    _commit(repo, message, author, pathspec=addable)
    return head_commit(repo)


def _commit_staged(repo: Path, staged: _Staged, message: str, author: str | None) -> str | None:
    """Commit what `staged` holds when the branch is still at its base (the usual case: one git commit, from the
    throwaway index, then the repository's index follows for those paths); else as `commit_paths` does."""
    if head_commit(repo) != staged.base:  # the run committed, or a resumed run started from an older commit
        return commit_paths(repo, staged.paths, message, author)
    _commit(repo, message, author, pathspec=[], env=staged.env)
    _git(repo, "reset", "-q", "--", *staged.paths)
    return head_commit(repo)


def land(repo: Path, *, base: str | None, paths: list[str], request: LandingRequest, succeeded: bool,
         summary: str, task: str, session_id: str, counted: dict[str, int] | None = None) -> dict[str, Any]:
    """The report's `branch`, `commit`, `patch` and `diffstat` for a run that changed `paths` (relative to
    `repo`) since `base`. The patch is written whatever the outcome (it shows what a failed run did); the commit
    is made only for a run that succeeded. A git failure becomes `landing_error` (the run's outcome stands).
    `counted`: the diffstat, when it was already counted (agent/report_ahead.py)."""
    out: dict[str, Any] = {"branch": None, "commit": None, "patch": None, "diffstat": _diffstat("")}
    if request.patch is None and not (request.commit and succeeded):  # nothing to write: only count
        with ThreadPoolExecutor(1) as pool:  # two git processes at once: this is on the way to the exit
            branch = pool.submit(current_branch, repo)
            try:
                out["diffstat"] = counted if counted is not None else worktree_diffstat(repo, base, paths)
            except (LandingError, OSError, subprocess.SubprocessError) as e:
                out["landing_error"] = str(e)
            out["branch"] = branch.result()
        return out
    out["branch"] = current_branch(repo)
    try:
        with _staged(repo, base, paths) as staged:
            if staged.paths:
                out["diffstat"] = staged.numstat(repo)
            if request.patch is not None:
                target = request.patch.expanduser().absolute()
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(staged.patch(repo) if staged.paths else b"")
                out["patch"] = str(target)
            if request.commit and succeeded and out["diffstat"]["files"]:
                out["commit"] = _commit_staged(repo, staged, commit_message(summary, task, session_id),
                                               request.author)
    except (LandingError, OSError, subprocess.SubprocessError) as e:
        out["landing_error"] = str(e)
    return out
