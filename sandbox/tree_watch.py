"""What changed under a directory since the last look, told by inotify (Linux), so that a checkpoint hashes the
paths that changed instead of stat-ing every file of the tree (sandbox/checkpoints.py).

A watch is put on every directory of the tree that can hold something a snapshot keeps (`skip` names the
others: wholly ignored directories, `.git`). Events are not read by a thread: `take()` drains the kernel's
queue when asked. The kernel queues an event inside the system call that changed the file, so a change made
before `take()` is always in what it returns — by the file tools, a shell command (sandboxed or not: the watch
is on the inode, whatever mount namespace wrote it), or the user's editor.

Where the events cannot say everything, `take()` returns None ("unknown": the caller stats the whole tree, as
without a watch): the queue overflowed (a `git checkout` of thousands of files), or the tree's root went away.
A directory created, moved in, removed or moved out is reported as one path (the caller looks at all that
is under it: what was created in it came before its watch, what was in it is gone); one that appears gets
watches at once. Not seen: writes through a memory map, and through a hard link from outside the
tree; `Checkpoints` stats the whole tree again for undo and `/diff`, where exactness matters most.
"""

from __future__ import annotations

import atexit
import errno
import logging
import os
import shutil
import subprocess
import threading
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

MAX_DIRS = 20_000  # more directories than this: no watch (its walk costs ~16 µs a directory, at the start of a run)
MAX_CHANGES = 5_000  # more changed paths than this at one take: "unknown" (one full pass beats listing them)


def _inotify() -> ModuleType | None:
    """inotify_simple, imported by the first watch rather than with this module (with ctypes, ~7 ms of a run's
    start); None off Linux, where there is no watch and every snapshot stats the tree."""
    try:
        import inotify_simple
    except ImportError:  # pragma: no cover - not on Linux
        return None
    return inotify_simple


def _mask(f: Any) -> int:
    return int(f.MODIFY | f.ATTRIB | f.CREATE | f.DELETE | f.MOVED_FROM | f.MOVED_TO | f.DELETE_SELF
               | f.MOVE_SELF | f.EXCL_UNLINK | f.ONLYDIR | f.DONT_FOLLOW)


Skip = Callable[[str, bool], bool]  # (directory relative to root, whether it appeared after the start) -> unwatched


