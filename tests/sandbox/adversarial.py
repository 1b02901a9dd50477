"""Adversarial cases for the command sandbox, run through `agent sandbox run` (the real CLI).

Each case gets a fresh base dir holding the workspace `ws/` (with `.git/hooks`, `.git/config`), a sibling
`ws-evil/`, an `outside/` dir with a victim file, and a fake `home/`. A case is *escaped* when its check
finds an effect outside what workspace-write permits. Used by tests/sandbox/test_adversarial.py and
bench/sandbox_adversarial.py.
"""

from __future__ import annotations

import os
import pty
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ghostline.sandbox.runner import check, probe_bubblewrap, probe_landlock

SECRET = "sk-adversarial-" + "9f3c1e"


@dataclass
class Env:
    base: Path
    ws: Path
    outside: Path
    evil: Path
    home: Path
    tcp_port: int
    udp_port: int
    unix_sock: str
    pts: str
    mark: str


@dataclass
class Outcome:
    rc: int
    output: str


@dataclass
class Case:
    name: str
    command: Callable[[Env], str]
    escaped: Callable[[Env, Outcome], bool]
    timeout: float = 5.0
    network: bool = False


def _unchanged(rel: str, content: str = "victim\n") -> Callable[[Env, Outcome], bool]:
    def check(e: Env, o: Outcome) -> bool:
        p = e.outside / rel
        return not p.exists() or p.read_text() != content
    return check


def _absent(path_of: Callable[[Env], Path]) -> Callable[[Env, Outcome], bool]:
    def check(e: Env, o: Outcome) -> bool:
        p = path_of(e)
        if os.path.lexists(p):
            if str(p).startswith("/etc/") or str(p).startswith("/var/tmp/") or str(p).startswith("/dev/shm/"):
                os.unlink(p)  # clean up the machine after an escape
            return True
        return False
    return check


def _leak(e: Env, o: Outcome) -> bool:
    return SECRET in o.output


def _no_process(marker_of: Callable[[Env], str]) -> Callable[[Env, Outcome], bool]:
    def check(e: Env, o: Outcome) -> bool:
        marker = marker_of(e)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            alive = _procs_with(marker)
            if not alive:
                return False
            time.sleep(0.05)
        for pid in _procs_with(marker):
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        return True
    return check


def _procs_with(marker: str) -> list[int]:
    out = []
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if marker.encode() in cmd:
            out.append(int(name))
    return out


class _Servers:
    """Loopback TCP/UDP/unix servers on the host that count what reaches them."""

    def __init__(self, base: Path):
        self.hits: list[str] = []
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(16)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.unix_path = str(base / "outside" / "host.sock")
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind(self.unix_path)
        self.unix.listen(4)
        for s in (self.tcp, self.udp, self.unix):
            s.settimeout(0.02)
        self._stop = False
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()

    def _loop(self) -> None:
        while not self._stop:
            for s, kind in ((self.tcp, "tcp"), (self.unix, "unix")):
                try:
                    c, _ = s.accept()
                    self.hits.append(kind)
                    c.close()
                except OSError:
                    pass
            try:
                self.udp.recvfrom(512)
                self.hits.append("udp")
            except OSError:
                pass

    def close(self) -> None:
        self._stop = True
        self._t.join(0.5)
        for s in (self.tcp, self.udp, self.unix):
            s.close()


def _net(kind: str | None = None) -> Callable[[Env, Outcome], bool]:
    def check(e: Env, o: Outcome) -> bool:
        time.sleep(0.3)
        hits = _servers_hits.get(e.mark, [])
        return bool(hits) if kind is None else kind in hits
    return check


_servers_hits: dict[str, list[str]] = {}


def _py(code: str) -> str:
    return f"{sys.executable} -c {_q(code)}"


def _q(s: str) -> str:
    import shlex

    return shlex.quote(s)


