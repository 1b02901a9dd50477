"""Running one shell command the way the bash tool does: confined, time- and output-limited, killable."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from ghostline.sandbox.envscrub import scrub_env
from ghostline.sandbox.modes import SANDBOX_LEVELS, SANDBOX_MODES
from ghostline.sandbox.paths import PROTECTED_NAMES, protected_dirs

FULL_OUTPUT_CAP = 64 * 1024 * 1024  # bytes kept on disk for a truncated output

# Credentials a sandboxed command has no business reading (hidden under bubblewrap).
HIDDEN_HOME_ENTRIES = (".ssh", ".aws", ".gnupg", ".netrc", ".git-credentials", ".pypirc", ".npmrc", ".docker",
                       ".kube", ".config/gcloud", ".config/gh", ".azure", ".password-store")


@dataclass
class CommandResult:
    exit_code: int
    output: str  # stdout and stderr interleaved; head and tail kept around a marker when over the limit
    truncated: bool
    timed_out: bool
    duration_ms: int
    full_output_path: str | None
    level: str  # bubblewrap | landlock | none


class SandboxError(Exception):
    """The sandbox could not be set up (bad mode, forced layer missing, ...)."""


# --- layer detection ------------------------------------------------------------------------------------
_probe_cache: dict[str, tuple[bool, str]] = {}


def _bwrap_path() -> str | None:
    return shutil.which("bwrap")


def probe_bubblewrap() -> tuple[bool, str]:
    """Does bubblewrap work here (namespaces allowed)? Probed once per process."""
    if "bubblewrap" in _probe_cache:
        return _probe_cache["bubblewrap"]
    exe = _bwrap_path()
    if not exe:
        res = (False, "bwrap not found on PATH")
    else:
        try:
            p = subprocess.run(
                [exe, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
                 "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session",
                 "--cap-drop", "ALL", "--", "true"],
                stdin=subprocess.DEVNULL, capture_output=True, timeout=10,
            )
            if p.returncode == 0:
                res = (True, exe)
            else:
                err = p.stderr.decode(errors="replace").strip().splitlines()
                res = (False, f"bwrap failed: {err[-1] if err else 'exit ' + str(p.returncode)}")
        except (OSError, subprocess.TimeoutExpired) as e:
            res = (False, f"bwrap failed: {e}")
    _probe_cache["bubblewrap"] = res
    return res


def landlock_abi() -> int:
    """The Landlock ABI version of the running kernel (0: unavailable)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    v = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return int(v) if v > 0 else 0


def probe_landlock() -> tuple[bool, str]:
    if "landlock" in _probe_cache:
        return _probe_cache["landlock"]
    if sys.platform != "linux":
        res = (False, "not Linux")
    else:
        try:
            abi = landlock_abi()
        except OSError as e:
            abi, why = 0, str(e)
        else:
            why = "kernel has no Landlock (or it is disabled)"
        if abi <= 0:
            res = (False, why)
        else:
            ok, msg = _probe_trampoline()
            res = (True, f"ABI {abi}") if ok else (False, msg)
    _probe_cache["landlock"] = res
    return res


