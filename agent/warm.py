"""A warm process for `agent run`: the imports a run needs (the SDKs, the loop, the tools, the token encoding)
happen once, in a background server, and each run is a fork of it that takes over the caller's terminal.

Why: importing the SDKs and Ghostline costs ~0.8 s of CPU before the first model request, on every run; a fork
costs a few milliseconds. The caller (`agent run ...`, see `try_warm_run`) passes its argv, environment, working
directory and its stdin/stdout/stderr (as file descriptors over a Unix socket); the server forks a child that
becomes that run and reports its exit code; signals the caller gets (Ctrl-C) are forwarded to the child.

Stdlib only, and cheap to import: the client side runs before anything else in `agent`. The server is
single-threaded (fork is only safe without other threads), keyed by the code it runs (a changed checkout gets a
new server; the old one notices and leaves) and by the Python and `GHOSTLINE_*` settings read at import time.
It leaves after `IDLE_EXIT_S` without a run. GHOSTLINE_WARM=0 turns it off; CI runs use it only with
GHOSTLINE_WARM=1.
"""

from __future__ import annotations

import array
import hashlib
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time
from pathlib import Path

from ghostline.agent.lifecycle import (
    exit_code_of,
    exit_without_teardown,
    keep_compiled_code,
    main,
    plain_cli_output,
)

IDLE_EXIT_S = 900.0
CONNECT_TIMEOUT_S = 0.5
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_HEADER = struct.Struct("!I")
# Settings read when modules are imported (and the state dir, so separate setups keep separate servers): runs that
# differ in them must not share a server.
_IMPORT_TIME_ENV = ("PYTHONPATH", "GHOSTLINE_NO_TIKTOKEN", "TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR",
                    "GHOSTLINE_STATE_DIR", "XDG_STATE_HOME")


# -- where ---------------------------------------------------------------------------------------------------

