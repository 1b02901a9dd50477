"""A file replaced whole: readers see the old one or the new one, never a part of it.

Below every package, like dirs.py: the caches in the data dir (compaction's encoding tables, the SDK deferral
checks), the checkpoint store's packs and index, the remembered permissions, compaction's kept tool outputs, the
TUI's prompt history and batch reports use it. It imports no `tempfile` (~9 ms): the first snapshot's packer
processes (sandbox/fast_pack.py) write through it.
"""

from __future__ import annotations

import _thread
import os

IOV_MAX = 1024  # buffers per writev(): Linux's limit


def replace_file(path: str | os.PathLike[str], parts: list[bytes], mode: int = 0o644) -> None:
    """Write `parts` to a new file beside `path` (named for this process and thread), then rename it over
    `path`; on failure the new file goes and `path` is as it was."""
    path = os.fspath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}-{_thread.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        try:
            write_all(fd, parts)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_all(fd: int, parts: list[bytes]) -> None:
    """Write `parts` in order, straight from their buffers (a pack's thousands of parts: no copy into a
    buffered writer's, a third less time)."""
    for start in range(0, len(parts), IOV_MAX):
        batch = parts[start:start + IOV_MAX]
        done = os.writev(fd, batch)
        if done < sum(map(len, batch)):  # a short write (a full disk reports ENOSPC on the next one)
            rest = memoryview(b"".join(batch))[done:]
            while rest:
                rest = rest[os.write(fd, rest):]