def _probe_trampoline() -> tuple[bool, str]:
    spec = {"argv": ["true"], "landlock": {"ro": ["/"], "rw": [], "net": False}, "seccomp": {"net": False}}
    try:
        p = subprocess.run(_trampoline_argv(spec), stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, str(e)
    if p.returncode != 0:
        err = p.stderr.decode(errors="replace").strip().splitlines()
        return False, err[-1] if err else f"exit {p.returncode}"
    return True, ""


def forced_level() -> str | None:
    v = os.environ.get("GHOSTLINE_SANDBOX", "").strip().lower()
    aliases = {"bwrap": "bubblewrap", "plain": "none", "off": "none"}
    v = aliases.get(v, v)
    return v if v in SANDBOX_LEVELS else None


def detect_level() -> str:
    """The strongest layer that works here ("bubblewrap" | "landlock" | "none"), or the one forced by
    GHOSTLINE_SANDBOX (a forced layer that does not work falls to the next weaker one that does)."""
    order = list(SANDBOX_LEVELS)
    forced = forced_level()
    if forced:
        order = order[order.index(forced):]
    for level in order:
        if level == "none":
            return "none"
        ok, _ = probe_bubblewrap() if level == "bubblewrap" else probe_landlock()
        if ok:
            return level
    return "none"


def check() -> dict:
    """What works here: each layer with a reason, and the level in force."""
    bw = probe_bubblewrap()
    ll = probe_landlock()
    return {
        "layers": {
            "bubblewrap": {"available": bw[0], "detail": bw[1]},
            "landlock": {"available": ll[0], "detail": ll[1]},
            "none": {"available": True, "detail": "plain processes (policy asks more)"},
        },
        "forced": forced_level(),
        "level": detect_level(),
        "seccomp": sys.platform == "linux" and os.uname().machine in ("x86_64", "aarch64"),
        "pids_cgroup": _cgroup_root() is not None,
    }


# --- the trampoline ---------------------------------------------------------------------------------------
_tramp_src: str | None = None


def _trampoline_source() -> str:
    global _tramp_src
    if _tramp_src is None:
        _tramp_src = (Path(__file__).with_name("_trampoline.py")).read_text()
    return _tramp_src


_TRAMP_BOOT = "import sys,marshal;exec(marshal.loads(bytes.fromhex(sys.argv.pop(1))))"
_tramp_code: list[str] = []


def _trampoline_argv(spec: dict) -> list[str]:
    """The command line of the trampoline running `spec`.

    The trampoline is compiled once per process and handed over marshalled (hex: argv cannot hold NUL bytes);
    compiling its source in every command cost ~3 ms. The child is this very interpreter, so the marshal format
    matches. The code comes from this process's memory, never from a file the command could rewrite (a cached
    .pyc inside a writable workspace would let one command escape the next one's sandbox). The spec is
    marshalled too: no eval(), no json (which would import re).
    """
    if not _tramp_code:
        import marshal

        code = marshal.dumps(compile(_trampoline_source(), "<ghostline-trampoline>", "exec")).hex()
        _tramp_code.append(code if len(code) < 120_000 else "")  # one argv string may hold 128 KiB at most
    if not _tramp_code[0]:
        return [sys.executable, "-I", "-S", "-c", _trampoline_source(), _marshal_hex(spec)]
    return [sys.executable, "-I", "-S", "-c", _TRAMP_BOOT, _tramp_code[0], _marshal_hex(spec)]


def _marshal_hex(obj: object) -> str:
    import marshal

    return marshal.dumps(obj).hex()


# --- pids cgroup (root only; bounds fork bombs, which RLIMIT_NPROC does not do for root) -------------------
_cg_root: list[str | None] = []


def _cgroup_root() -> str | None:
    if _cg_root:
        return _cg_root[0]
    found = None
    if sys.platform == "linux" and os.geteuid() == 0:
        for base in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup"):
            if os.path.exists(os.path.join(base, "cgroup.procs")) and (
                    base.endswith("pids") or "pids" in _read(os.path.join(base, "cgroup.subtree_control"))):
                d = os.path.join(base, "ghostline")
                try:
                    os.makedirs(d, exist_ok=True)
                    if base.endswith("/cgroup"):
                        with open(os.path.join(d, "cgroup.subtree_control"), "w") as f:
                            f.write("+pids")
                    found = d
                    break
                except OSError:
                    continue
    _cg_root.append(found)
    return found


def _read(p: str) -> str:
    try:
        with open(p) as f:
            return f.read()
    except OSError:
        return ""


_cg_pool: list[str] = []  # idle per-command cgroups, reused (creating and removing one costs milliseconds)


def _make_cgroup(max_pids: int) -> str | None:
    root = _cgroup_root()
    if not root:
        return None
    while _cg_pool:
        d = _cg_pool.pop()
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


def _cgroup_v1(d: str) -> bool:
    """A v1 cgroup (it has a `tasks` file: a thread can join alone, without the kernel's global lock)."""
    return os.path.exists(os.path.join(d, "tasks"))


def _kill_cgroup(d: str | None) -> None:
    if not d:
        return
    for p in _read(os.path.join(d, "cgroup.procs")).split():
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(p), signal.SIGKILL)


def _remove_cgroup(d: str | None) -> None:
    """Kill what is left in a command's cgroup and return it to the pool (removed at exit)."""
    if not d:
        return
    _kill_cgroup(d)
    if len(_cg_pool) < 8:
        _cg_pool.append(d)
    else:
        with contextlib.suppress(OSError):
            os.rmdir(d)


def _drain_pool() -> None:
    for d in _cg_pool:
        with contextlib.suppress(OSError):
            os.rmdir(d)
    _cg_pool.clear()


