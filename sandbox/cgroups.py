"""The pids cgroup each sandboxed command runs in (root only: it bounds fork bombs, which RLIMIT_NPROC does
not do for root), and its teardown.

Creating and removing a cgroup costs milliseconds, so a process keeps up to eight idle ones and reuses them;
they are removed when it exits. Removing an idle cgroup is one rmdir, which does not wait for the kernel to
free it (about 40 µs on cgroup v1, measured with bench/sandbox_exit.py). Cgroups left behind by a process that
was killed before its exit handlers ran are swept by the next one, the first time it looks for the root.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import uuid

POOL_SIZE = 8

_root: list[str | None] = []
_pool: list[str] = []  # idle per-command cgroups of this process


def pids_root() -> str | None:
    """Ghostline's directory in a writable pids cgroup hierarchy (v1 `pids` or v2 with +pids), or None."""
    if not _root:
        found = _find_root()
        if found:
            _sweep_stale(found)
        _root.append(found)
    return _root[0]


def _find_root() -> str | None:
    if sys.platform != "linux" or os.geteuid() != 0:
        return None
    for base in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup"):
        if not os.path.exists(os.path.join(base, "cgroup.procs")):
            continue
        if not (base.endswith("pids") or "pids" in _read(os.path.join(base, "cgroup.subtree_control"))):
            continue
        d = os.path.join(base, "ghostline")
        try:
            os.makedirs(d, exist_ok=True)
            if base.endswith("/cgroup"):
                with open(os.path.join(d, "cgroup.subtree_control"), "w") as f:
                    f.write("+pids")
            return d
        except OSError:
            continue
    return None


def _sweep_stale(root: str) -> None:
    """Remove the idle cgroups of Ghostline processes that are gone (named `<pid>-<random>` by their owner;
    a busy one stays: rmdir refuses a cgroup that still holds a process)."""
    try:
        names = os.listdir(root)
    except OSError:
        return
    for name in names:
        owner, _, _ = name.partition("-")
        if owner.isdigit() and not _alive(int(owner)):
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(root, name))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _read(p: str) -> str:
    try:
        with open(p) as f:
            return f.read()
    except OSError:
        return ""


def acquire(max_pids: int) -> str | None:
    """An empty cgroup holding at most `max_pids` processes for one command (None where there is none)."""
    root = pids_root()
    if not root:
        return None
    while _pool:
        d = _pool.pop()
        if os.path.isdir(d) and not _read(os.path.join(d, "cgroup.procs")).split():
            return d
    d = os.path.join(root, f"{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        os.mkdir(d)
        with open(os.path.join(d, "pids.max"), "w") as f:
            f.write(str(max_pids))
        return d
    except OSError:
        with contextlib.suppress(OSError):
            os.rmdir(d)
        return None


def is_v1(d: str) -> bool:
    """A v1 cgroup (it has a `tasks` file: a thread can join alone, without the kernel's global lock)."""
    return os.path.exists(os.path.join(d, "tasks"))


def kill_all(d: str | None) -> None:
    if not d:
        return
    for p in _read(os.path.join(d, "cgroup.procs")).split():
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(p), signal.SIGKILL)


def release(d: str | None) -> None:
    """Kill what is left in a command's cgroup and keep it for the next command (removed at exit)."""
    if not d:
        return
    kill_all(d)
    if len(_pool) < POOL_SIZE:
        _pool.append(d)
    else:
        with contextlib.suppress(OSError):
            os.rmdir(d)


def attach(d: str, pid: int, go_fd: int) -> None:
    """Move the waiting trampoline `pid` into the v2 cgroup `d`, then let it fork the command (which inherits it).

    Runs in a thread while the trampoline's interpreter starts: joining a cgroup through cgroup.procs waits for
    an RCU grace period (~10 ms, the largest single cost of a sandboxed command), which would otherwise be paid
    in series. (Under v1 the command's own thread joins through `tasks`, which needs no grace period.)
    Best effort: the command runs (bounded by rlimits) when the cgroup cannot be joined."""
    try:
        with contextlib.suppress(OSError), open(os.path.join(d, "cgroup.procs"), "w") as f:
            f.write(str(pid))
        with contextlib.suppress(OSError):
            os.write(go_fd, b"1")
    finally:
        os.close(go_fd)


def _drain_pool() -> None:
    for d in _pool:
        with contextlib.suppress(OSError):
            os.rmdir(d)
    _pool.clear()


atexit.register(_drain_pool)