class TreeWatch:
    """inotify watches on the directories under `root`. `skip(rel, new)` says whether directory `rel` (relative
    to root, "/"-separated; `new`: created after the watch started) is left unwatched; `.git` never is watched."""

    def __init__(self, root: Path, skip: Skip, inotify: ModuleType):
        self.root = root
        self._skip = skip
        self._flags = inotify.flags
        self._ino = inotify.INotify(nonblocking=True)
        self._mask = _mask(self._flags)
        self._dirs: dict[int, str] = {}  # watch descriptor -> its directory, relative to root ("" is root)
        self._changed: set[str] = set()
        self._born: set[str] = set()  # paths whose first event since the last take was their creation
        self._lost = False  # events were lost since the last take: it cannot say what changed
        self._broken = False  # the root itself went away: nothing the watch says can be trusted any more
        self._new = False  # the first walk is over: directories found from now on are new
        self._lock = threading.Lock()
        _open_at_exit(self)

    @classmethod
    def start(cls, root: Path, skip: Skip = lambda rel, new: False) -> TreeWatch | None:
        """Watch every directory under `root`; None when that cannot be done (not Linux, the user's watch limit,
        more than MAX_DIRS directories)."""
        inotify = _inotify()
        if inotify is None:
            return None
        try:
            watch = cls(root, skip, inotify)
        except OSError as e:  # EMFILE: the user's inotify instances (fs.inotify.max_user_instances)
            log.debug("no tree watch on %s: %s", root, e)
            return None
        try:
            watch._watch_tree("")
            watch._new = True
        except (OSError, _TooBig) as e:  # ENOSPC: the user's fs.inotify.max_user_watches
            watch.close()
            log.debug("no tree watch on %s: %s", root, e or f"over {MAX_DIRS} directories")
            return None
        return watch

    def close(self) -> None:
        self._ino.close()

    def fileno(self) -> int | None:
        """The inotify descriptor, None once closed."""
        return None if self._ino.closed else self._ino.fileno()

    @property
    def watched_dirs(self) -> int:
        return len(self._dirs)

    def refresh(self, skip: Skip) -> None:
        """New rules for what to skip (a .gitignore changed): watch what they no longer skip."""
        with self._lock:
            self._skip = skip
            self._watch_tree("")

    def take(self, transient: bool = True) -> set[str] | None:
        """The paths (relative to root) created, changed or deleted since the last take; None when the events
        cannot tell (see the module's doc), after which the watch is whole again for the next take. Without
        `transient`, paths created and removed again since the last take (an editor's or a tool's temporary
        file, a command's scratch directory) are left out: they were not there then and are not there now."""
        with self._lock:
            if self._broken:
                return None
            changed, lost = set(), True
            try:
                for event in self._read():
                    self._fold(event.wd, event.mask, event.name)
                changed, lost = self._changed, self._lost or len(self._changed) > MAX_CHANGES
                if not transient:
                    changed -= {p for p in self._born if not os.path.lexists(self.root / p)}
                self._changed, self._born, self._lost = set(), set(), False
                if lost and not self._broken:
                    self._watch_tree("")  # directories created while events were dropped have no watch yet
            except (OSError, _TooBig) as e:  # out of watches for the directories that came: no whole watch
                log.debug("tree watch on %s given up: %s", self.root, e)
                self._broken = True
            return None if lost or self._broken else changed

    def _read(self) -> Iterable:
        try:
            return self._ino.read(timeout=0)
        except OSError as e:
            log.debug("tree watch read failed: %s", e)
            self._lost = True
            return ()

    # --- events ---------------------------------------------------------------------------------------------
    def _fold(self, wd: int, mask: int, name: str) -> None:
        if mask & self._flags.Q_OVERFLOW:
            self._lost = True
            return
        parent = self._dirs.get(wd)
        if parent is None:  # a watch already dropped: its events say nothing new
            return
        if mask & self._flags.IGNORED:
            self._broken = self._broken or parent == ""
            self._forget(parent)
        elif mask & (self._flags.DELETE_SELF | self._flags.MOVE_SELF):
            self._broken = self._broken or parent == ""
        elif mask & self._flags.ISDIR:
            self._fold_directory(mask, _join(parent, name))
        else:
            self._note(_join(parent, name), mask)

    def _fold_directory(self, mask: int, rel: str) -> None:
        if mask & (self._flags.CREATE | self._flags.MOVED_TO):
            if not self._skipped(rel):
                self._note(rel, mask)
                self._watch_tree(rel)
        elif mask & (self._flags.DELETE | self._flags.MOVED_FROM):
            self._changed.add(rel)
            self._forget(rel, remove=bool(mask & self._flags.MOVED_FROM))
        # ATTRIB, MODIFY on a directory: nothing a snapshot holds

    def _note(self, rel: str, mask: int) -> None:
        # Only a creation says the name did not exist before: a rename onto it may replace a file that did.
        if mask & self._flags.CREATE and rel not in self._changed:
            self._born.add(rel)
        self._changed.add(rel)

    def _forget(self, rel: str, remove: bool = False) -> None:
        """Drop the watches of `rel` and below (a directory moved away keeps its watches, under a stale name)."""
        prefix = rel + "/"
        for wd in [wd for wd, d in self._dirs.items() if d == rel or d.startswith(prefix)]:
            del self._dirs[wd]
            if remove:
                try:
                    self._ino.rm_watch(wd)
                except OSError:
                    pass

    # --- watches --------------------------------------------------------------------------------------------
    def _skipped(self, rel: str) -> bool:
        return rel.rpartition("/")[2] == ".git" or self._skip(rel, self._new)

    def _watch_tree(self, top: str) -> None:
        """Watch `top` and every directory below it. The watch goes on before the listing, so a directory created
        meanwhile is either listed or reported."""
        stack = [top]
        while stack:
            rel = stack.pop()
            try:
                wd = self._ino.add_watch(str(self.root / rel) if rel else str(self.root), self._mask)
            except OSError as e:
                if e.errno == errno.ENOSPC:
                    raise
                continue  # gone already, or not a directory any more: its parent's events say so
            self._dirs[wd] = rel
            if len(self._dirs) > MAX_DIRS:
                raise _TooBig
            stack.extend(child for child in _subdirectories(self.root, rel) if not self._skipped(child))


class _TooBig(Exception):
    pass


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def _subdirectories(root: Path, rel: str) -> list[str]:
    try:
        with os.scandir(root / rel if rel else root) as entries:
            return [_join(rel, e.name) for e in entries if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


_open_watches: weakref.WeakSet[TreeWatch] = weakref.WeakSet()
_last_closer: list[subprocess.Popen[bytes]] = []  # kept: its stdin must stay open until this process ends


def _open_at_exit(watch: TreeWatch) -> None:
    if not _open_watches and not _last_closer:
        atexit.register(close_after_exit)
    _open_watches.add(watch)


def close_after_exit() -> None:
    """At exit the kernel closes the inotify descriptors, and the last close of one waits for the kernel to
    finish freeing its watches (fsnotify_destroy_group: 5-20 ms here, one time in three), which the process
    that started the run waits out too. A `cat` given copies of them, reading a pipe this process holds open,
    makes that last close its own: it reads end-of-file once this process has exited, then exits itself."""
    fds = [fd for fd in (w.fileno() for w in list(_open_watches)) if fd is not None]
    cat = shutil.which("cat")
    if not fds or cat is None or _last_closer:
        return
    try:
        _last_closer.append(subprocess.Popen([cat], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL, pass_fds=fds, start_new_session=True))
    except OSError:
        log.debug("no process to close the tree watches after exit", exc_info=True)
