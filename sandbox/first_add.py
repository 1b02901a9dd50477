"""The first snapshot of a tree with many new (untracked) files, without git hashing them one by one.

`git add -A` costs ~110 µs a file of code here (a zlib stream per blob, SHA-1 with collision detection, a
look-up that re-reads the pack directories on each miss): 2 s for 18k files. Instead: git updates what the
repository tracks (`git add -u`: stat-checked, its objects borrowed), two fast_pack.py processes write the new
files' blobs as two packs, on two cores, and say each file's stat and object name, and those entries join the
store's index (git_index.py). The `git add -A` that follows then finds them all clean by stat; it remains the
authority, so a file that changed meanwhile, or one left out here, is still hashed by git itself. While it runs,
a thread here writes the trees of that index as a pack of their own: the `git write-tree` after it finds them
present instead of writing a loose object (and a directory for it) per tree, ~45 ms on 18k files. It still
works out every tree itself, so one that differs (a file git re-hashed) is written as usual.

Anything unexpected (an index git_index.py does not read, a packer that fails) leaves the work to that
`git add -A`, as before.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from ghostline.sandbox.checkpoint_store import CheckpointError, Store, run_for_store
from ghostline.sandbox.fast_pack import FAST_MAX_BYTES, OVER_LIMIT, TREE, write_objects
from ghostline.sandbox.git_index import (
    EXTENDED,
    Entry,
    IndexFormatError,
    in_index_order,
    read_entries,
    read_index,
    tree_objects,
    write_index,
)

log = logging.getLogger(__name__)

PACKERS = 2  # processes at once (this machine's cores; more than two gains little on small files)


def add_new_files(store: Store, new: list[str], pathspec: list[str], limit: int) -> TreeWriter | None:
    """Put the untracked files `new` (paths relative to the work tree, as `git ls-files -o` lists them) into the
    store's objects and index, when they hold at most `limit` bytes (each packer checks a file's size against
    its half of it before reading the file). Returns what writes the index's trees, to start with the `git add
    -A` that checks the result and to wait for before `git write-tree`; None when it left the files to git."""
    if store.layout.object_format != "sha1":
        return None
    try:
        store.git("add", "-u", "--ignore-errors", *pathspec, ok=(0, 1), config={"core.splitIndex": "false"})
        tracked = read_index(str(store.index)) if store.index.exists() else []
        packed = _pack(store, new, min(limit, FAST_MAX_BYTES) // PACKERS)
        if packed is None:
            return None
        known = {e.path for e in tracked}
        entries = in_index_order(tracked + [e for e in packed if e.path not in known])
        write_index(str(store.index), entries)
    except (CheckpointError, IndexFormatError, OSError, ValueError) as e:
        log.debug("new files left to git add: %s", e)
        return None
    return TreeWriter(store, entries)


class TreeWriter:
    """The trees of the index just written, as a pack of their own, from a thread: best effort (git's
    write-tree writes whatever tree it does not find). Started once git's check of the index runs: started
    before it, the thread's ~20 ms of Python would hold the GIL the start of that process needs."""

    def __init__(self, store: Store, entries: list[Entry]):
        self._thread = threading.Thread(target=_write_trees, args=(store, entries), name="checkpoints-trees",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wait(self) -> None:
        if self._thread.ident is not None:
            self._thread.join()


def _write_trees(store: Store, entries: list[Entry]) -> None:
    if any(e.stage or e.flags & EXTENDED for e in entries):  # a conflict or an intent-to-add: git's own trees
        return
    try:
        write_objects(str(store.path / "objects" / "pack"), TREE, tree_objects(entries))
    except OSError as e:
        log.debug("trees left to git write-tree: %s", e)


def _pack(store: Store, paths: list[str], limit: int) -> list[Entry] | None:
    """Packers over halves of `paths`: their entries; None when a half holds more than `limit` bytes."""
    files = [p for p in paths if not p.endswith("/")]  # a nested repository is git's to add, as a gitlink
    halves = [h for h in (files[i::PACKERS] for i in range(PACKERS)) if h]  # interleaved: similar sizes
    with ThreadPoolExecutor(PACKERS) as pool:
        outputs = list(pool.map(lambda half: _run_packer(store, half, limit), halves))
    if any(out is None for out in outputs):
        return None
    return [entry for out in outputs for entry in read_entries(out)]  # type: ignore[arg-type]


def _run_packer(store: Store, paths: list[str], limit: int) -> bytes | None:
    # -P: the work tree (the current directory) must not shadow Ghostline's own modules
    code, out, err = run_for_store([sys.executable, "-P", "-m", "ghostline.sandbox.fast_pack",
                                    str(store.path / "objects" / "pack"), str(limit)], cwd=store.layout.root,
                                   stdin=b"\0".join(os.fsencode(p) for p in paths))
    if code == OVER_LIMIT:
        return None
    if code != 0:
        raise CheckpointError(f"fast_pack failed: {err.decode(errors='replace').strip()[-300:]}")
    return out


def untracked_paths(store: Store, pathspec: list[str]) -> list[str]:
    """The files `git add -A` would add as new."""
    return [p for p in store.git("ls-files", "-z", "-o", "--exclude-standard", *pathspec).split("\0") if p]


def sizes(store: Store, paths: list[str]) -> int:
    """Their bytes on disk (lstat: a link's own size; 0 for one that went away)."""
    root = os.open(store.layout.root, os.O_RDONLY | os.O_DIRECTORY)
    total = 0
    try:
        for rel in paths:
            try:
                total += os.lstat(rel, dir_fd=root).st_size
            except OSError:
                pass
    finally:
        os.close(root)
    return total