atexit.register(_drain_pool)


# --- building the command line ----------------------------------------------------------------------------
def _rlimits(timeout: float) -> dict[str, int]:
    cpus = os.cpu_count() or 1
    nproc = _user_process_count() + 1024
    return {
        "RLIMIT_CPU": int(math.ceil(timeout * cpus)) + 10,
        "RLIMIT_FSIZE": 4 * 1024 ** 3,
        "RLIMIT_NPROC": nproc,
        "RLIMIT_CORE": 0,
    }


_nproc_cache: list[tuple[float, int]] = []


def _user_process_count() -> int:
    """Processes of this user now (RLIMIT_NPROC counts them all); cached for a few seconds."""
    if os.geteuid() == 0:
        return 0  # not enforced for root; the pids cgroup bounds fork bombs instead
    now = time.monotonic()
    if _nproc_cache and now - _nproc_cache[0][0] < 5:
        return _nproc_cache[0][1]
    uid = os.getuid()
    n = 0
    try:
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    if os.stat(f"/proc/{name}").st_uid == uid:
                        n += 1
                except OSError:
                    pass
    except OSError:
        n = 4096
    _nproc_cache[:] = [(now, n)]
    return n


def _ensure_protected(workspace: Path) -> list[str]:
    """Create missing protected dirs (.git, .ghostline) so the command cannot create them; returns those made."""
    made = []
    for n in PROTECTED_NAMES:
        p = workspace / n
        if not os.path.lexists(p):
            with contextlib.suppress(OSError):
                p.mkdir()
                made.append(str(p))
    return made


def _protected_in(workspace: Path) -> list[str]:
    return [str(workspace / n) for n in PROTECTED_NAMES if os.path.lexists(workspace / n)]


def _bwrap_argv(exe: str, command: str, *, cwd: Path, workspace: Path, mode: str, network: bool,
                tmpdir: str) -> list[str]:
    a = [exe, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    if not network:
        a += ["--tmpfs", "/run"]  # local daemons' sockets (resolvers, D-Bus) are network too
    ws = str(workspace)
    if mode == "workspace-write":
        a += ["--bind", ws, ws]
        for p in _protected_in(workspace):
            a += ["--ro-bind", p, p]
    elif mode == "read-only":
        a += ["--ro-bind", ws, ws]
    if not _within_any(cwd, workspace):
        a += ["--ro-bind", str(cwd), str(cwd)]
    # After the workspace binds, so that a workspace holding them ($HOME) does not expose them again.
    for p in _hidden_paths(workspace):
        if os.path.isdir(p) and not os.path.islink(p):
            a += ["--tmpfs", p, "--remount-ro", p]
        elif os.path.isfile(p) and not os.path.islink(p):
            a += ["--ro-bind", "/dev/null", p]
    a += ["--unshare-all", "--unshare-user", "--disable-userns"]
    if network:
        a += ["--share-net"]
    a += ["--die-with-parent", "--new-session", "--cap-drop", "ALL", "--setenv", "TMPDIR", "/tmp",
          "--chdir", str(cwd), "--", "/bin/bash", "-c", command]
    return a


def _hidden_paths(workspace: Path) -> list[str]:
    """Credentials and Ghostline's own config/data (API keys, sessions, the trust store), hidden from commands."""
    home = os.path.expanduser("~")
    out = [os.path.join(home, e) for e in HIDDEN_HOME_ENTRIES]
    out += [str(d) for d in protected_dirs()]
    return [p for p in out if not _within_any(workspace, Path(p))]  # never hide the workspace itself


def _within_any(d: Path, ws: Path) -> bool:
    return d == ws or d.is_relative_to(ws)


def _with_limits(argv: list[str], rl: dict[str, int], cgroup: str | None):
    """Apply rlimits (and join the pids cgroup) before exec without a Python preexec_fn (slow, unsafe with
    threads): through util-linux `prlimit` and a tiny `sh` when available."""
    prl = shutil.which("prlimit")
    if prl:
        flags = {"RLIMIT_CPU": "--cpu", "RLIMIT_FSIZE": "--fsize", "RLIMIT_NPROC": "--nproc", "RLIMIT_CORE": "--core"}
        pre = [prl] + [f"{flags[k]}={v}" for k, v in rl.items() if k in flags and not (k == "RLIMIT_NPROC" and v < 1024)]
        pre.append("--")
        # Joining through cgroup.procs waits for an RCU grace period (~10 ms); v1's `tasks` takes "0" (the
        # caller's thread alone: here the shell's only one) without that wait.
        if cgroup and _cgroup_v1(cgroup):
            pre = ["/bin/sh", "-c", 'echo 0 > "$0" 2>/dev/null; exec "$@"', os.path.join(cgroup, "tasks"), *pre]
        elif cgroup:
            pre = ["/bin/sh", "-c", 'echo $$ > "$0" 2>/dev/null; exec "$@"', os.path.join(cgroup, "cgroup.procs"), *pre]
        return pre + argv, None

    def preexec() -> None:  # runs in the child between fork and exec
        import resource

        for name, value in rl.items():
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(getattr(resource, name), (value, value))
        if cgroup:
            with contextlib.suppress(OSError), open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))

    return argv, preexec


