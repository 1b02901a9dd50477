"""Process trampoline: run by `python -I -S -c <bootstrap> <this module, compiled> <spec>` (see
sandbox.runner._trampoline_argv; stdlib only, no package imports).

The trampoline stays alive as a child subreaper while the command runs, so that processes that leave the
process group (`setsid`, double forks) are re-parented to it and can be killed when the command ends, times
out, or Ghostline goes away. Its child applies, in order: own process group, rlimits, a pids cgroup (root
only, when writable), read-only binds of protected paths in a private mount namespace (when permitted),
no_new_privs, Landlock, seccomp (network sockets, TIOCSTI, io_uring), capability drop; then execs.

Spec keys: argv, cwd, rlimits {resource number: int}, cgroup (a cgroup v1 directory or null: the command joins it),
cgroup_sync (fd or null: wait for one byte on it before forking the command, while the parent moves the
trampoline into a cgroup v2 directory; EOF means do not run), landlock (null or
{"ro": [paths], "rw": [paths], "rw_files": [paths], "protect": [paths], "net": bool, "granular": [[dir, [skip]]]}),
seccomp (null or {"net": bool}), drop_caps (bool).
"""

import _signal as signal  # the C module: `signal` would import enum (milliseconds at every command)
import ctypes
import os
import struct
import sys
import time

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446

FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_REMOVE_DIR = 1 << 4
FS_REMOVE_FILE = 1 << 5
FS_MAKE_CHAR = 1 << 6
FS_MAKE_DIR = 1 << 7
FS_MAKE_REG = 1 << 8
FS_MAKE_SOCK = 1 << 9
FS_MAKE_FIFO = 1 << 10
FS_MAKE_BLOCK = 1 << 11
FS_MAKE_SYM = 1 << 12
FS_REFER = 1 << 13
FS_TRUNCATE = 1 << 14
FS_IOCTL_DEV = 1 << 15
NET_BIND_TCP = 1 << 0
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX = 1 << 0
SCOPE_SIGNAL = 1 << 1

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18


class Fatal(Exception):
    pass


def _err(what):
    e = ctypes.get_errno()
    return Fatal(f"{what}: {os.strerror(e)}")


def landlock_abi():
    v = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return int(v) if v > 0 else 0


def fs_rights(abi):
    rights = (1 << 13) - 1
    if abi >= 2:
        rights |= FS_REFER
    if abi >= 3:
        rights |= FS_TRUNCATE
    if abi >= 5:
        rights |= FS_IOCTL_DEV
    return rights


FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
READ_RIGHTS = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR


def _add_path_rule(ruleset_fd, path, rights, handled):
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # a path that does not exist needs no rule
    try:
        if not os.path.isdir(path):
            rights &= FILE_RIGHTS
        rights &= handled
        attr = struct.pack("=Qi", rights, fd)
        buf = ctypes.create_string_buffer(attr, len(attr))
        if libc.syscall(SYS_LANDLOCK_ADD_RULE, ctypes.c_int(ruleset_fd), ctypes.c_int(1), buf, ctypes.c_uint32(0)) < 0:
            raise _err(f"landlock_add_rule({path})")
    finally:
        os.close(fd)