def _runtime_dir() -> Path:
    """A short path (a Unix socket's name is limited to 107 bytes): XDG_RUNTIME_DIR, else a private /tmp dir."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    return Path(base) / "ghostline" if base else Path("/tmp") / f"ghostline-warm-{os.getuid()}"


def _private_dir(d: Path) -> bool:
    """Ours alone (in a shared /tmp, someone else's directory or symlink must not be used)."""
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = os.lstat(d)
    except OSError:
        return False
    return st.st_uid == os.getuid() and not (st.st_mode & 0o077) and os.path.isdir(d) and not os.path.islink(d)


PACKAGES = ("agent", "tools", "compaction", "apply", "sandbox", "daemon", "index")


def _package_root() -> Path:
    """The folder holding Ghostline's packages (a checkout's root, or site-packages/ghostline)."""
    return Path(__file__).resolve().parent.parent


def _interpreter() -> str:
    """The environment and interpreter a run uses. Not sys.executable: `python` and `python3` in one venv are the
    same interpreter, and the `agent` script's shebang may name either."""
    return f"{sys.prefix}:{os.path.realpath(sys.executable)}:{sys.version}"


def code_fingerprint() -> str:
    """Changes when any of Ghostline's Python files does (a checkout being edited, an upgrade)."""
    h = hashlib.sha256(_interpreter().encode())
    root = _package_root()
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            try:
                st = path.stat()
            except OSError:
                continue
            h.update(f"{path.relative_to(root)}:{st.st_mtime_ns}:{st.st_size}\n".encode())
    return h.hexdigest()[:16]


def socket_path(env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    key = hashlib.sha256(repr([_interpreter(), str(_package_root())] + [env.get(k) for k in _IMPORT_TIME_ENV])
                         .encode()).hexdigest()[:16]
    return _runtime_dir() / f"agent-{key}.sock"


def enabled(argv: list[str]) -> bool:
    """Warm runs are for `agent run` only (the TUI needs a controlling terminal: it resizes and suspends)."""
    setting = os.environ.get("GHOSTLINE_WARM", "")
    if setting == "0" or not argv or argv[0] != "run":
        return False
    ci = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
    return setting == "1" or not ci


# -- messages: a 4-byte length, then JSON -----------------------------------------------------------------------

def _send(sock: socket.socket, message: dict, fds: list[int] | None = None) -> None:
    data = json.dumps(message).encode()
    packet = _HEADER.pack(len(data)) + data
    if fds:
        sock.sendmsg([packet], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    else:
        sock.sendall(packet)


def _recv(sock: socket.socket, with_fds: int = 0) -> tuple[dict | None, list[int]]:
    """One message (None at EOF) and the file descriptors that came with it."""
    fds: list[int] = []
    head = b""
    while len(head) < _HEADER.size:
        if with_fds and not fds:
            chunk, ancdata, _, _ = sock.recvmsg(_HEADER.size - len(head), socket.CMSG_LEN(4 * with_fds))
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.extend(array.array("i", payload[: len(payload) - len(payload) % 4]))
        else:
            chunk = sock.recv(_HEADER.size - len(head))
        if not chunk:
            return None, fds
        head += chunk
    (size,) = _HEADER.unpack(head)
    body = b""
    while len(body) < size:
        chunk = sock.recv(size - len(body))
        if not chunk:
            return None, fds
        body += chunk
    return json.loads(body), fds


# -- the client ---------------------------------------------------------------------------------------------

def try_warm_run(argv: list[str]) -> int | None:
    """Run `agent <argv>` in the warm server; its exit code, or None to run here (no server, or a stale one).
    Starts a server for the next run when none answers."""
    if not enabled(argv):
        return None
    path = socket_path()
    if not _private_dir(path.parent):
        return None
    sock = _connect(path)
    if sock is None:
        _start_server(path)
        return None
    with sock:
        request = {"argv": argv, "env": dict(os.environ), "cwd": os.getcwd(), "umask": _umask()}
        try:
            _send(sock, request, [0, 1, 2])
            reply, _ = _recv(sock)
        except OSError:
            return None
        if not reply or "pid" not in reply:
            return None  # stale or refused: this run imports for itself
        return _wait_for_exit(sock)


def query(what: str, path: Path | None = None) -> dict | None:
    """Ask the server for `path` (default: this environment's) "status" or to "stop"; None when none answers."""
    sock = _connect(path or socket_path())
    if sock is None:
        return None
    with sock:
        try:
            _send(sock, {"query": what})
            reply, _ = _recv(sock)
        except OSError:
            return None
    return reply if reply is not None and "pid" in reply else None  # a server of other code: it goes by itself


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _connect(path: Path) -> socket.socket | None:
    if not path.exists():
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(CONNECT_TIMEOUT_S)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        return None
    sock.settimeout(None)
    return sock


def _wait_for_exit(sock: socket.socket) -> int:
    """Forward the signals this process gets to the run until it reports its exit code."""
    def forward(signum: int, _frame: object) -> None:
        try:
            _send(sock, {"signal": signum})
        except OSError:
            pass

    previous = {s: signal.signal(s, forward) for s in FORWARDED_SIGNALS}
    try:
        while True:
            try:
                reply, _ = _recv(sock)
            except InterruptedError:
                continue
            if reply is None:
                return 1  # the server went away mid-run
            if "exit" in reply:
                return int(reply["exit"])
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _start_server(path: Path) -> None:
    """Fork a detached server for the next runs (this run goes on importing for itself)."""
    try:
        pid = os.fork()
    except OSError:
        return
    if pid:
        os.waitpid(pid, 0)  # the intermediate child exits at once; the server is its orphan
        return
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        os.chdir("/")  # hold no directory of the caller's (a temporary one may go away)
        devnull = os.open(os.devnull, os.O_RDWR)
        log = os.open(path.with_suffix(".log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        for fd, target in ((0, devnull), (1, devnull), (2, log)):
            os.dup2(target, fd)
        serve(path)
    except BaseException:
        import traceback

        traceback.print_exc()  # into the log beside the socket: the caller has long gone on
    finally:
        os._exit(0)


# -- the server ---------------------------------------------------------------------------------------------

def warm_up() -> None:
    """Import what a run imports, and load the token encoding, so a fork starts where a run would be after
    ~0.8 s. Nothing that depends on a run's environment or directory is computed here."""
    plain_cli_output()
    code_cache = keep_compiled_code()
    from ghostline.agent import cli, runner  # noqa: F401 - importing is the point
    from ghostline.agent.providers import anthropic, openai
    from ghostline.agent.providers.sdk_import import load_sdk
    from ghostline.compaction.tokens import load_encoding

    for name, client, modules in (("anthropic", "AsyncAnthropic", anthropic.FIRST_REQUEST_MODULES),
                                  ("openai", "AsyncOpenAI", openai.FIRST_REQUEST_MODULES)):
        try:
            load_sdk(name, client, preload=modules).get()
        except Exception:  # a broken SDK: runs that need it import (and fail) for themselves
            pass
    load_encoding()
    if code_cache is not None:
        code_cache.save()  # now, not at exit: each fork would write it again when it ends


def serve(path: Path) -> None:
    """Accept runs until idle for IDLE_EXIT_S or the code changes under us."""
    warm_up()
    fingerprint = code_fingerprint()
    listener = _listen(path)
    if listener is None:
        return
    server = _Server(listener, path, fingerprint)
    server.loop()


def _listen(path: Path) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = path.with_name(f"{os.getpid()}.tmp")
    try:
        sock.bind(str(tmp))
        os.chmod(tmp, 0o600)
        sock.listen(16)
        os.replace(tmp, path)  # atomically: a racing second server simply takes over the name
    except OSError:
        sock.close()
        return None
    return sock


class _Server:
    def __init__(self, listener: socket.socket, path: Path, fingerprint: str) -> None:
        self.listener, self.path, self.fingerprint = listener, path, fingerprint
        self.inode = os.stat(path).st_ino  # a socket's fstat is of the socket, not of the name it is bound to
        self.runs: dict[socket.socket, int] = {}  # connection -> the pid of its run
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ)
        self.last_activity = time.monotonic()
        self.served = 0
        self.stopping = False
        # A run that ends wakes select() through this pipe: a Python signal handler alone would not (select is
        # retried after it runs), and the caller would wait for the next timeout to learn its exit code.
        self.wakeup_r, self.wakeup_w = os.pipe()
        for fd in (self.wakeup_r, self.wakeup_w):
            os.set_blocking(fd, False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wakeup_w, warn_on_full_buffer=False)
        self.selector.register(self.wakeup_r, selectors.EVENT_READ)

    def loop(self) -> None:
        while True:
            idle = time.monotonic() - self.last_activity > IDLE_EXIT_S
            if not self.runs and (idle or self.stopping):
                return self._close()
            for key, _ in self.selector.select(timeout=1.0):
                if key.fileobj is self.listener:
                    self._accept()
                elif key.fileobj == self.wakeup_r:
                    with _quiet():
                        os.read(self.wakeup_r, 512)  # a signal came: the reap below sees to it
                else:
                    self._message(key.fileobj)  # type: ignore[arg-type]
            self._reap()
            if not self._still_current():
                return self._close()

    def _still_current(self) -> bool:
        """Whether our socket is still the one at `path` (a newer server may have taken the name over); a
        server with runs in flight stays until they end."""
        return bool(self.runs) or self._holds_path()

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        self.last_activity = time.monotonic()
        if not _same_user(conn):
            conn.close()
            return
        try:
            request, fds = _recv(conn, with_fds=3)
        except (OSError, ValueError):
            conn.close()
            return
        if request is not None and not fds and request.get("query") in ("status", "stop"):
            return self._answer(conn, request["query"])
        if request is None or len(fds) != 3 or code_fingerprint() != self.fingerprint:
            for fd in fds:
                os.close(fd)
            with _quiet():
                _send(conn, {"stale": True})
            conn.close()
            if request is not None and len(fds) == 3:
                self._close()  # the code changed: the next run starts a fresh server
            return
        pid = os.fork()
        if pid == 0:
            self._become_run(request, fds)
        for fd in fds:
            os.close(fd)
        self.runs[conn] = pid
        self.served += 1
        self.selector.register(conn, selectors.EVENT_READ)
        with _quiet():
            _send(conn, {"pid": pid})

    def _answer(self, conn: socket.socket, query: str) -> None:
        """`agent warm status|stop`: who serves, and how much; a stop lets runs in flight finish first."""
        self.stopping = self.stopping or query == "stop"
        with _quiet():
            _send(conn, {"pid": os.getpid(), "served": self.served, "running": len(self.runs),
                         "fingerprint": self.fingerprint, "stopping": self.stopping})
        conn.close()

    def _become_run(self, request: dict, fds: list[int]) -> None:
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            self.selector.close()
            self.listener.close()
            os.close(self.wakeup_r)
            os.close(self.wakeup_w)
            for conn in self.runs:
                conn.close()
            code = _run_request(request, fds)
        finally:
            exit_without_teardown(code)

    def _message(self, conn: socket.socket) -> None:
        pid = self.runs.get(conn)
        try:
            msg, _ = _recv(conn)
        except OSError:
            msg = None
        if msg is None:  # the caller went away: so does its run
            self.selector.unregister(conn)
            if pid is not None:
                with _quiet():
                    os.killpg(pid, signal.SIGTERM)
            return
        if pid is not None and isinstance(msg.get("signal"), int):
            with _quiet():
                os.killpg(pid, msg["signal"])

    def _reap(self) -> None:
        for conn, pid in list(self.runs.items()):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 1 << 8
            if done == 0:
                continue
            code = os.waitstatus_to_exitcode(status)
            with _quiet():
                _send(conn, {"exit": code if code >= 0 else 128 - code})
            with _quiet():
                self.selector.unregister(conn)
            conn.close()
            del self.runs[conn]
            self.last_activity = time.monotonic()

    def _holds_path(self) -> bool:
        try:
            return os.stat(self.path).st_ino == self.inode
        except OSError:
            return False

    def _close(self) -> None:
        if self._holds_path():
            with _quiet():
                os.unlink(self.path)
        self.listener.close()


def _same_user(conn: socket.socket) -> bool:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid == os.getuid()


class _quiet:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], OSError)  # type: ignore[arg-type]


def _run_request(request: dict, fds: list[int]) -> int:
    """In the forked child: become the caller's run (its terminal, environment, directory, arguments)."""
    os.setsid()  # its own process group: signals forwarded to it never reach the server
    for sig in (signal.SIGCHLD, *FORWARDED_SIGNALS):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    _reopen_std_streams()
    os.chdir(request["cwd"])
    os.umask(int(request["umask"]))
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["agent", *request["argv"]]
    return exit_code_of(main)


def _reopen_std_streams() -> None:
    """Python picked buffering at start for the server's /dev/null: a terminal wants line buffering."""
    def stream(fd: int, mode: str) -> object:
        line = os.isatty(fd) or fd == 2
        return open(fd, mode, buffering=1 if line and "w" in mode else -1, encoding="utf-8",  # noqa: SIM115
                    errors="replace" if "w" in mode else "strict", closefd=False)

    sys.stdin, sys.stdout, sys.stderr = stream(0, "r"), stream(1, "w"), stream(2, "w")  # type: ignore[assignment]
