"""A file replaced whole: readers see the old one or the new one, never a part of it.

Below every package, like dirs.py: the caches in the data dir (compaction's encoding tables, the SDK deferral
checks) and the checkpoint store's packs and index use it. It imports no `tempfile` (~9 ms): the first
snapshot's packer processes (sandbox/fast_pack.py) write through it.
"""

from __future__ import annotations

import _thread
import os


def replace_file(path: str | os.PathLike[str], parts: list[bytes], mode: int = 0o644) -> None:
    """Write `parts` to a new file beside `path` (named for this process and thread), then rename it over
    `path`; on failure the new file goes and `path` is as it was."""
    path = os.fspath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}-{_thread.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.writelines(parts)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