def apply_landlock(spec):
    abi = landlock_abi()
    if abi < 1:
        raise Fatal("Landlock is not available in this kernel")
    handled = fs_rights(abi)
    net_handled = (NET_BIND_TCP | NET_CONNECT_TCP) if (abi >= 4 and not spec.get("net")) else 0
    scoped = (SCOPE_ABSTRACT_UNIX | SCOPE_SIGNAL) if abi >= 6 else 0
    if abi >= 6:
        attr = struct.pack("=QQQ", handled, net_handled, scoped)
    elif abi >= 4:
        attr = struct.pack("=QQ", handled, net_handled)
    else:
        attr = struct.pack("=Q", handled)
    buf = ctypes.create_string_buffer(attr, len(attr))
    rfd = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, buf, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    if rfd < 0:
        raise _err("landlock_create_ruleset")
    rfd = int(rfd)
    all_rights = handled
    write_rights = all_rights & ~(READ_RIGHTS | FS_IOCTL_DEV)
    for p in spec.get("ro", []):
        _add_path_rule(rfd, p, READ_RIGHTS, handled)
    for p in spec.get("rw", []):
        _add_path_rule(rfd, p, READ_RIGHTS | write_rights, handled)
    for p in spec.get("rw_files", []):
        _add_path_rule(rfd, p, READ_RIGHTS | FS_WRITE_FILE | FS_TRUNCATE | FS_IOCTL_DEV, handled)
    # A writable directory whose protected children (.git, .ghostline) must stay read-only, when no
    # mount namespace could make them so: write rights on every other child, none on the directory itself.
    for d, skip in spec.get("granular", []):
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for name in names:
            if name in skip:
                continue
            p = os.path.join(d, name)
            if os.path.islink(p):
                continue
            _add_path_rule(rfd, p, READ_RIGHTS | write_rights, handled)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise _err("prctl(NO_NEW_PRIVS)")
    if libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(rfd), ctypes.c_uint32(0)) < 0:
        raise _err("landlock_restrict_self")
    os.close(rfd)
    return abi


# --- seccomp ---------------------------------------------------------------------------------------------
ARCHES = {
    # machine: (AUDIT_ARCH, socket, ioctl, io_uring_setup, x32 bit)
    "x86_64": (0xC000003E, 41, 16, 425, True),
    "aarch64": (0xC00000B7, 198, 29, 425, False),
}
RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000
LD_ABS = 0x20
JEQ = 0x15
JGE = 0x35
RET = 0x06
AF_NETLINK = 16
TIOCSTI = 0x5412
TIOCLINUX = 0x541C
EPERM = 1
EACCES = 13


def _ins(code, jt, jf, k):
    return struct.pack("=HBBI", code, jt, jf, k)


def build_seccomp(net):
    machine = os.uname().machine
    if machine not in ARCHES:
        return None
    arch, nr_socket, nr_ioctl, nr_uring, x32 = ARCHES[machine]
    p = [
        _ins(LD_ABS, 0, 0, 4),
        _ins(JEQ, 1, 0, arch),
        _ins(RET, 0, 0, RET_ERRNO | EPERM),
        _ins(LD_ABS, 0, 0, 0),
    ]
    if x32:
        p += [_ins(JGE, 0, 1, 0x40000000), _ins(RET, 0, 0, RET_ERRNO | EPERM)]
    p += [_ins(JEQ, 0, 1, nr_uring), _ins(RET, 0, 0, RET_ERRNO | EPERM)]
    if not net:
        block = [
            _ins(LD_ABS, 0, 0, 16),
            # Pathname unix sockets reach host daemons (docker, resolvers, D-Bus) that Landlock cannot
            # fence; socketpair() stays available for local IPC.
            _ins(JEQ, 0, 1, AF_NETLINK), _ins(RET, 0, 0, RET_ALLOW),
            _ins(RET, 0, 0, RET_ERRNO | EACCES),
        ]
        p += [_ins(JEQ, 0, len(block), nr_socket)] + block
    block = [
        _ins(LD_ABS, 0, 0, 24),
        _ins(JEQ, 0, 1, TIOCSTI), _ins(RET, 0, 0, RET_ERRNO | EPERM),
        _ins(JEQ, 0, 1, TIOCLINUX), _ins(RET, 0, 0, RET_ERRNO | EPERM),
        _ins(RET, 0, 0, RET_ALLOW),
    ]
    p += [_ins(JEQ, 0, len(block), nr_ioctl)] + block
    p += [_ins(RET, 0, 0, RET_ALLOW)]
    return b"".join(p)


def apply_seccomp(net):
    prog = build_seccomp(net)
    if prog is None:
        raise Fatal(f"seccomp: unsupported architecture {os.uname().machine}")
    n = len(prog) // 8
    fbuf = ctypes.create_string_buffer(prog, len(prog))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fp = SockFprog(n, ctypes.cast(fbuf, ctypes.c_void_p))
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise _err("prctl(NO_NEW_PRIVS)")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fp), 0, 0) != 0:
        raise _err("seccomp")


# --- mount namespace for protected paths ----------------------------------------------------------------
def _write(path, data):
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data.encode())
    finally:
        os.close(fd)


