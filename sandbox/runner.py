"""Running one shell command the way the bash tool does: confined, time- and output-limited, killable."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ghostline.sandbox import cgroups
from ghostline.sandbox.capture import OutputCapture
from ghostline.sandbox.envscrub import scrub_env
from ghostline.sandbox.modes import SANDBOX_LEVELS, SANDBOX_MODES, SandboxLevel, SandboxMode
from ghostline.sandbox.paths import PROTECTED_NAMES, protected_dirs

SHELL = "/bin/bash"  # what runs a command, at every layer (an absolute path: PATH is the command's business)

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
_PROBE_ARGV = [SHELL, "-c", "exit 0"]  # what every command runs, by absolute path: no PATH lookup


def _bwrap_path() -> str | None:
    # The system's bin dirs too: a command's PATH may be empty or odd, and the layers must not depend on it.
    return shutil.which("bwrap") or shutil.which("bwrap", path=os.defpath)


def probe_bubblewrap() -> tuple[bool, str]:
    """Does bubblewrap work here (namespaces allowed)? Probed once per process."""
    if "bubblewrap" in _probe_cache:
        return _probe_cache["bubblewrap"]
    exe = _bwrap_path()
    if not exe:
        res = (False, "bwrap not found (PATH, then the system bin dirs)")
    else:
        try:
            p = subprocess.run(
                [exe, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
                 "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session",
                 "--cap-drop", "ALL", "--", *_PROBE_ARGV],
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
    spec = {"argv": _PROBE_ARGV, "landlock": {"ro": ["/"], "rw": [], "net": False}, "seccomp": {"net": False}}
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
        "pids_cgroup": cgroups.pids_root() is not None,
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
          "--chdir", str(cwd), "--", SHELL, "-c", command]
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
        if cgroup and cgroups.is_v1(cgroup):
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
    spec: dict = {"argv": [SHELL, "-c", command], "cwd": str(cwd), "rlimits": rlimits}
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


# --- run ------------------------------------------------------------------------------------------------------
@dataclass
class _Launch:
    """One command ready to start: its command line, and what it holds until it ends (see cleanup)."""

    argv: list[str]
    env: dict[str, str]
    level: str  # the layer, or "none-direct": a plain process group (no subreaper off Linux)
    preexec: Callable[[], None] | None = None
    tmpdir: str = ""  # the command's private temp dir ("" under bubblewrap, which mounts a fresh /tmp)
    created: list[str] = field(default_factory=list)  # protected dirs made for it, removed when still empty
    cgroup: str | None = None
    sync_r: int = -1  # cgroup v2: the trampoline waits on sync_r until cgroups.attach writes the go to sync_w
    sync_w: int = -1

    def cleanup(self) -> None:
        cgroups.release(self.cgroup)  # kills anything still in it
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        for d in self.created:
            with contextlib.suppress(OSError):
                os.rmdir(d)  # only if still empty (and no other command holds it)


def _checked(mode: str, cwd: Path, workspace: Path, level: str | None) -> tuple[Path, Path, str]:
    """(workspace, cwd) resolved and the layer to use, or SandboxError. full-access always runs plain."""
    if mode not in SANDBOX_MODES:
        raise SandboxError(f"unknown sandbox mode {mode!r} (expected one of {', '.join(SANDBOX_MODES)})")
    workspace = Path(os.path.realpath(workspace))
    cwd = Path(os.path.realpath(cwd))
    if not cwd.is_dir():
        raise SandboxError(f"working directory {cwd} does not exist")
    if level is not None and level not in SANDBOX_LEVELS:
        raise SandboxError(f"unknown sandbox level {level!r}")
    if mode == "full-access":
        return workspace, cwd, "none"
    if level == "bubblewrap" and not probe_bubblewrap()[0]:
        raise SandboxError(f"bubblewrap does not work here: {probe_bubblewrap()[1]}")
    return workspace, cwd, level or detect_level()


def _prepare(command: str, *, cwd: Path, workspace: Path, mode: str, network: bool, timeout: float, level: str,
             env: dict | None) -> _Launch:
    child_env = scrub_env(extra=env)
    child_env["GHOSTLINE_SANDBOX_LEVEL"] = level
    child_env.pop("GHOSTLINE_SANDBOX", None)
    launch = _Launch(argv=[], env=child_env, level=level)
    if level != "bubblewrap":
        launch.tmpdir = child_env["TMPDIR"] = tempfile.mkdtemp(prefix="ghostline-cmd-")
    if mode == "workspace-write" and level != "none":
        # Protected dirs must exist before the sandbox is built, so the command cannot create them.
        launch.created = _ensure_protected(workspace)
    launch.cgroup = cgroups.acquire(4096) if level != "none" else None
    try:
        _set_command_line(launch, command, cwd=cwd, workspace=workspace, mode=mode, network=network,
                          timeout=timeout)
    except BaseException:
        _close_fds(launch.sync_r, launch.sync_w)
        launch.cleanup()
        raise
    return launch


def _set_command_line(launch: _Launch, command: str, *, cwd: Path, workspace: Path, mode: str, network: bool,
                      timeout: float) -> None:
    if launch.level == "bubblewrap":
        argv = _bwrap_argv(probe_bubblewrap()[1], command, cwd=cwd, workspace=workspace, mode=mode,
                           network=network, tmpdir=launch.tmpdir)
        launch.argv, launch.preexec = _with_limits(argv, _rlimits(timeout), launch.cgroup)
    elif sys.platform != "linux":
        # No prctl (subreaper) elsewhere: a plain process group, killed as a whole.
        launch.argv, launch.preexec = _with_limits([SHELL, "-c", command], _rlimits(timeout), None)
        launch.level = "none-direct"
    else:
        spec = _tramp_spec(command, cwd=cwd, workspace=workspace, mode=mode, network=network, level=launch.level,
                           tmpdir=launch.tmpdir, timeout=timeout)
        if launch.cgroup and cgroups.is_v1(launch.cgroup):
            spec["cgroup"] = launch.cgroup  # v1: the command's process joins it, cheaply (see the trampoline)
        elif launch.cgroup:  # v2: joined by cgroups.attach while the trampoline starts
            launch.sync_r, launch.sync_w = os.pipe()  # not inherited but for pass_fds
            spec["cgroup_sync"] = launch.sync_r
        launch.argv = _trampoline_argv(spec)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)


def _close_transport(proc: asyncio.subprocess.Process) -> None:
    # Closed now, not by the garbage collector after the event loop is gone (noise on Ctrl-C).
    tr = getattr(proc, "_transport", None)
    if tr is not None:
        with contextlib.suppress(Exception):
            tr.close()


def _close_fds(*fds: int) -> None:
    for fd in fds:
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)


async def _spawn(launch: _Launch, cwd: Path) -> asyncio.subprocess.Process:
    """Start the command. When this fails or is cancelled, nothing it started is left and launch is cleaned up."""
    spawn = asyncio.ensure_future(asyncio.create_subprocess_exec(
        *launch.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=str(cwd),
        env=launch.env, start_new_session=True, preexec_fn=launch.preexec,
        pass_fds=(launch.sync_r,) if launch.sync_r >= 0 else (),
    ))
    try:
        return await asyncio.shield(spawn)
    except asyncio.CancelledError:
        # Cancelled while starting: let the start finish, then kill what it started (a trampoline that finds
        # sync_w closed without a go never runs the command).
        _close_fds(launch.sync_w)  # sync_r only once the start is over: it may still be passed to the child
        try:
            proc = await spawn
        except BaseException:
            launch.cleanup()
            raise
        finally:
            _close_fds(launch.sync_r)
        await _stop(proc, launch.level, launch.cgroup)
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(proc.wait(), 2)
        _close_transport(proc)
        launch.cleanup()
        raise
    except BaseException:
        _close_fds(launch.sync_r, launch.sync_w)
        launch.cleanup()
        raise


def _start_attach(launch: _Launch, proc: asyncio.subprocess.Process) -> asyncio.Future | None:
    """Under cgroup v2, move the started trampoline into the command's cgroup in a thread (see cgroups.attach)."""
    if launch.sync_w < 0:
        return None
    os.close(launch.sync_r)
    assert launch.cgroup is not None
    return asyncio.ensure_future(asyncio.to_thread(cgroups.attach, launch.cgroup, proc.pid, launch.sync_w))