def _tramp_spec(command: str, *, cwd: Path, workspace: Path, mode: str, network: bool, level: str,
                tmpdir: str, timeout: float) -> dict:
    import resource

    rlimits = {getattr(resource, name): value for name, value in _rlimits(timeout).items()}
    spec: dict = {"argv": ["/bin/bash", "-c", command], "cwd": str(cwd), "rlimits": rlimits}
    if level == "landlock":
        rw = [tmpdir]
        if mode == "workspace-write":
            rw.append(str(workspace))
        spec["landlock"] = {
            "ro": ["/"],
            "rw": rw,
            "rw_files": ["/dev/null", "/dev/zero", "/dev/full"],
            "protect": _protected_in(workspace) if mode == "workspace-write" else [],
            "protect_parents": [str(workspace)],
            "hide": _hidden_paths(workspace),
            # Testing knob: behave as where no mount namespace is permitted (unprivileged, userns off).
            "no_mount_ns": bool(os.environ.get("GHOSTLINE_SANDBOX_NO_MOUNTNS")),
            "net": network,
        }
        spec["seccomp"] = {"net": network}
        spec["drop_caps"] = True
    return spec


# --- output capture -------------------------------------------------------------------------------------------
class _Capture:
    def __init__(self, limit: int, output_dir: Path | None):
        self.limit = max(limit, 200)
        self.head_cap = self.limit // 2
        self.tail_cap = self.limit - self.head_cap
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        self.output_dir = output_dir
        self.spill: object | None = None
        self.spill_path: str | None = None
        self.spilled = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        if self.spill is None and self.total > self.limit:
            self._open_spill()
        if self.spill is not None:
            if self.spilled < FULL_OUTPUT_CAP:
                chunk = data[: FULL_OUTPUT_CAP - self.spilled]
                self.spill.write(chunk)  # type: ignore[attr-defined]
                self.spilled += len(chunk)
        room = self.head_cap - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > self.tail_cap * 2:
                del self.tail[: len(self.tail) - self.tail_cap]

    def _open_spill(self) -> None:
        d = self.output_dir or Path(tempfile.gettempdir()) / "ghostline-outputs"
        try:
            d.mkdir(parents=True, exist_ok=True)
            fd, path = tempfile.mkstemp(prefix="cmd-", suffix=".log", dir=d)
            self.spill = os.fdopen(fd, "wb")
            self.spill_path = path
            self.spill.write(bytes(self.head) + bytes(self.tail))  # type: ignore[attr-defined]
            self.spilled = len(self.head) + len(self.tail)
        except OSError:
            self.spill = None
            self.spill_path = None

    def finish(self) -> tuple[str, bool, str | None]:
        if self.spill is not None:
            with contextlib.suppress(OSError):
                self.spill.close()  # type: ignore[attr-defined]
        if self.total <= self.limit:
            return (bytes(self.head) + bytes(self.tail)).decode("utf-8", errors="replace"), False, None
        tail = bytes(self.tail[-self.tail_cap:])
        omitted = self.total - len(self.head) - len(tail)
        where = f"; full output in {self.spill_path}" if self.spill_path else ""
        marker = f"\n\n... [{omitted} bytes of output omitted{where}] ...\n\n"
        text = (bytes(self.head).decode("utf-8", errors="replace") + marker
                + tail.decode("utf-8", errors="replace"))
        return text, True, self.spill_path


# --- run ------------------------------------------------------------------------------------------------------
def _kill_group(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)