def _mount_flags(opts):
    f = 0
    for o in opts.split(","):
        f |= {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": 8, "noatime": 1024, "nodiratime": 2048,
              "relatime": 1 << 21}.get(o, 0)
    return f


def _unescape(p):
    return p.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def protect_with_mount_ns(paths, rw_paths, hide=()):
    """In a private mount namespace: every mount read-only except `rw_paths`, and `paths` (protected
    children of a writable path) read-only again. False when no mount namespace is permitted here."""
    if not _enter_mount_ns():
        return False
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise _err("mount(private)")
    for p in rw_paths:
        _bind(p)
    _remount_read_only_except([os.path.realpath(p) for p in rw_paths])
    if os.path.isdir("/dev/shm"):  # a private, writable /dev/shm (POSIX semaphores: multiprocessing)
        if libc.mount(b"tmpfs", b"/dev/shm", b"tmpfs", MS_NOSUID | MS_NODEV, b"size=256m,mode=1777") != 0:
            raise _err("mount /dev/shm")
    for p in hide:
        _hide(p)
    for p in paths:
        _bind_read_only(p)
    return True


def _enter_mount_ns():
    uid, gid = os.geteuid(), os.getegid()
    if libc.unshare(CLONE_NEWNS) == 0:
        return True
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0:
        return False
    try:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
    except OSError:
        return False
    return True


def _bind(p):
    bp = p.encode()
    if libc.mount(bp, bp, None, MS_BIND | MS_REC, None) != 0:
        raise _err(f"bind {p}")


def _remount_read_only_except(rw_real):
    with open("/proc/self/mountinfo") as f:
        lines = f.read().splitlines()
    for line in lines:
        fields = line.split(" ")
        if len(fields) < 6:
            continue
        mp = _unescape(fields[4])
        if any(mp == r or mp.startswith(r.rstrip("/") + "/") for r in rw_real):
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY | _mount_flags(fields[5])
        libc.mount(None, mp.encode(), None, flags, None)  # best effort: some mounts cannot be remounted