async def _join_attach(attach: asyncio.Future | None) -> None:
    """Wait for a pending cgroup attach (a grace period at most), so that the trampoline is never killed and
    reaped while its pid is still to be written (a recycled pid would be moved into the cgroup)."""
    if attach is not None and not attach.done():
        with contextlib.suppress(BaseException):
            await asyncio.shield(attach)


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
        cgroups.kill_all(cgroup)
    else:
        # The trampoline kills the whole tree, re-parented setsid children included, then exits.
        with contextlib.suppress(OSError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), 3)
        except (TimeoutError, asyncio.CancelledError):
            pass
        _kill_group(proc.pid)


async def _read_until_eof(stdout: asyncio.StreamReader, cap: OutputCapture, deadline: float) -> bool:
    """Feed the output to `cap` until it closes (True) or the deadline passes (False)."""
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            data = await asyncio.wait_for(stdout.read(65536), remaining)
        except TimeoutError:
            return False
        if not data:
            return True
        cap.feed(data)
    return False


async def _exits_by(proc: asyncio.subprocess.Process, deadline: float) -> bool:
    try:
        await asyncio.wait_for(proc.wait(), max(deadline - time.monotonic(), 0.001))
    except TimeoutError:
        return False
    return True


async def _drain(stdout: asyncio.StreamReader, cap: OutputCapture) -> None:
    """What is left of the output of a stopped command, without blocking forever on a pipe a stray process holds."""
    with contextlib.suppress(TimeoutError):
        while data := await asyncio.wait_for(stdout.read(65536), 0.5):
            cap.feed(data)