def _close_transport(proc: asyncio.subprocess.Process) -> None:
    # Closed now, not by the garbage collector after the event loop is gone (noise on Ctrl-C).
    tr = getattr(proc, "_transport", None)
    if tr is not None:
        with contextlib.suppress(Exception):
            tr.close()


def _attach_cgroup(cgroup: str, pid: int, go_fd: int) -> None:
    """Move the waiting trampoline `pid` into the v2 `cgroup`, then let it fork the command (which inherits it).

    Runs in a thread while the trampoline's interpreter starts: joining a cgroup through cgroup.procs waits for
    an RCU grace period (~10 ms, the largest single cost of a sandboxed command), which would otherwise be paid
    in series. (Under v1 the command's own thread joins through `tasks`, which needs no grace period.)
    Best effort, as before: the command runs (bounded by rlimits) when the cgroup cannot be joined."""
    try:
        with contextlib.suppress(OSError), open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
            f.write(str(pid))
        with contextlib.suppress(OSError):
            os.write(go_fd, b"1")
    finally:
        os.close(go_fd)


async def _join_attach(attach: asyncio.Future | None) -> None:
    """Wait for a pending cgroup attach (a grace period at most), so that the trampoline is never killed and
    reaped while its pid is still to be written (a recycled pid would be moved into the cgroup)."""
    if attach is not None and not attach.done():
        with contextlib.suppress(BaseException):
            await asyncio.shield(attach)


def _close_fds(*fds: int) -> None:
    for fd in fds:
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)


def _cleanup(cgroup: str | None, tmpdir: str, created: list[str]) -> None:
    _remove_cgroup(cgroup)  # kills anything still in it
    if tmpdir:
        shutil.rmtree(tmpdir, ignore_errors=True)
    for d in created:
        with contextlib.suppress(OSError):
            os.rmdir(d)  # only if still empty (and no other command holds it)


async def _stop(proc: asyncio.subprocess.Process, level: str, cgroup: str | None = None,
                attach: asyncio.Future | None = None) -> None:
    """Stop a running command and everything it started. Safe to call more than once."""
    await _join_attach(attach)
    if proc.returncode is not None:
        _kill_group(proc.pid)
        return
    if level in ("bubblewrap", "none-direct"):
        # Killing bwrap kills the sandbox's pid namespace (--die-with-parent), setsid children included.
        _kill_group(proc.pid)
        _kill_cgroup(cgroup)
    else:
        # The trampoline kills the whole tree, re-parented setsid children included, then exits.
        with contextlib.suppress(OSError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), 3)
        except (TimeoutError, asyncio.CancelledError):
            pass
        _kill_group(proc.pid)


