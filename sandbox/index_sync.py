"""Which files a checkpoint must look at: every one (`git add -A`, a stat of each file the store's index knows and
a walk for new ones: ~25 ms on an 18k-file tree), or only the paths a TreeWatch saw change since the last
snapshot (a few ms, whatever the tree's size).

The paths alone are enough only when the store's index is exactly as this process left it after a snapshot
that came after the watch started: so the first snapshot is always a full one, and so is any snapshot after
another process (another session in the same workspace) used the store, or after the watch lost events (see
sandbox/tree_watch.py), or a .gitignore changed (what a snapshot leaves out is then different).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from ghostline.sandbox.checkpoint_store import DEFAULT_EXCLUDES, CheckpointError, Store
from ghostline.sandbox.tree_watch import Skip, TreeWatch

# Directories a snapshot leaves out by name when untracked (DEFAULT_EXCLUDES): one that appears during the run
# is untracked, so it is not watched (a `pip install` into .venv/ then costs no events).
DEFAULT_DIR_NAMES = frozenset(e.rstrip("/") for e in DEFAULT_EXCLUDES if e.endswith("/"))
# A few paths' `git add`: preloading the index starts threads to stat the entries the pathspecs match, which
# costs more than the stats (~3 ms of each turn's ~10 on an 18k-file tree).
NARROW_ADD_CONFIG = {"core.preloadIndex": "false"}


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class IndexSync:
    """A workspace's TreeWatch (when one could start) and what the store's index was when this process last
    left it."""

    def __init__(self) -> None:
        self._watch: TreeWatch | None = None
        self._left: tuple[int, int, int] | None = None  # the index's identity after our last use of the store
        self._whole = False  # a full pass came after the watch started and after anything it could not tell
        # The last sync looked at the watch's file paths only: what it put in the index was there when the watch
        # was last drained, so a file created and removed since then cannot be in it.
        self._narrow = False

    def watch(self, store: Store, excluded: list[Path]) -> None:
        """Start watching the workspace (before the full snapshot that the watch's paths will be relative to).
        Directories git ignores as a whole, and `excluded` ones, get no watch."""
        if self._watch is None:
            root = store.layout.root / store.layout.pathspec
            try:
                skip = self._skip_rule(store, root, excluded)
            except CheckpointError:  # git cannot say what it ignores: snapshots look at every file, as before
                return
            self._watch = TreeWatch.start(root, skip)
            self._whole = False

    def _skip_rule(self, store: Store, root: Path, excluded: list[Path]) -> Skip:
        out = store.git("ls-files", "-z", "-o", "-i", "--exclude-standard", "--directory", "--",
                        store.layout.pathspec)
        ignored = {os.path.relpath(store.layout.root / p, root).replace(os.sep, "/")
                   for p in out.split("\0") if p.endswith("/")}
        ignored |= {os.path.relpath(d, root).replace(os.sep, "/") for d in excluded if d.is_relative_to(root)}

        def skip(rel: str, new: bool) -> bool:
            return rel in ignored or (new and rel.rpartition("/")[2] in DEFAULT_DIR_NAMES)

        return skip

    def full_pass_done(self) -> None:
        """Every file was looked at (after the `changes()` that said None): the watch's paths are enough again."""
        self._whole, self._narrow = True, False

    def left(self, store: Store) -> None:
        """This process is done with the store for now: remember its index as it is."""
        self._left = _identity(store.index)

    def changes(self, store: Store, excluded: list[Path]) -> list[str] | None:
        """The paths (relative to the repository's top) to look at for the next snapshot; None: look at every
        file. Always drains the watch: what changes from now on is in the next answer."""
        if self._watch is None:
            return None
        paths = self._watch.take(transient=not self._narrow)
        if paths is not None and any(p.rpartition("/")[2] == ".gitignore" for p in paths):
            root = store.layout.root / store.layout.pathspec
            with contextlib.suppress(CheckpointError):  # else the old rule stands: it watches more, not less
                self._watch.refresh(self._skip_rule(store, root, excluded))
            paths = None
        if paths is None or not self._whole or self._left is None or self._left != _identity(store.index):
            self._whole = False
            return None
        if not paths:
            self._narrow = True  # nothing came or went since the last drain: the index is the tree as it was then
        prefix = "" if store.layout.pathspec == "." else store.layout.pathspec + "/"
        return [prefix + p for p in paths]

    def add(self, store: Store, paths: list[str], tail: list[str]) -> bool:
        """Bring the index in line with the files at `paths` (`tail`: pathspecs to leave out); False when git
        could not do it from the paths alone (one is inside a nested repository, gone meanwhile...): the caller
        then looks at every file.

        One `git add` does it, gone paths included: a gone path may not be in the index (an ignored file, one
        made and removed between two looks), and a pathspec that matches nothing stops `git add`, so for a gone
        path its nearest directory still there is looked at as a whole, not the path itself: a stat of each file
        under it, cheaper than a second git process (~8 ms) unless that directory holds most of the tree. Only a
        path gone from the workspace's top directory takes a `git rm` of its own."""
        root, top = store.layout.root, "" if store.layout.pathspec == "." else store.layout.pathspec
        present, whole, gone = [], set(), []
        for p in paths:
            if os.path.lexists(root / p):
                present.append(p)
            elif (d := _nearest_dir(root, p, top)) is not None:
                whole.add(d)
            else:
                gone.append(p)
        try:
            if gone:  # files or whole directories; a path the index does not hold is passed over
                store.git("rm", "-r", "-f", "-q", "--cached", "--ignore-unmatch", "--pathspec-from-file=-",
                          "--pathspec-file-nul", stdin=_nul([f":(literal){p}" for p in gone]))
            if present or whole:
                spec = [f":(literal){p}" for p in [*present, *sorted(whole)]] + tail
                # exit code 1: an ignored path among them, or an unreadable file
                store.git("add", "-A", "--ignore-errors", "--pathspec-from-file=-", "--pathspec-file-nul",
                          stdin=_nul(spec), ok=(0, 1), config=NARROW_ADD_CONFIG)
        except CheckpointError:
            return False
        self._narrow = not whole and not any(os.path.isdir(root / p) and not os.path.islink(root / p)
                                             for p in present)
        return True

    def close(self) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None


def _nearest_dir(root: Path, path: str, top: str) -> str | None:
    """The nearest directory above `path` that is still there (not a link), below `top`; None when only `top`
    is left."""
    parent = path.rpartition("/")[0]
    while parent and parent != top:
        if os.path.isdir(root / parent) and not os.path.islink(root / parent):
            return parent
        parent = parent.rpartition("/")[0]
    return None


def _nul(items: list[str]) -> bytes:
    return "\0".join(items).encode("utf-8", "surrogateescape")