async def _exit_status(proc: asyncio.subprocess.Process) -> int:
    try:
        return await asyncio.wait_for(proc.wait(), 5)
    except TimeoutError:
        _kill_group(proc.pid)
        return await proc.wait()


async def _collect(proc: asyncio.subprocess.Process, launch: _Launch, attach: asyncio.Future | None,
                   cap: OutputCapture, deadline: float) -> tuple[int, bool]:
    """Capture the output until the command ends or the deadline passes: (exit status, timed out)."""
    assert proc.stdout is not None
    # Output closed does not mean the command is over (it may have closed its stdout): wait out the deadline.
    timed_out = not (await _read_until_eof(proc.stdout, cap, deadline) and await _exits_by(proc, deadline))
    if timed_out:
        await _stop(proc, launch.level, launch.cgroup, attach)
        await _drain(proc.stdout, cap)
    return await _exit_status(proc), timed_out


def _result(cap: OutputCapture, rc: int, *, timed_out: bool, timeout: float, start: float,
            level: str) -> CommandResult:
    output, truncated, full = cap.finish()
    if timed_out:
        output += f"\n[command timed out after {timeout:g}s and was killed]"
        rc = 124
    elif rc < 0:
        rc = 128 - rc
    return CommandResult(exit_code=rc, output=output, truncated=truncated, timed_out=timed_out,
                         duration_ms=int((time.monotonic() - start) * 1000), full_output_path=full,
                         level="none" if level == "none-direct" else level)


async def run_command(command: str, *, cwd: Path, workspace: Path, mode: SandboxMode, network: bool,
                      timeout: float, output_limit: int = 30000, env: dict | None = None,
                      level: SandboxLevel | None = None, output_dir: Path | None = None,
                      on_output: Callable[[str], None] | None = None) -> CommandResult:
    """Run `bash -c command` confined to `workspace` per `mode`, as the bash tool does.

    on_output: called with the output as it arrives (for a live view; the result still has it all).

    level: force a layer ("bubblewrap" | "landlock" | "none"); default: detect_level(). full-access
    always runs plain. Cancelling the awaiting task kills the command and everything it started.
    """
    workspace, cwd, layer = _checked(mode, cwd, workspace, level)
    launch = _prepare(command, cwd=cwd, workspace=workspace, mode=mode, network=network, timeout=timeout,
                      level=layer, env=env)
    cap = OutputCapture(output_limit, output_dir, on_output)
    start = time.monotonic()
    proc = await _spawn(launch, cwd)
    attach = _start_attach(launch, proc)
    try:
        rc, timed_out = await _collect(proc, launch, attach, cap, start + max(timeout, 0.001))
    except BaseException:
        # Cancellation (Ctrl-C) or any error: nothing started by the command survives.
        await _stop(proc, launch.level, launch.cgroup, attach)
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(proc.wait(), 2)
        raise
    finally:
        if proc.returncode is not None:
            _kill_group(proc.pid)
        _close_transport(proc)
        launch.cleanup()
    return _result(cap, rc, timed_out=timed_out, timeout=timeout, start=start, level=launch.level)