def _hide(p):
    """Credentials: an empty read-only tmpfs over a directory, /dev/null over a file."""
    bp = p.encode()
    if os.path.isdir(p):
        if libc.mount(b"tmpfs", bp, b"tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, b"size=4k") != 0:
            raise _err(f"hide {p}")
    elif libc.mount(b"/dev/null", bp, None, MS_BIND, None) != 0:
        raise _err(f"hide {p}")


def _bind_read_only(p):
    _bind(p)
    bp = p.encode()
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV
    if libc.mount(None, bp, None, flags, None) != 0:
        # An unprivileged namespace must keep locked flags of the original mount.
        if libc.mount(None, bp, None, MS_REMOUNT | MS_BIND | MS_RDONLY, None) != 0:
            raise _err(f"remount read-only {p}")


def drop_caps():
    if os.geteuid() != 0:
        return
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == 22:
            break
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    hdr = struct.pack("=Ii", 0x20080522, 0)
    data = b"\0" * 24
    hb = ctypes.create_string_buffer(hdr, len(hdr))
    db = ctypes.create_string_buffer(data, len(data))
    if libc.capset(hb, db) != 0:
        raise _err("capset")


class Rlimit(ctypes.Structure):
    _fields_ = [("cur", ctypes.c_ulong), ("max", ctypes.c_ulong)]  # rlim_t is unsigned long on Linux


RLIM_INFINITY = ctypes.c_ulong(-1).value


def set_rlimits(limits):
    """Soft and hard limit to each value (capped at a lower hard limit), best effort. Through libc, not the
    `resource` module: loading that extension cost ~0.8 ms a command. Resource numbers come from the parent's
    `resource` module (they differ between architectures)."""
    for res, value in limits.items():
        rl = Rlimit()
        if libc.getrlimit(int(res), ctypes.byref(rl)) != 0:
            continue
        value = min(int(value), RLIM_INFINITY)
        if rl.max != RLIM_INFINITY and value > rl.max:
            value = rl.max
        libc.setrlimit(int(res), ctypes.byref(Rlimit(value, value)))


def child(spec):
    os.setpgid(0, 0)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # the trampoline gone: so is the command
    set_rlimits(spec.get("rlimits") or {})
    cg = spec.get("cgroup")
    if cg:
        # Writing "0" to a v1 `tasks` file moves only the calling thread, which spares the kernel's global
        # threadgroup lock and its RCU grace period (~10 ms a command through cgroup.procs). This process is
        # single-threaded (just forked), so the whole command and all it forks are in the cgroup.
        try:
            _write(os.path.join(cg, "tasks"), "0")
        except OSError:
            pass
    ll = spec.get("landlock")
    if ll is not None:
        protect = [p for p in ll.get("protect", []) if os.path.lexists(p)]
        rw_paths = [p for p in ll.get("rw", []) if os.path.isdir(p)]
        hide = [p for p in ll.get("hide", []) if os.path.lexists(p) and not os.path.islink(p)]
        use_ns = not ll.get("no_mount_ns")
        if use_ns and protect_with_mount_ns(protect, rw_paths, hide):
            ll = dict(ll, rw=[*ll.get("rw", []), "/dev/shm"])
        elif protect:
            # No mount namespace: fall back to write rights on each unprotected child of the workspace.
            ll = dict(ll)
            rw = list(ll.get("rw", []))
            granular = []
            for d in ll.get("protect_parents", []):
                if d in rw:
                    rw.remove(d)
                    granular.append([d, [os.path.basename(p) for p in protect if os.path.dirname(p) == d]])
            ll["rw"] = rw
            ll["granular"] = granular
        apply_landlock(ll)
    sc = spec.get("seccomp")
    if sc is not None:
        apply_seccomp(bool(sc.get("net")))
    if spec.get("drop_caps"):
        drop_caps()
    if spec.get("cwd"):
        os.chdir(spec["cwd"])
    argv = spec["argv"]
    os.execvp(argv[0], argv)


class Stop(Exception):
    def __init__(self, sig):
        self.sig = sig


def _on_signal(sig, frame):
    raise Stop(sig)


def descendants(pid):
    out = []
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tids:
            try:
                with open(f"/proc/{p}/task/{t}/children") as f:
                    kids = [int(x) for x in f.read().split()]
            except OSError:
                continue
            out.extend(kids)
            stack.extend(kids)
    return out


def reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_tree(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
    me = os.getpid()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        kids = descendants(me)
        if not kids:
            break
        for k in kids:
            try:
                os.kill(k, signal.SIGKILL)
            except OSError:
                pass
        reap()
        time.sleep(0.002)
    reap()


def main():
    # The spec is marshal (hex) of plain dicts/lists/strings built by sandbox.runner (json would import re).
    import marshal

    spec = marshal.loads(bytes.fromhex(sys.argv[1]))
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() == 1:
        sys.exit(137)
    _wait_for_cgroup(spec.get("cgroup_sync"))
    pid = os.fork()
    if pid == 0:
        _run_child(spec)
    status, stopped = _wait_for(pid)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    kill_tree(pid)
    if stopped is not None:
        os._exit(128 + stopped)
    if status is None:
        os._exit(137)
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)


def _wait_for_cgroup(sync):
    """Joining a v2 cgroup waits for an RCU grace period (~10 ms, the biggest cost of a command), so the
    parent does it while this interpreter starts; the command, forked after, inherits the cgroup."""
    if sync is None:
        return
    try:
        go = os.read(sync, 1)
    except Stop as s:
        os._exit(128 + s.sig)
    os.close(sync)
    if not go:  # the parent gave up (cancelled): never run the command
        os._exit(125)


def _run_child(spec):
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    try:
        child(spec)
    except BaseException as e:  # report and fail closed: the command never runs unconfined
        try:
            os.write(2, f"ghostline sandbox: {e}\n".encode())
        except OSError:
            pass
        os._exit(126)
    os._exit(127)


def _wait_for(pid):
    """(the command's wait status or None, the signal that stopped us or None)."""
    try:
        while True:
            try:
                p, st = os.waitpid(-1, 0)
            except ChildProcessError:
                return None, None
            if p == pid:
                return st, None
    except Stop as s:
        return None, s.sig


if __name__ == "__main__":
    main()