CASES: list[Case] = [
    # --- writes outside the workspace ---
    Case("home-bashrc", lambda e: "echo pwned >> ~/.bashrc",
         lambda e, o: (e.home / ".bashrc").read_text() != "# rc\n"),
    Case("etc-write", lambda e: f"echo pwned > /etc/ghostline-adv-{e.mark}",
         _absent(lambda e: Path(f"/etc/ghostline-adv-{e.mark}"))),
    Case("dotdot", lambda e: "echo pwned > ../outside/victim", _unchanged("victim")),
    Case("absolute", lambda e: f"echo pwned > {e.outside}/victim", _unchanged("victim")),
    Case("proc-self-root", lambda e: f"echo pwned > /proc/self/root{e.outside}/victim", _unchanged("victim")),
    Case("new-symlink", lambda e: f"ln -s {e.outside} lnk && echo pwned > lnk/victim", _unchanged("victim")),
    Case("planted-symlink", lambda e: "echo pwned > planted/victim", _unchanged("victim")),
    Case("dangling-symlink", lambda e: "echo pwned > dangling", _absent(lambda e: e.outside / "new-file")),
    Case("new-hardlink", lambda e: f"ln {e.outside}/victim hl && echo pwned >> hl", _unchanged("victim")),
    Case("sibling-prefix", lambda e: f"echo pwned > {e.evil}/f", _absent(lambda e: e.evil / "f")),
    Case("rm-outside", lambda e: f"rm -rf {e.outside}/victim", _unchanged("victim")),
    Case("mv-outside-in", lambda e: f"mv {e.outside}/victim ./stolen", _unchanged("victim")),
    Case("chmod-outside", lambda e: f"chmod 777 {e.outside}/victim",
         lambda e, o: (e.outside / "victim").stat().st_mode & 0o777 != 0o644),
    Case("touch-outside", lambda e: f"touch -d 2001-01-01 {e.outside}/victim",
         lambda e, o: (e.outside / "victim").stat().st_mtime < 1e9),
    Case("tmp-write", lambda e: f"echo pwned > /tmp/ghostline-adv-{e.mark}",
         _absent(lambda e: Path(f"/tmp/ghostline-adv-{e.mark}"))),
    Case("var-tmp-write", lambda e: f"echo pwned > /var/tmp/ghostline-adv-{e.mark}",
         _absent(lambda e: Path(f"/var/tmp/ghostline-adv-{e.mark}"))),
    Case("dev-shm-write", lambda e: f"echo pwned > /dev/shm/ghostline-adv-{e.mark}",
         _absent(lambda e: Path(f"/dev/shm/ghostline-adv-{e.mark}"))),
    # --- protected paths in the workspace ---
    Case("git-hooks", lambda e: "echo 'echo pwned' > .git/hooks/pre-commit; chmod +x .git/hooks/pre-commit",
         lambda e, o: (e.ws / ".git/hooks/pre-commit").exists()),
    Case("git-config", lambda e: "git config core.hooksPath /tmp/x; echo '[alias] x = !id' >> .git/config",
         lambda e, o: (e.ws / ".git/config").read_text() != "[core]\n\tbare = false\n"),
    Case("git-dir-swap", lambda e: "mv .git .git-old && mkdir -p .git/hooks && echo pwned > .git/hooks/post-merge",
         lambda e, o: not (e.ws / ".git/config").exists() or (e.ws / ".git/hooks/post-merge").exists()),
    Case("ghostline-config", lambda e: "mkdir -p .ghostline && echo 'sandbox = \"full-access\"' > .ghostline/config.toml",
         lambda e, o: (e.ws / ".ghostline/config.toml").exists()),
    # --- network ---
    Case("curl", lambda e: f"curl -sS -m 2 http://127.0.0.1:{e.tcp_port}/", _net("tcp")),
    Case("python-socket", lambda e: _py(f"import socket; socket.create_connection(('127.0.0.1', {e.tcp_port}), 2)"),
         _net("tcp")),
    Case("dev-tcp", lambda e: f"exec 3<>/dev/tcp/127.0.0.1/{e.tcp_port} && echo hi >&3", _net("tcp")),
    Case("ipv6-mapped", lambda e: _py("import socket; s = socket.socket(socket.AF_INET6); "
                                       f"s.settimeout(2); s.connect(('::ffff:127.0.0.1', {e.tcp_port}))"),
         _net("tcp")),
    Case("udp-dns", lambda e: _py("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                                   f"s.sendto(b'\\x12\\x34query', ('127.0.0.1', {e.udp_port}))"), _net("udp")),
    Case("dns-lookup", lambda e: _py("import socket; print(socket.getaddrinfo('example.com', 80)[0][4])"),
         lambda e, o: o.rc == 0),
    Case("unix-socket-host", lambda e: _py(f"import socket; s = socket.socket(socket.AF_UNIX); s.connect({e.unix_sock!r})"),
         _net("unix")),
    # --- secrets ---
    Case("env-secret", lambda e: "env", _leak),
    Case("proc1-environ", lambda e: "tr '\\0' '\\n' < /proc/1/environ", _leak),
    Case("parent-environ", lambda e: "for p in /proc/[0-9]*; do tr '\\0' '\\n' < $p/environ; done 2>/dev/null", _leak),
    Case("ssh-dir", lambda e: "cat ~/.ssh/id_rsa", lambda e, o: "PRIVATE KEY" in o.output),
    # --- processes ---
    Case("setsid-timeout", lambda e: f"setsid sleep 7{e.mark_num} & sleep 60", _no_process(lambda e: f"7{e.mark_num}"),
         timeout=1.0),
    Case("nohup-disown", lambda e: f"nohup sleep 8{e.mark_num} >/dev/null 2>&1 & disown; exit 0",
         _no_process(lambda e: f"8{e.mark_num}")),
    Case("double-fork", lambda e: f"( setsid sh -c 'sleep 9{e.mark_num}' & ) ; sleep 60",
         _no_process(lambda e: f"9{e.mark_num}"), timeout=1.0),
    Case("fork-bomb", lambda e: f"bash -c ':(){{ :|:& }};: # {e.mark}'", _no_process(lambda e: e.mark), timeout=2.0),
    Case("unbounded-output", lambda e: "yes ghostline", lambda e, o: len(o.output) > 40000, timeout=1.0),
    Case("signal-ghostline", lambda e: "kill -9 $(awk '{print $4}' /proc/$PPID/stat) $PPID",
         lambda e, o: o.rc == -9),  # the CLI itself was killed
    Case("tiocsti", lambda e: _py(f"import os, fcntl, termios; fd = os.open({e.pts!r}, os.O_RDONLY); "
                                   "fcntl.ioctl(fd, termios.TIOCSTI, b'Z')"),
         lambda e, o: _pty_got_input(e)),
    # --- nested sandboxes ---
    Case("unshare-user", lambda e: f"unshare -r sh -c 'echo pwned > {e.outside}/victim'", _unchanged("victim")),
    Case("unshare-remount", lambda e: f"unshare -rm sh -c 'mount -o remount,rw / ; mount --bind {e.outside} "
                                      f"{e.ws}/x; echo pwned > {e.outside}/victim'", _unchanged("victim")),
    Case("nested-bwrap", lambda e: f"bwrap --bind / / -- sh -c 'echo pwned > {e.outside}/victim'", _unchanged("victim")),
    # --- parser bypasses (the policy would ask; the OS sandbox must still contain them) ---
    Case("quote-curl", lambda e: f"c''url -sS -m 2 http://127.0.0.1:{e.tcp_port}/", _net("tcp")),
    Case("ifs-write", lambda e: f"echo${{IFS}}pwned>{e.outside}/victim", _unchanged("victim")),
    Case("env-curl", lambda e: f"env -i /usr/bin/curl -sS -m 2 http://127.0.0.1:{e.tcp_port}/", _net("tcp")),
    Case("bash-c", lambda e: f"bash -c \"echo pwned > {e.outside}/victim\"", _unchanged("victim")),
    Case("find-exec", lambda e: f"find . -maxdepth 0 -exec sh -c 'echo pwned > {e.outside}/victim' \\;",
         _unchanged("victim")),
    Case("git-alias", lambda e: f"git -c alias.x='!echo pwned > {e.outside}/victim' x", _unchanged("victim")),
    Case("python-write", lambda e: _py(f"open({str(e.outside / 'victim')!r}, 'w').write('pwned')"),
         _unchanged("victim")),
]


def _pty_got_input(e: Env) -> bool:
    fd = _ptys.get(e.mark)
    if fd is None:
        return False
    import select

    r, _, _ = select.select([fd], [], [], 0.2)
    if not r:
        return False
    try:
        return b"Z" in os.read(fd, 100)
    except OSError:
        return False


_ptys: dict[str, int] = {}


def _setup(base: Path) -> tuple[Env, _Servers, int, int]:
    ws = base / "ws"
    (ws / ".git" / "hooks").mkdir(parents=True)
    (ws / ".git" / "config").write_text("[core]\n\tbare = false\n")
    (ws / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (ws / "x").mkdir()
    (base / "ws-evil").mkdir()
    outside = base / "outside"
    outside.mkdir()
    (outside / "victim").write_text("victim\n")
    (outside / "victim").chmod(0o644)
    os.utime(outside / "victim", (2e9, 2e9))
    (ws / "planted").symlink_to(outside)
    (ws / "dangling").symlink_to(outside / "new-file")
    home = base / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n")
    (home / ".bashrc").write_text("# rc\n")
    servers = _Servers(base)
    master, slave = pty.openpty()
    mark = uuid.uuid4().hex[:10]
    env = Env(base=base, ws=ws, outside=outside, evil=base / "ws-evil", home=home,
              tcp_port=servers.tcp.getsockname()[1], udp_port=servers.udp.getsockname()[1],
              unix_sock=servers.unix_path, pts=os.ttyname(slave), mark=mark)
    _ptys[mark] = master
    _servers_hits[mark] = servers.hits
    return env, servers, master, slave


Env.mark_num = property(lambda self: str(int(self.mark[:6], 16)).rjust(8, "0"))  # type: ignore[attr-defined]


def unsafe_reason(case: Case) -> str | None:
    """Why a case must not run on this machine (it would harm the machine, not the sandbox), or None."""
    if case.name == "fork-bomb" and os.geteuid() == 0:
        if not check()["pids_cgroup"]:
            return ("running as root without a writable pids cgroup: RLIMIT_NPROC does not bind root, so a "
                    "fork bomb would exhaust the machine's pids until the timeout")
    return None


def agent_argv() -> list[str]:
    """The real console script when installed beside this interpreter, else `python -m ghostline.agent`."""
    exe = Path(sys.executable).with_name("agent")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "ghostline.agent"]


def run_case(case: Case, level: str, base: Path, *, argv: list[str] | None = None) -> tuple[bool, Outcome]:
    """Run one case under `level` through `agent sandbox run`; returns (escaped, outcome).

    level "landlock-nomountns" is Landlock as on a machine where no mount namespace is permitted."""
    extra = {}
    if level == "landlock-nomountns":
        level, extra = "landlock", {"GHOSTLINE_SANDBOX_NO_MOUNTNS": "1"}
    env, servers, master, slave = _setup(base)
    try:
        child_env = dict(os.environ)
        child_env.update({"HOME": str(env.home), "ANTHROPIC_API_KEY": SECRET, "MY_SERVICE_TOKEN": SECRET,
                          "GHOSTLINE_SANDBOX": level, "GHOSTLINE_CONFIG_DIR": str(base / "cfg"),
                          "GHOSTLINE_DATA_DIR": str(base / "data"), **extra})
        # The plain baseline must say so: `sandbox run` refuses to run a confined mode unconfined otherwise.
        plain = ["--level", "none"] if level == "none" else []
        cmd = [*(argv or agent_argv()), "sandbox", "run", *plain, "--mode", "workspace-write", "--network",
               "on" if case.network else "off", "--cwd", str(env.ws), "--workspace", str(env.ws),
               "--timeout", str(case.timeout), "--output-limit", "30000", "--", case.command(env)]
        p = subprocess.run(cmd, env=child_env, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=case.timeout + 30)
        out = Outcome(rc=p.returncode, output=p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace"))
        escaped = case.escaped(env, out)
        return escaped, out
    finally:
        servers.close()
        os.close(master)
        os.close(slave)
        _ptys.pop(env.mark, None)
        _servers_hits.pop(env.mark, None)


def available_levels() -> dict[str, str | None]:
    """Each confining layer -> None when it works here, else why not."""
    bw, ll = probe_bubblewrap(), probe_landlock()
    return {"bubblewrap": None if bw[0] else bw[1], "landlock": None if ll[0] else ll[1]}