async def run_command(command: str, *, cwd: Path, workspace: Path, mode: str, network: bool, timeout: float,
                      output_limit: int = 30000, env: dict | None = None, level: str | None = None,
                      output_dir: Path | None = None) -> CommandResult:
    """Run `bash -c command` confined to `workspace` per `mode`, as the bash tool does.

    level: force a layer ("bubblewrap" | "landlock" | "none"); default: detect_level(). full-access
    always runs plain. Cancelling the awaiting task kills the command and everything it started.
    """
    if mode not in SANDBOX_MODES:
        raise SandboxError(f"unknown sandbox mode {mode!r} (expected one of {', '.join(SANDBOX_MODES)})")
    workspace = Path(os.path.realpath(workspace))
    cwd = Path(os.path.realpath(cwd))
    if not cwd.is_dir():
        raise SandboxError(f"working directory {cwd} does not exist")
    if level is None:
        level = detect_level()
    elif level not in SANDBOX_LEVELS:
        raise SandboxError(f"unknown sandbox level {level!r}")
    if mode == "full-access":
        level = "none"

    child_env = scrub_env(extra=env)
    child_env["GHOSTLINE_SANDBOX_LEVEL"] = level
    child_env.pop("GHOSTLINE_SANDBOX", None)
    # bubblewrap gives the command a fresh /tmp; the other layers get a private temp dir.
    tmpdir = "" if level == "bubblewrap" else tempfile.mkdtemp(prefix="ghostline-cmd-")
    # Protected dirs must exist before the sandbox is built, so the command cannot create them.
    created = _ensure_protected(workspace) if mode == "workspace-write" and level != "none" else []
    cgroup = _make_cgroup(4096) if level != "none" else None
    sync_r = sync_w = -1
    if level == "bubblewrap":
        ok, exe = probe_bubblewrap()
        if not ok:
            raise SandboxError(f"bubblewrap does not work here: {exe}")
        argv = _bwrap_argv(exe, command, cwd=cwd, workspace=workspace, mode=mode, network=network, tmpdir=tmpdir)
        argv, preexec = _with_limits(argv, _rlimits(timeout), cgroup)
    elif sys.platform != "linux":
        # No prctl (subreaper) elsewhere: a plain process group, killed as a whole.
        child_env["TMPDIR"] = tmpdir
        argv, preexec = _with_limits(["/bin/bash", "-c", command], _rlimits(timeout), None)
        level = "none-direct"
    else:
        child_env["TMPDIR"] = tmpdir
        spec = _tramp_spec(command, cwd=cwd, workspace=workspace, mode=mode, network=network, level=level,
                           tmpdir=tmpdir, timeout=timeout)
        if cgroup and _cgroup_v1(cgroup):
            spec["cgroup"] = cgroup  # v1: the command's process joins it, cheaply (see the trampoline)
        elif cgroup:  # v2: joined by _attach_cgroup while the trampoline starts; it waits on sync_r for the go
            sync_r, sync_w = os.pipe()  # not inherited but for pass_fds
            spec["cgroup_sync"] = sync_r
        argv = _trampoline_argv(spec)
        preexec = None  # type: ignore[assignment]

    cap = _Capture(output_limit, output_dir)
    start = time.monotonic()
    timed_out = False
    spawn = asyncio.ensure_future(asyncio.create_subprocess_exec(
        *argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=str(cwd),
        env=child_env, start_new_session=True, preexec_fn=preexec, pass_fds=(sync_r,) if sync_r >= 0 else (),
    ))
    try:
        proc = await asyncio.shield(spawn)
    except asyncio.CancelledError:
        # Cancelled while starting: let the start finish, then kill what it started (a trampoline that finds
        # sync_w closed without a go never runs the command).
        _close_fds(sync_w)  # sync_r only once the start is over: it may still be passed to the child
        try:
            proc = await spawn
        except BaseException:
            _cleanup(cgroup, tmpdir, created)
            raise
        finally:
            _close_fds(sync_r)
        await _stop(proc, level, cgroup)
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(proc.wait(), 2)
        _close_transport(proc)
        _cleanup(cgroup, tmpdir, created)
        raise
    except BaseException:
        _close_fds(sync_r, sync_w)
        _cleanup(cgroup, tmpdir, created)
        raise
    attach: asyncio.Future | None = None
    if sync_w >= 0:
        os.close(sync_r)
        assert cgroup is not None
        attach = asyncio.ensure_future(asyncio.to_thread(_attach_cgroup, cgroup, proc.pid, sync_w))  # closes sync_w
    try:
        assert proc.stdout is not None
        deadline = start + max(timeout, 0.001)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            try:
                data = await asyncio.wait_for(proc.stdout.read(65536), remaining)
            except TimeoutError:
                timed_out = True
                break
            if not data:
                break
            cap.feed(data)
        if not timed_out:
            # Output closed; the command may still run (it closed its stdout): wait out the deadline.
            try:
                await asyncio.wait_for(proc.wait(), max(deadline - time.monotonic(), 0.001))
            except TimeoutError:
                timed_out = True
        if timed_out:
            await _stop(proc, level, cgroup, attach)
            # Drain what is left without blocking forever on a pipe held by a stray process.
            with contextlib.suppress(TimeoutError):
                while True:
                    data = await asyncio.wait_for(proc.stdout.read(65536), 0.5)
                    if not data:
                        break
                    cap.feed(data)
        try:
            rc = await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            _kill_group(proc.pid)
            rc = await proc.wait()
    except BaseException:
        # Cancellation (Ctrl-C) or any error: nothing started by the command survives.
        await _stop(proc, level, cgroup, attach)
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(proc.wait(), 2)
        raise
    finally:
        if proc.returncode is not None:
            _kill_group(proc.pid)
        _close_transport(proc)
        _cleanup(cgroup, tmpdir, created)
    output, truncated, full = cap.finish()
    if timed_out:
        output += f"\n[command timed out after {timeout:g}s and was killed]"
        rc = 124
    elif rc < 0:
        rc = 128 - rc
    return CommandResult(exit_code=rc, output=output, truncated=truncated, timed_out=timed_out,
                         duration_ms=int((time.monotonic() - start) * 1000), full_output_path=full,
                         level="none" if level == "none-direct" else level)
