"""Where undo checkpoints live: a private git directory per workspace under Ghostline's data dir.

The store is outside the user's repository, so nothing is ever written into the user's `.git`. In a git
repository it borrows the repository's objects as alternates (committed and staged files cost nothing) and
starts its index from a copy of the repository's index: that index is the stat cache that makes a snapshot
cost what changed, since `git add -A` only re-hashes files whose stat changed. `info/exclude` is the
repository's plus DEFAULT_EXCLUDES; `info/attributes` switches every conversion off, so a snapshot holds the
bytes on disk.
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import os
import shutil
import subprocess
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ghostline.files import replace_file

# Never snapshotted unless tracked: regenerable dependency, cache and build directories. They are often huge
# and a package manager or build recreates them, so undo leaves them as they are.
DEFAULT_EXCLUDES = ("node_modules/", ".venv/", "venv/", "__pycache__/", "*.pyc", ".mypy_cache/",
                    ".pytest_cache/", ".tox/", "target/", "dist/", "build/", ".cache/")
# Highest-precedence attributes: no end-of-line conversion, clean/smudge filter (LFS) or $Id$ expansion, so
# what is stored and restored is exactly what is on disk.
RAW_ATTRIBUTES = "* -text -eol -crlf -filter -ident -working-tree-encoding\n"
_COMMON_CONFIG = {"core.quotepath": "off", "core.hooksPath": "/dev/null", "core.fsmonitor": "false"}
# A split index: each snapshot rewrites a small file with what changed, not the whole index of a big tree (and
# only this store's own git ever reads it, under its lock, so a replaced shared part can go at once).
STORE_CONFIG = {
    **_COMMON_CONFIG, "core.bare": "false", "core.autocrlf": "false", "core.safecrlf": "false",
    "core.fileMode": "true", "core.symlinks": "true", "core.splitIndex": "true",
    "splitIndex.sharedIndexExpire": "now", "core.untrackedCache": "false", "core.compression": "1",
    "core.bigFileThreshold": "1m", "gc.auto": "0", "gc.autoDetach": "false", "maintenance.auto": "false",
    # What no checkpoint reaches goes at the next gc, not two weeks later: every git here runs under the store's
    # lock, so no other process is between writing an object and referring to it.
    "gc.pruneExpire": "now",
}
# A first snapshot with many untracked files: stream them all into one pack (bulk check-in) instead of one
# loose object file each, about half the time and a third of the disk. Not for files the repository already
# has: bulk check-in compresses a blob before it finds out that it exists. After writing each blob it looks the
# blob up, and a miss re-reads every pack directory (no multi-pack index to open: one system call less a file).
BULK_CONFIG = {"core.bigFileThreshold": "1", "core.multiPackIndex": "false"}
BULK_MIN_FILES = 256
# Variables that would point git at another repository, index or object store than the one we mean.
_LOCATING_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR",
                 "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_PREFIX")
_IDENTITY = {"GIT_AUTHOR_NAME": "ghostline", "GIT_AUTHOR_EMAIL": "ghostline@localhost",
             "GIT_COMMITTER_NAME": "ghostline", "GIT_COMMITTER_EMAIL": "ghostline@localhost"}
OFF_FILE = "ghostline-off"
STALE_LOCK_S = 60


class CheckpointError(Exception):
    pass


# processes running for the store now: a background prime's `git add` must not outlive the program (as an
# orphan it would hold the store's index.lock against the next run; git removes its lock files when
# terminated), nor a first snapshot's packers (work nobody waits for any more).
_running: set[subprocess.Popen] = set()


@atexit.register
def _stop_running() -> None:
    for p in list(_running):
        p.terminate()


def run_for_store(argv: list[str], *, cwd: Path, env: Mapping[str, str] | None = None,
                  stdin: bytes | None = None, started: Callable[[], None] | None = None
                  ) -> tuple[int, bytes, bytes]:
    """(exit code, stdout, stderr) of a process working on a store, stopped if the program ends first. OSError
    when it cannot start. `started` is called once it runs (work of this process's to overlap with it)."""
    p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    _running.add(p)
    try:
        if started is not None:
            started()
        out, err = p.communicate(stdin)
    finally:
        _running.discard(p)
    return p.returncode, out, err


class Git:
    """git as a subprocess in one directory, with the flags and environment every call needs; a failure is a
    CheckpointError carrying git's last line of complaint."""

    def __init__(self, cwd: Path, env: Mapping[str, str] | None = None,
                 config: Mapping[str, str] | None = None):
        inherited = {k: v for k, v in os.environ.items() if k not in _LOCATING_ENV}
        self.cwd = cwd
        self.env = {**inherited, "GIT_TERMINAL_PROMPT": "0", **(env or {})}
        self.config = dict(config or {})

    def __call__(self, *args: str, stdin: bytes | None = None, ok: tuple[int, ...] = (0,),
                 config: Mapping[str, str] | None = None, env: Mapping[str, str] | None = None,
                 started: Callable[[], None] | None = None) -> str:
        flags = [x for k, v in {**self.config, **(config or {})}.items() for x in ("-c", f"{k}={v}")]
        try:
            code, out, err = run_for_store(["git", *flags, *args], cwd=self.cwd, env={**self.env, **(env or {})},
                                           stdin=stdin, started=started)
        except OSError as e:
            raise CheckpointError(f"git is not available: {e.strerror or e}") from None
        if code not in ok:
            lines = err.decode("utf-8", "replace").strip().splitlines()
            why = lines[-1] if lines else f"exit code {code}"
            raise CheckpointError(f"git {args[0]} failed: {why}")
        return out.decode("utf-8", "surrogateescape")

    def succeeds(self, *args: str) -> bool:
        try:
            self(*args)
        except CheckpointError:
            return False
        return True


@dataclass(frozen=True)
class Layout:
    """What a workspace's snapshots cover and, in a git repository, what the store borrows from it."""

    workspace: Path
    root: Path  # the work tree the store sees: the repository's top level, else the workspace itself
    pathspec: str  # the workspace relative to root, "." for all of it
    repo_objects: Path | None = None
    repo_index: Path | None = None
    repo_exclude: Path | None = None
    object_format: str = "sha1"  # the store must hash as the repository it borrows from does


def locate(workspace: Path) -> Layout:
    """The repository around `workspace`, if any (one git call)."""
    try:
        out = Git(workspace, config=_COMMON_CONFIG)("rev-parse", "--path-format=absolute", "--show-toplevel",
                                                    "--git-common-dir", "--git-path", "index",
                                                    "--show-object-format").splitlines()
    except CheckpointError:  # not in a work tree (no repository, a bare one, inside .git), or no git at all
        return Layout(workspace, workspace, ".")
    top, common = Path(os.path.realpath(out[0])), Path(out[1])
    rel = os.path.relpath(workspace, top)
    return Layout(workspace, top, "." if rel == "." else rel, common / "objects", Path(out[2]),
                  common / "info" / "exclude", out[3])


def store_dir(base: Path, workspace: Path) -> Path:
    digest = hashlib.sha256(str(workspace).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return base / f"{workspace.name[:40] or 'root'}-{digest}.git"


class Store:
    """One workspace's checkpoint git directory: creation, locking, the files git reads, size and clean-up."""

    def __init__(self, path: Path, layout: Layout):
        self.path, self.layout = path, layout
        self.index = path / "index"
        env = {**_IDENTITY, "GIT_DIR": str(path), "GIT_WORK_TREE": str(layout.root),
               "GIT_CONFIG_NOSYSTEM": "1"}
        self.git = Git(layout.root, env, STORE_CONFIG)
        self._dir_bytes: dict[str, tuple[int, int]] = {}

    def ensure(self) -> None:
        """Create the store if needed; bring alternates, excludes and attributes in line with the tree."""
        if not (self.path / "HEAD").exists():
            # refs as files whatever the user's default (set_ref writes them; git before 2.45 ignores the key)
            Git(self.path.parent, config={"init.defaultRefFormat": "files"})(
                "init", "--bare", "-q", f"--object-format={self.layout.object_format}", str(self.path))
        info = self.path / "info"
        info.mkdir(exist_ok=True)
        user_excludes = _read(self.layout.repo_exclude).rstrip("\n") if self.layout.repo_exclude else ""
        _write_if_changed(info / "exclude", "\n".join([user_excludes, *DEFAULT_EXCLUDES]) + "\n")
        _write_if_changed(info / "attributes", RAW_ATTRIBUTES)
        alternates = self.path / "objects" / "info" / "alternates"
        if self.layout.repo_objects:
            _write_if_changed(alternates, f"{self.layout.repo_objects}\n")
        else:
            alternates.unlink(missing_ok=True)

    def seed_index(self) -> None:
        """Start from a copy of the repository's index, so its stat data spares hashing what it already knows.
        The copy keeps the original's mtime: git's racy-entry check compares entries against it."""
        src = self.layout.repo_index
        if src is None or self.index.exists() or not src.exists():
            return
        for shared in src.parent.glob("sharedindex.*"):  # a split index needs its shared part beside it
            shutil.copy2(shared, self.path / shared.name)
        shutil.copy2(src, self.index)
        # An entry marked assume-unchanged would hide a change a turn makes to it: drop that mark here.
        tagged = self.git("ls-files", "-v", "-z").split("\0")
        assumed = [e[2:] for e in tagged if len(e) > 2 and e[0].islower()]
        if assumed:
            self.git("update-index", "-z", "--no-assume-unchanged", "--stdin",
                     stdin="\0".join(assumed).encode("utf-8", "surrogateescape"))

    def commit(self, tree: str, message: str) -> str:
        """A parentless commit of `tree`: the object `git commit-tree -m` writes (the same identity, time and
        message, so the same name), written here as a loose object, without starting git (~3 ms a snapshot)
        and without a user's commit.gpgSign asking gpg to sign a checkpoint."""
        if self.layout.object_format != "sha1":
            return self.git("commit-tree", tree, "-m", message).strip()
        when = int(time.time())
        offset = time.localtime(when).tm_gmtoff // 60
        zone = f"{'-' if offset < 0 else '+'}{abs(offset) // 60:02d}{abs(offset) % 60:02d}"
        author = f"{_IDENTITY['GIT_AUTHOR_NAME']} <{_IDENTITY['GIT_AUTHOR_EMAIL']}> {when} {zone}"
        committer = f"{_IDENTITY['GIT_COMMITTER_NAME']} <{_IDENTITY['GIT_COMMITTER_EMAIL']}> {when} {zone}"
        body = f"tree {tree}\nauthor {author}\ncommitter {committer}\n\n{message}\n"
        return self._write_loose(b"commit", body.encode("utf-8", "surrogateescape"))

    def _write_loose(self, kind: bytes, body: bytes) -> str:
        data = b"%s %d\0%s" % (kind, len(body), body)
        oid = hashlib.sha1(data).hexdigest()
        target = self.path / "objects" / oid[:2] / oid[2:]
        if not target.exists():
            target.parent.mkdir(exist_ok=True)
            replace_file(target, [zlib.compress(data, 1)], 0o444)
        return oid

    def set_ref(self, ref: str, oid: str) -> None:
        """Point `ref` (a name the store makes, under refs/) at `oid` by writing its file whole, as git's
        update-ref does under the lock this process holds (~2 ms a snapshot); through git for a store whose
        refs are not files."""
        if (self.path / "reftable").exists():
            self.git("update-ref", ref, oid)
            return
        path = self.path / ref
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_file(path, [f"{oid}\n".encode()])

    def index_locked(self) -> bool:
        return (self.path / "index.lock").exists()

    def drop_index(self) -> None:
        self.index.unlink(missing_ok=True)
        for shared in self.path.glob("sharedindex.*"):
            shared.unlink(missing_ok=True)

    def size(self) -> int:
        """Bytes on disk under objects/ (what the store holds itself; alternates are not counted). Cheap
        enough for every snapshot: a directory is read again only when its mtime moved (an object came or
        went)."""
        total = 0
        seen = {}
        for d in _subdirs(self.path / "objects"):
            try:
                mtime = os.stat(d).st_mtime_ns
            except OSError:
                continue
            cached = self._dir_bytes.get(d)
            seen[d] = cached if cached and cached[0] == mtime else (mtime, _files_bytes(d))
            total += seen[d][1]
        self._dir_bytes = seen
        return total

    def gc(self) -> None:
        """Drop what no checkpoint (nor the index) reaches any more, now."""
        self._bare_git()("gc", "--quiet", "--prune=now")

    def gc_auto(self) -> None:
        """Pack loose objects once they pile up (git decides: usually this returns at once)."""
        self._bare_git()("gc", "--auto", "--quiet", config={"gc.auto": "2000"})

    def _bare_git(self) -> Git:
        return Git(self.path, {"GIT_DIR": str(self.path)}, STORE_CONFIG)

    def set_off(self, reason: str | None) -> None:
        """Record (or clear) why checkpoints are off for this workspace, for `agent undo` to say."""
        if reason is None:
            (self.path / OFF_FILE).unlink(missing_ok=True)
        else:
            (self.path / OFF_FILE).write_text(reason + "\n", encoding="utf-8")


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Exclusive use of the store at `path`, across threads and processes (flock on a file of its own). A
    leftover index.lock can only be from a git that was killed (every git here runs under this lock)."""
    path.mkdir(parents=True, exist_ok=True)
    with open(path / "ghostline.lock", "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        os.utime(f.fileno())  # last use, for sweep_stale
        stale = path / "index.lock"
        try:
            if time.time() - stale.stat().st_mtime > STALE_LOCK_S:
                stale.unlink()
        except OSError:
            pass
        yield


def off_reason(path: Path) -> str | None:
    """Why checkpoints are off for the store at `path` (one line), or None."""
    return _read(path / OFF_FILE).strip() or None


def sweep_stale(base: Path, keep: Path, max_age_s: float) -> None:
    """Remove other workspaces' stores nobody used for `max_age_s` (a deleted or long-abandoned project)."""
    try:
        entries = [e for e in os.scandir(base) if e.name.endswith(".git") and e.path != str(keep)]
    except OSError:
        return
    cutoff = time.time() - max_age_s
    for e in entries:
        try:
            if os.stat(os.path.join(e.path, "ghostline.lock")).st_mtime < cutoff:
                shutil.rmtree(e.path, ignore_errors=True)
        except OSError:
            continue


def _subdirs(d: Path) -> list[str]:
    """`d` and the directories in it: objects/ holds xx/ (loose objects), pack/ and info/, files only."""
    try:
        return [str(d), *(e.path for e in os.scandir(d) if e.is_dir(follow_symlinks=False))]
    except OSError:
        return []


def _files_bytes(d: str) -> int:
    total = 0
    try:
        for e in os.scandir(d):
            if e.is_file(follow_symlinks=False):
                total += e.stat(follow_symlinks=False).st_size
    except OSError:
        pass
    return total


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return ""


def _write_if_changed(path: Path, text: str) -> None:
    if _read(path) != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
