"""Undo checkpoints: the working tree is snapshotted before each turn that can change files, and undo makes it
byte-identical to a snapshot again, whatever changed it (the file tools or a shell command).

A snapshot is `git add -A` into the workspace's own store (sandbox/checkpoint_store.py: a git directory
under the data dir that borrows a repository's objects; nothing is written into the user's .git),
`write-tree`, and a parentless commit on refs/ghostline/checkpoints/<session>/<time>. The store keeps its
index between snapshots, so a snapshot hashes only the files whose stat changed. Untracked files are
included; ignored ones (.gitignore, .git/info/exclude, the global excludes file, and DEFAULT_EXCLUDES unless
tracked) are not, and undo leaves them alone. Old checkpoints are pruned (KEEP_*), and the store stays under
a size cap (GHOSTLINE_CHECKPOINT_MAX_MB): past it the oldest checkpoints go first, and when the newest alone
does not fit, checkpoints are off for the workspace, with one line saying why (`Checkpoints.notice`, and
`agent undo`).
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ghostline.dirs import data_dir
from ghostline.sandbox.checkpoint_store import (
    BULK_CONFIG,
    BULK_MIN_FILES,
    CheckpointError,
    Git,
    Layout,
    Store,
    locate,
    locked,
    off_reason,
    store_dir,
    sweep_stale,
)
from ghostline.sandbox.first_add import add_new_files, sizes, untracked_paths
from ghostline.sandbox.index_sync import IndexSync
from ghostline.sandbox.paths import protected_dirs

__all__ = ["Checkpoint", "CheckpointError", "Checkpoints", "create_worktree"]

REF_PREFIX = "refs/ghostline/checkpoints/"
UNDO_REF = "refs/ghostline/undo/last"
KEEP_SESSIONS = 20  # the most recent sessions of a workspace keep their checkpoints
KEEP_PER_SESSION = 100  # ... their newest this many
KEEP_DAYS = 30  # and nothing older (nor a store nobody used for as long)
CAP_KEEPS = 10  # over the cap, the current session keeps its newest this many before it loses more
DEFAULT_MAX_MB = 1024
MAX_MB_ENV = "GHOSTLINE_CHECKPOINT_MAX_MB"


@dataclass
class Checkpoint:
    sha: str
    session: str
    label: str
    time: int  # unix seconds
    tree: str = field(default="", repr=False, compare=False)
    ref: str = field(default="", repr=False, compare=False)


def _ref_component(s: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", s).strip(".-") or "default"
    return s.replace("..", "-")[:100]


def _megabytes(n: int) -> str:
    if n >= 2**30:
        return f"{n / 2**30:.1f} GB"
    return f"{n / 2**20:,.0f} MB" if n >= 2**20 else f"{max(1, round(n / 1024))} KB"


class Checkpoints:
    """Snapshots of one workspace, and undo. With a `session` (an agent run), the store is primed in a
    background thread from construction (`prime`), so the first snapshot only hashes what changed since the
    run started."""

    def __init__(self, workspace: Path, session: str | None = None, *, prime: bool | None = None,
                 max_bytes: int | None = None, prime_after: Callable[[], None] | None = None):
        self.workspace = Path(os.path.realpath(workspace))
        self.session = session
        self._notice: str | None = None
        self.max_bytes = max_bytes if max_bytes is not None else self._max_bytes_from_env()
        # Read the environment now: the prime thread must not see a later change of GHOSTLINE_DATA_DIR.
        self.store_path = store_dir(data_dir() / "checkpoints", self.workspace)
        self._protected = protected_dirs()
        self._store: Store | None = None
        self._sync = IndexSync()  # with a session: a watch on the tree, so a snapshot looks at what changed
        # what write-tree gave last, and at which generation: the tree for as long as nothing is added to the index
        self._last_tree: tuple[int, str] | None = None
        self._generation = 0  # goes up whenever the files may have changed since it was last read
        self._since: tuple[str, int, list[Path]] | None = None  # changed_since's last answer, and its generation
        self._prime_thread: threading.Thread | None = None
        self._prime_after = prime_after  # what the prime waits for first (the run's own start-up, on the GIL)
        self._last_ns = 0
        self._off = False  # turned off by this instance: no more hashing of a tree that does not fit
        if prime if prime is not None else session is not None:
            self.prime()

    def _max_bytes_from_env(self) -> int:
        raw = os.environ.get(MAX_MB_ENV, "").strip()
        try:
            return int(float(raw) * 2**20) if raw else DEFAULT_MAX_MB * 2**20
        except ValueError:
            self._notice = f"{MAX_MB_ENV}={raw!r} is not a number of megabytes; using {DEFAULT_MAX_MB}"
            return DEFAULT_MAX_MB * 2**20

    @property
    def notice(self) -> str | None:
        """Why checkpoints are off (or misconfigured) here, in one line; None when all is well."""
        return off_reason(self.store_path) or self._notice

    # --- the store ------------------------------------------------------------------------------------------
    @contextmanager
    def _using_store(self) -> Iterator[Store]:
        with locked(self.store_path):
            if self._store is None:
                self._store = self._open_store()
            try:
                yield self._store
            finally:
                self._sync.left(self._store)

    def _open_store(self) -> Store:
        store = Store(self.store_path, locate(self.workspace))
        store.ensure()
        sweep_stale(self.store_path.parent, self.store_path, KEEP_DAYS * 86400)
        self._retain(store)
        store.gc_auto()
        return store

    def _excludes(self, layout: Layout) -> list[str]:
        """Ghostline's own config and data (the stores, sessions) never go into a snapshot."""
        return [f":(exclude,top){d.relative_to(layout.root).as_posix()}" for d in self._protected
                if d != layout.root and d.is_relative_to(layout.root)]

    def _pathspec(self, store: Store) -> list[str]:
        return ["--", store.layout.pathspec, *self._excludes(store.layout)]

    def prime(self, wait: bool = False) -> None:
        """Fill the store's stat cache (hashing what it does not know yet) in a background thread; a snapshot
        taken meanwhile waits for it. With `wait`, return when it is done."""
        if self._prime_thread is None:
            self._prime_thread = threading.Thread(target=self._prime, name="checkpoints-prime", daemon=True)
            self._prime_thread.start()
        if wait:
            self._prime_thread.join()

    def _prime(self) -> None:
        if self._prime_after is not None:
            self._prime_after()
        try:
            with self._using_store() as store:
                self._sync.watch(store, self._protected)
                self._tree(store)
        except Exception:  # noqa: BLE001 - best effort: the first snapshot tries again, and reports
            pass

    def _add_all(self, store: Store, *, exact: bool = False) -> bool:
        """Bring the store's index in line with the files: only those whose stat changed are hashed, and only
        the paths the tree's watch saw change are looked at, unless `exact` (index_sync.py). False when the
        watch says nothing changed."""
        changed = self._sync.changes(store, self._protected)
        if changed is not None and not exact:
            if not changed:
                return False
            if self._sync.add(store, changed, self._excludes(store.layout)):
                self._generation += 1
                return True
        self._generation += 1
        cold = not store.index.exists()
        bulk = False
        trees = None
        pathspec = self._pathspec(store)
        if cold:
            store.seed_index()
            new = untracked_paths(store, pathspec)
            bulk = len(new) >= BULK_MIN_FILES
            # many new files: packed beside git (then git add -A finds them clean), when they fit the cap
            trees = add_new_files(store, new, pathspec, self.max_bytes) if bulk else None
            if trees is None:
                self._check_first_fits(store, new)
        try:
            store.git("add", "-A", "--ignore-errors", *pathspec, ok=(0, 1),
                      config=BULK_CONFIG if bulk else None, started=trees.start if trees else None)
            self._sync.full_pass_done()
        except CheckpointError:
            if cold or store.index_locked():
                raise
            store.drop_index()  # an index git cannot read: start again from scratch, once
            self._add_all(store)
        finally:
            if trees is not None:
                trees.wait()  # its pack of the index's trees, for write-tree to find
        return True

    def _check_first_fits(self, store: Store, new: list[str]) -> None:
        """Before hashing a whole new tree: would its untracked files alone exceed the cap? Then stay off."""
        total = sizes(store, new)
        if total > self.max_bytes:
            self._turn_off(store, f"a snapshot would store {_megabytes(total)} of untracked files")

    def _turn_off(self, store: Store, why: str) -> None:
        reason = (f"checkpoints are off for {self.workspace}: {why}, over the {_megabytes(self.max_bytes)} "
                  f"cap ({MAX_MB_ENV}); list big directories in .gitignore or raise the cap")
        store.drop_index()
        store.set_off(reason)
        self._off = True
        raise CheckpointError(reason)

    def close(self) -> None:
        """Stop watching the tree (its inotify descriptor goes); snapshots go on, looking at every file."""
        if self._prime_thread is not None:
            self._prime_thread.join()  # it may be starting the watch
        self._sync.close()

    # --- snapshots ------------------------------------------------------------------------------------------
    def snapshot(self, label: str, *, session: str | None = None) -> str | None:
        """Commit the working tree (untracked included, ignored excluded) as a checkpoint of the session.

        The session is `session`, else the constructor's, else the part of `label` before ':'. Returns the
        checkpoint's commit id, or None when no snapshot could be taken (git missing, over the size cap: see
        `notice`)."""
        sess = session or self.session or (label.split(":", 1)[0] if ":" in label else "default")
        if self._off:
            return None
        try:
            with self._using_store() as store:
                sha = store.commit(self._tree(store), label or "checkpoint")
                store.set_ref(f"{REF_PREFIX}{_ref_component(sess)}/{self._next_ns():020d}", sha)
                store.set_off(None)
                self._keep_under_cap(store, _ref_component(sess))
                return sha
        except (CheckpointError, OSError):
            return None

    def changed_since(self, sha: str) -> list[Path] | None:
        """The files that differ now from checkpoint `sha` — created, changed or deleted, by the tools or by
        commands — read from the store's stat cache as a snapshot would (no file is read twice); None when the
        store cannot tell."""
        if self._off:
            return None
        try:
            with self._using_store() as store:
                self._add_all(store)
                if self._since is not None and self._since[:2] == (sha, self._generation):
                    return list(self._since[2])  # the watch saw nothing change since it was worked out
                out = store.git("diff-index", "--cached", "--name-only", "-z", "--no-renames", sha,
                                *self._pathspec(store))
                changed = [store.layout.root / p for p in out.split("\0") if p]
                self._since = (sha, self._generation, changed)
                return list(changed)
        except (CheckpointError, OSError):
            return None

    @property
    def generation(self) -> int:
        """A number that has gone up if the files may have changed since `changed_since` last looked (it stays
        the same only while the tree's watch saw nothing change)."""
        return self._generation

    def _tree(self, store: Store, *, exact: bool = False) -> str:
        self._add_all(store, exact=exact)
        if self._last_tree is None or self._last_tree[0] != self._generation:  # the index moved since
            self._last_tree = (self._generation, store.git("write-tree").strip())
        return self._last_tree[1]

    def _next_ns(self) -> int:
        self._last_ns = max(time.time_ns(), self._last_ns + 1)
        return self._last_ns

    def _all(self, store: Store) -> list[Checkpoint]:
        """Every checkpoint in the store, newest first."""
        fields = "%(refname)%00%(objectname)%00%(tree)%00%(subject)"
        out = store.git("for-each-ref", f"--format={fields}", REF_PREFIX)
        res = []
        for line in out.splitlines():
            ref, sha, tree, label = (line.split("\0", 3) + ["", "", ""])[:4]
            session, _, ns = ref[len(REF_PREFIX):].rpartition("/")
            if session and ns.isdigit():
                res.append(Checkpoint(sha, session, label, int(ns) // 10**9, tree, ref))
        res.sort(key=lambda c: c.ref.rpartition("/")[2], reverse=True)
        return res

    def _drop(self, store: Store, refs: list[str]) -> None:
        if refs:
            store.git("update-ref", "--stdin", stdin="".join(f"delete {r}\n" for r in refs).encode())

    # --- bounded disk use -----------------------------------------------------------------------------------
    def _retain(self, store: Store) -> None:
        current = _ref_component(self.session) if self.session else None
        self._drop(store, [c.ref for c in expired(self._all(store), time.time(), current)])

    def _keep_under_cap(self, store: Store, session: str) -> None:
        """Over the cap: first compress (a first snapshot's pack of new files is stored uncompressed), then drop
        other sessions' and then this session's oldest checkpoints until the store fits; when the newest alone
        does not, turn checkpoints off (the snapshot just taken is dropped too)."""
        if store.size() <= self.max_bytes:
            return
        cps = self._all(store)
        mine = [c.ref for c in cps if c.session == session]
        for refs in ([], [c.ref for c in cps if c.session != session] + [UNDO_REF] + mine[CAP_KEEPS:],
                     mine[1:CAP_KEEPS]):
            self._drop(store, refs)
            store.gc()
            size = store.size()
            if size <= self.max_bytes:
                return
        self._drop(store, mine[:1])
        store.drop_index()
        store.gc()
        self._turn_off(store, f"one snapshot takes {_megabytes(size)}")

    # --- listing --------------------------------------------------------------------------------------------
    def sessions(self) -> list[tuple[str, int]]:
        """Sessions with checkpoints in this workspace, latest first: (session, time of its last snapshot)."""
        if not self.store_path.exists():
            return []
        with self._using_store() as store:
            return _sessions(self._all(store))

    def list(self, session: str | None = None) -> list[Checkpoint]:
        """Checkpoints of `session` (default: the most recent session), newest first."""
        if not self.store_path.exists():
            return []
        with self._using_store() as store:
            return self._of_session(store, session)

    def _of_session(self, store: Store, session: str | None) -> list[Checkpoint]:
        cps = self._all(store)
        if session is None:
            sess = _sessions(cps)
            session = sess[0][0] if sess else ""
        return [c for c in cps if c.session == _ref_component(session)] if session else []

    # --- restoring ------------------------------------------------------------------------------------------
    def restore(self, ref: str) -> list[str]:
        """Make the workspace byte-identical to checkpoint `ref` (modified, deleted and renamed files come
        back, files created since are removed; ignored files are kept). The current state is saved first as
        UNDO_REF in the store. Returns the paths changed (relative to the repository root)."""
        with self._using_store() as store:
            target = store.git("rev-parse", "--verify", ref + "^{commit}").strip()
            return self._restore(store, target, self._tree(store, exact=True))

    def _restore(self, store: Store, target: str, current_tree: str) -> list[str]:
        before = store.commit(current_tree, f"before restoring {target[:12]}")
        store.set_ref(UNDO_REF, before)
        target_tree = store.git("rev-parse", target + "^{tree}").strip()
        out = store.git("diff-tree", "-r", "-z", "--no-renames", "--name-status", target_tree, current_tree,
                        *self._pathspec(store)).split("\0")
        added, changed = [], []
        for status, path in zip(out[0::2], out[1::2], strict=False):
            if path:
                (added if status == "A" else changed).append(path)
        for rel in added:
            self._remove(store.layout.root / rel)
        if changed:
            self._check_out(store, target_tree, changed)
        return sorted(set(added) | set(changed))

    def _remove(self, p: Path) -> None:
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
        except FileNotFoundError:
            pass
        d = p.parent
        while d != self.workspace and d.is_relative_to(self.workspace):
            try:
                d.rmdir()
            except OSError:
                return
            d = d.parent

    def _check_out(self, store: Store, tree: str, paths: list[str]) -> None:
        """Write `paths` as they are in `tree` (content, mode, symlinks) through a throwaway index."""
        env = {"GIT_INDEX_FILE": str(store.path / "index.restore")}
        plain = {"core.splitIndex": "false"}  # a throwaway index needs no shared part to leave behind
        try:
            store.git("read-tree", tree, env=env, config=plain)
            for rel in paths:  # a directory now where a file was
                p = store.layout.root / rel
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
            store.git("checkout-index", "-f", "-z", "--stdin", env=env, config=plain,
                      stdin="\0".join(paths).encode("utf-8", "surrogateescape"))
        finally:
            (store.path / "index.restore").unlink(missing_ok=True)

    def undo(self, session: str | None = None, turns: int = 1) -> tuple[Checkpoint, list[str]]:
        """Restore the snapshot taken before the last `turns` turns of `session` (default: latest session),
        then drop the undone checkpoints so a second undo goes further back."""
        if turns < 1:
            raise CheckpointError("--turns must be at least 1")
        if not self.store_path.exists():
            raise self._nothing_error(session)
        with self._using_store() as store:
            cps = self._of_session(store, session)
            if not cps:
                raise self._nothing_error(session)
            # Snapshots that match the files as they are now mark turns that changed nothing (a read-only
            # command after the last edit): undoing them would do nothing, so "the last turn" means the last
            # one that did.
            current = self._tree(store, exact=True)
            skipped = next((i for i, c in enumerate(cps) if c.tree != current), len(cps))
            if skipped == len(cps):
                raise CheckpointError("nothing to undo: the files are as they were at every checkpoint")
            if turns > len(cps) - skipped:
                raise CheckpointError(f"only {len(cps) - skipped} checkpoint(s) with changes to undo in "
                                      f"session {cps[0].session}")
            cp = cps[skipped + turns - 1]
            changed = self._restore(store, cp.sha, current)
            self._drop(store, [c.ref for c in cps[:skipped + turns]])
        return cp, changed

    def session_diff(self, session: str | None = None) -> str:
        """Every change to the files since the session's first checkpoint, as one unified diff (what its turns
        and its shell commands created, changed and deleted). Empty when the session has no checkpoint."""
        if not self.store_path.exists():
            return ""
        with self._using_store() as store:
            cps = self._of_session(store, session)
            if not cps:
                return ""
            return store.git("diff", "--no-color", "--no-ext-diff", "--no-textconv", cps[-1].tree,
                             self._tree(store, exact=True), *self._pathspec(store))

    def _nothing_error(self, session: str | None) -> CheckpointError:
        msg = f"no checkpoints for session {session}" if session else "no checkpoints in this workspace"
        return CheckpointError(f"{msg} ({self.notice})" if self.notice else msg)


def _sessions(cps: list[Checkpoint]) -> list[tuple[str, int]]:
    newest: dict[str, Checkpoint] = {}
    for c in cps:  # newest first, so the first seen of each session is its last snapshot
        newest.setdefault(c.session, c)
    return [(s, c.time) for s, c in newest.items()]


def expired(cps: list[Checkpoint], now: float, current: str | None) -> list[Checkpoint]:
    """What the retention rules drop from `cps` (newest first): sessions beyond the KEEP_SESSIONS most recent,
    checkpoints beyond their session's KEEP_PER_SESSION newest, and any older than KEEP_DAYS; the current
    session is never dropped whole."""
    order = [s for s, _ in _sessions(cps)]
    kept_sessions = set(order[:KEEP_SESSIONS]) | ({current} if current else set())
    seen: dict[str, int] = {}
    out = []
    for c in cps:
        seen[c.session] = seen.get(c.session, 0) + 1
        too_old = now - c.time > KEEP_DAYS * 86400 and c.session != current
        if c.session not in kept_sessions or seen[c.session] > KEEP_PER_SESSION or too_old:
            out.append(c)
    return out


def create_worktree(repo: Path, name: str | None = None, *, branch: str | None = None,
                    base: str = "HEAD") -> tuple[Path, str]:
    """A new git worktree of `repo` on a new branch `ghostline/<name>` (or exactly `branch`, which must not
    exist yet), made from `base`, beside the repository in `<repo>.worktrees/<name>`. Returns (path, branch)."""
    repo = Path(os.path.realpath(repo))
    git = Git(repo)
    try:
        top = Path(git("rev-parse", "--show-toplevel").strip())
    except CheckpointError:
        raise CheckpointError(f"{repo} is not inside a git repository") from None
    if branch and git.succeeds("rev-parse", "--verify", "-q", f"refs/heads/{branch}"):
        raise CheckpointError(f"branch {branch} already exists")
    name = _ref_component(name or (branch.rsplit("/", 1)[-1] if branch else time.strftime("run-%Y%m%d-%H%M%S")))
    exact = branch
    branch = exact or f"ghostline/{name}"
    where = top.parent / f"{top.name}.worktrees"
    path = where / name
    i = 1
    while path.exists() or not exact and git.succeeds("rev-parse", "--verify", "-q", f"refs/heads/{branch}"):
        i += 1
        path = where / f"{name}-{i}"
        branch = exact or f"ghostline/{name}-{i}"
    if not git.succeeds("rev-parse", "--verify", "-q", f"{base}^{{commit}}"):
        if base == "HEAD":
            raise CheckpointError("the repository has no commit yet; commit once before using --worktree")
        raise CheckpointError(f"{base!r} is not a commit, branch or tag of {top}")
    where.mkdir(parents=True, exist_ok=True)
    try:
        git("worktree", "add", "-q", "-b", branch, str(path), base)
    except CheckpointError as e:
        raise CheckpointError(f"git worktree add failed: {str(e).split(': ', 1)[-1]}") from None
    return path, branch
