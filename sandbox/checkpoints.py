"""Git checkpoints: snapshot the working tree before each turn into a hidden ref; restore byte-identically.

Snapshots are commits on `refs/ghostline/checkpoints/<session>` (one chain per session) built with a temporary
index (GIT_INDEX_FILE), so the user's index, branch, HEAD and stash are never touched. Untracked files are
included and ignored files excluded. When the workspace is not in a git repository, a private shadow
repository under the user data dir (GIT_DIR there, GIT_WORK_TREE the workspace) does the same.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

REF_PREFIX = "refs/ghostline/checkpoints/"
UNDO_PREFIX = "refs/ghostline/undo/"
SHADOW_EXCLUDES = ("node_modules/", ".venv/", "venv/", "__pycache__/", "*.pyc", ".mypy_cache/", ".pytest_cache/",
                   ".tox/", "target/", "dist/", "build/", ".cache/")


class CheckpointError(Exception):
    pass


@dataclass
class Checkpoint:
    sha: str
    session: str
    label: str
    time: int  # unix seconds


def _ref_component(s: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", s).strip(".-") or "default"
    return s.replace("..", "-")[:100]


class Checkpoints:
    def __init__(self, workspace: Path, session: str | None = None):
        self.workspace = Path(os.path.realpath(workspace))
        self.session = session
        self._setup_done = False

    # --- git plumbing -------------------------------------------------------------------------------------
    def _setup(self) -> None:
        if self._setup_done:
            return
        import git  # GitPython

        self._git = git.Git(str(self.workspace))
        self._exc = git.GitCommandError
        top = None
        try:
            top = self._run(["rev-parse", "--show-toplevel"], shadow=False).strip()
            inside = self._run(["rev-parse", "--is-inside-work-tree"], shadow=False).strip() == "true"
            if not inside:
                top = None
        except CheckpointError:
            top = None
        if top:
            self.shadow = False
            self.root = Path(os.path.realpath(top))
            self.git_dir = Path(os.path.realpath(self._run(["rev-parse", "--absolute-git-dir"], shadow=False).strip()))
            rel = os.path.relpath(self.workspace, self.root)
            self.pathspec = "." if rel == "." else rel
        else:
            from ghostline.dirs import data_dir

            self.shadow = True
            self.root = self.workspace
            h = hashlib.sha256(str(self.workspace).encode()).hexdigest()[:16]
            self.git_dir = data_dir() / "shadow-repos" / f"{self.workspace.name[:40]}-{h}.git"
            self.pathspec = "."
            if not (self.git_dir / "HEAD").exists():
                self.git_dir.mkdir(parents=True, exist_ok=True)
                self._git.execute(["git", "init", "--bare", "-q", str(self.git_dir)])
                (self.git_dir / "info").mkdir(exist_ok=True)
                (self.git_dir / "info" / "exclude").write_text("\n".join(SHADOW_EXCLUDES) + "\n")
                self._run(["config", "core.autocrlf", "false"])
                self._run(["config", "core.bare", "false"])
        # Ghostline's own data (the shadow repository itself, sessions) never goes into a snapshot.
        from ghostline.sandbox.paths import protected_dirs

        self.excludes = []
        for d in [*protected_dirs(), Path(os.path.realpath(self.git_dir))]:
            if d != self.root and d.is_relative_to(self.root):
                self.excludes.append(f":(exclude,top){d.relative_to(self.root).as_posix()}")
        self._setup_done = True

    def _env(self, index: str | None = None) -> dict[str, str]:
        env = {"GIT_TERMINAL_PROMPT": "0", "GIT_AUTHOR_NAME": "ghostline", "GIT_AUTHOR_EMAIL": "ghostline@localhost",
               "GIT_COMMITTER_NAME": "ghostline", "GIT_COMMITTER_EMAIL": "ghostline@localhost",
               "GIT_OPTIONAL_LOCKS": "0", "GIT_CONFIG_NOSYSTEM": "1"}
        if getattr(self, "shadow", False):
            env["GIT_DIR"] = str(self.git_dir)
            env["GIT_WORK_TREE"] = str(self.root)
        if index:
            env["GIT_INDEX_FILE"] = index
        return env

    def _run(self, args: list[str], *, shadow: bool | None = None, index: str | None = None,
             stdin: bytes | None = None, cwd: Path | None = None) -> str:
        env = self._env(index) if shadow is not False else {"GIT_TERMINAL_PROMPT": "0"}
        cmd = ["git", "-c", "core.quotepath=off", "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false",
               *args]
        istream = None
        if stdin is not None:
            istream = tempfile.TemporaryFile()
            istream.write(stdin)
            istream.seek(0)
        try:
            import git

            g = git.Git(str(cwd)) if cwd else self._git
            out = g.execute(cmd, env=env, istream=istream, stdout_as_string=False, strip_newline_in_stdout=False)
        except self._exc as e:
            err = (e.stderr or "").strip() if isinstance(e.stderr, str) else str(e.stderr)
            raise CheckpointError(f"git {args[0]} failed: {err[-400:]}") from None
        except OSError as e:
            raise CheckpointError(f"git is not available: {e}") from None
        finally:
            if istream is not None:
                istream.close()
        return out.decode("utf-8", errors="surrogateescape") if isinstance(out, bytes) else str(out)

    def _git_cwd(self) -> Path:
        return self.root

    def _temp_index(self) -> str:
        fd, path = tempfile.mkstemp(prefix="ghostline-index-")
        os.close(fd)
        os.unlink(path)
        src = self.git_dir / "index"
        if src.exists():
            try:
                shutil.copyfile(src, path)  # stat cache: only changed files are re-hashed
            except OSError:
                pass
        return path

    def _ref(self, session: str) -> str:
        return REF_PREFIX + _ref_component(session)

    def _tip(self, ref: str) -> str | None:
        try:
            return self._run(["rev-parse", "--verify", "-q", ref + "^{commit}"], cwd=self.root).strip() or None
        except CheckpointError:
            return None

    def _tree_of_worktree(self) -> str:
        index = self._temp_index()
        try:
            self._run(["add", "-A", "--ignore-errors", "--", self.pathspec, *self.excludes], index=index,
                      cwd=self.root)
            return self._run(["write-tree"], index=index, cwd=self.root).strip()
        finally:
            try:
                os.unlink(index)
            except OSError:
                pass

    # --- public API ----------------------------------------------------------------------------------------
    def snapshot(self, label: str, *, session: str | None = None) -> str | None:
        """Commit the working tree (untracked included, ignored excluded) onto the session's hidden ref.

        The session is `session`, else the constructor's, else the part of `label` before ':'. Returns the
        checkpoint's commit id, or None when no snapshot could be taken (git missing, ...)."""
        sess = session or self.session or (label.split(":", 1)[0] if ":" in label else "default")
        try:
            self._setup()
            return self._commit(self._ref(sess), label)
        except (CheckpointError, OSError):
            return None

    def _commit(self, ref: str, label: str) -> str:
        tree = self._tree_of_worktree()
        parent = self._tip(ref)
        import time

        args = ["commit-tree", tree, "-m", label, "-m", f"ghostline-time: {time.time_ns()}"]
        if parent:
            args[2:2] = ["-p", parent]
        sha = self._run(args, cwd=self.root).strip()
        self._run(["update-ref", "-m", f"ghostline: {label}", ref, sha], cwd=self.root)
        return sha

    def sessions(self) -> list[tuple[str, int]]:
        """Sessions with checkpoints in this workspace, most recent first: (session, time of last snapshot)."""
        self._setup()
        out = self._run(["for-each-ref", "--format=%(refname)%00%(committerdate:unix)%00%(contents:body)%01",
                         REF_PREFIX], cwd=self.root)
        res = []
        for rec in out.split("\x01"):
            rec = rec.strip("\n")
            if rec.count("\0") < 2:
                continue
            ref, t, body = rec.split("\0", 2)
            m = re.search(r"ghostline-time: (\d+)", body)
            ns = int(m.group(1)) if m else int(t or 0) * 10**9
            res.append((ref[len(REF_PREFIX):], ns))
        res.sort(key=lambda x: x[1], reverse=True)
        return [(name, ns // 10**9) for name, ns in res]

    def list(self, session: str | None = None) -> list[Checkpoint]:
        """Checkpoints of `session` (default: the most recent session), newest first."""
        self._setup()
        if session is None:
            sess = self.sessions()
            if not sess:
                return []
            session = sess[0][0]
        ref = self._ref(session)
        if not self._tip(ref):
            return []
        out = self._run(["log", "--format=%H%x00%ct%x00%s", ref], cwd=self.root)
        res = []
        for line in out.splitlines():
            parts = line.split("\0")
            if len(parts) == 3:
                res.append(Checkpoint(sha=parts[0], session=session, label=parts[2], time=int(parts[1])))
        return res

    def restore(self, ref: str) -> list[str]:
        """Make the workspace byte-identical to checkpoint `ref` (modified, deleted and renamed files come
        back, files created since are removed; ignored files are kept). The current state is saved first on
        refs/ghostline/undo/<session>. Returns the paths changed (relative to the repository root)."""
        self._setup()
        target = self._run(["rev-parse", "--verify", ref + "^{commit}"], cwd=self.root).strip()
        self._commit(UNDO_PREFIX + "last", f"before restoring {target[:12]}")
        current_tree = self._run(["rev-parse", UNDO_PREFIX + "last^{tree}"], cwd=self.root).strip()
        target_tree = self._run(["rev-parse", target + "^{tree}"], cwd=self.root).strip()
        spec = ["--", self.pathspec, *self.excludes]
        added = self._run(["diff-tree", "-r", "-z", "--no-renames", "--name-only", "--diff-filter=A",
                           target_tree, current_tree, *spec], cwd=self.root).split("\0")
        changed = self._run(["diff-tree", "-r", "-z", "--no-renames", "--name-only", "--diff-filter=DMT",
                             target_tree, current_tree, *spec], cwd=self.root).split("\0")
        added = [p for p in added if p]
        changed = [p for p in changed if p]
        for rel in added:
            p = self.root / rel
            try:
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                else:
                    p.unlink()
            except FileNotFoundError:
                pass
            self._prune_empty_dirs(p.parent)
        if changed:
            index = self._temp_index()
            try:
                self._run(["read-tree", target_tree], index=index, cwd=self.root)
                for rel in changed:  # a directory now where a file was
                    p = self.root / rel
                    if p.is_dir() and not p.is_symlink():
                        shutil.rmtree(p)
                self._run(["checkout-index", "-f", "-z", "--stdin"], index=index, cwd=self.root,
                          stdin="\0".join(changed).encode("utf-8", errors="surrogateescape"))
            finally:
                try:
                    os.unlink(index)
                except OSError:
                    pass
        return sorted(set(added) | set(changed))

    def _prune_empty_dirs(self, d: Path) -> None:
        ws = self.workspace
        while d != ws and d.is_relative_to(ws):
            try:
                d.rmdir()
            except OSError:
                return
            d = d.parent

    def undo(self, session: str | None = None, turns: int = 1) -> tuple[Checkpoint, list[str]]:
        """Restore the snapshot taken before the last `turns` turns of `session` (default: latest session),
        then drop the undone checkpoints from the session's chain so a second undo goes further back."""
        if turns < 1:
            raise CheckpointError("--turns must be at least 1")
        cps = self.list(session)
        if not cps:
            raise CheckpointError("no checkpoints in this workspace" if session is None
                                  else f"no checkpoints for session {session}")
        # Snapshots that match the files as they are now mark turns that changed nothing (a read-only command
        # after the last edit): undoing them would do nothing, so "the last turn" means the last one that did.
        current = self._tree_of_worktree()
        while cps and self._run(["rev-parse", f"{cps[0].sha}^{{tree}}"], cwd=self.root).strip() == current:
            cps = cps[1:]
        if not cps:
            raise CheckpointError("nothing to undo: the files are as they were at every checkpoint")
        if turns > len(cps):
            raise CheckpointError(f"only {len(cps)} checkpoint(s) with changes to undo in session "
                                  f"{cps[0].session}")
        cp = cps[turns - 1]
        changed = self.restore(cp.sha)
        ref = self._ref(cp.session)
        parent = self._run(["rev-list", "--parents", "-n", "1", cp.sha], cwd=self.root).split()
        if len(parent) > 1:
            self._run(["update-ref", ref, parent[1]], cwd=self.root)
        else:
            self._run(["update-ref", "-d", ref], cwd=self.root)
        return cp, changed


def create_worktree(repo: Path, name: str | None = None) -> tuple[Path, str]:
    """A new git worktree of `repo` on a new branch `ghostline/<name>`, beside the repository in
    `<repo>.worktrees/<name>`. Returns (path, branch)."""
    import time

    import git

    repo = Path(os.path.realpath(repo))
    g = git.Git(str(repo))
    try:
        top = Path(g.execute(["git", "rev-parse", "--show-toplevel"]).strip())
    except git.GitCommandError:
        raise CheckpointError(f"{repo} is not inside a git repository") from None
    name = _ref_component(name or time.strftime("run-%Y%m%d-%H%M%S"))
    branch = f"ghostline/{name}"
    base = top.parent / f"{top.name}.worktrees"
    path = base / name
    i = 1
    while path.exists() or _branch_exists(g, branch):
        i += 1
        path = base / f"{name}-{i}"
        branch = f"ghostline/{name}-{i}"
    base.mkdir(parents=True, exist_ok=True)
    try:
        has_head = True
        try:
            g.execute(["git", "rev-parse", "--verify", "-q", "HEAD"])
        except git.GitCommandError:
            has_head = False
        if not has_head:
            raise CheckpointError("the repository has no commit yet; commit once before using --worktree")
        g.execute(["git", "worktree", "add", "-q", "-b", branch, str(path), "HEAD"])
    except git.GitCommandError as e:
        raise CheckpointError(f"git worktree add failed: {str(e.stderr).strip()[-300:]}") from None
    return path, branch


def _branch_exists(g, branch: str) -> bool:
    import git

    try:
        g.execute(["git", "rev-parse", "--verify", "-q", f"refs/heads/{branch}"])
        return True
    except git.GitCommandError:
        return False
