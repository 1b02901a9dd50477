"""Running the daemon in the foreground (`serve`) and managing a background one (`start`/`stop`/`status`):
a pid file (JSON: pid, host, port), a log file and the local telemetry store in the user state dir."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ghostline.daemon.paths import log_path, pid_path, telemetry_path, token_path


class DaemonError(Exception):
    """A user-facing daemon error (one line)."""


@dataclass
class ServeOptions:
    model: str | None = None
    port: int = 8012
    host: str = "127.0.0.1"
    fim_format: str | None = None
    backend: str | None = None
    backend_model: str = ""
    backend_api_key: str = ""
    device: str | None = None
    no_kv_reuse: bool = False
    cache_mb: int = 1024
    deadline_ms: float = 0.0
    repo: str | None = None
    no_auth: bool = False
    no_telemetry: bool = False

    def argv(self) -> list[str]:
        out = ["--port", str(self.port), "--host", self.host]
        for flag, val in (("--model", self.model), ("--fim-format", self.fim_format), ("--backend", self.backend),
                          ("--backend-model", self.backend_model or None), ("--device", self.device),
                          ("--repo", self.repo)):
            if val:
                out += [flag, str(val)]
        if self.no_kv_reuse:
            out.append("--no-kv-reuse")
        if self.cache_mb != 1024:
            out += ["--cache-mb", str(self.cache_mb)]
        if self.deadline_ms:
            out += ["--deadline-ms", str(self.deadline_ms)]
        if self.no_auth:
            out.append("--no-auth")
        if self.no_telemetry:
            out.append("--no-telemetry")
        return out


def serve(opts: ServeOptions, *, write_pid: bool = False, announce: Any = print) -> None:
    """Load the engine and serve until interrupted. Raises DaemonError for user errors.

    The pid file (pid, host, port, how it was started) is written for a foreground daemon as for a background one
    (`write_pid`: started by `start`), so `status` and the LSP bridge find either -- unless another live daemon
    owns it already."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    engine = _load(opts)
    token = None if opts.no_auth else _token()
    telemetry = None
    if not opts.no_telemetry:
        from ghostline.daemon.telemetry import Telemetry

        telemetry = Telemetry(telemetry_path())
    owns_pid = [False]

    def ready(port: int) -> None:
        owns_pid[0] = _claim_pid_file(opts.host, port, "start" if write_pid else "serve", bool(token))
        what = engine.model_name if engine.backend is not None else "classical completions (no model)"
        announce(f"ghostline daemon on http://{opts.host}:{port} serving {what}"
                 + (f"; token in {token_path()} (`agent daemon token` prints it)" if token else "; no auth")
                 + (f"; local telemetry in {telemetry_path()}" if telemetry is not None else "; no telemetry"))

    from ghostline.daemon.server.app import serve_forever

    try:
        asyncio.run(serve_forever(engine, opts.host, opts.port, token, model_path=opts.model or "",
                                  on_ready=ready, telemetry=telemetry))
    except OSError as e:
        raise DaemonError(f"cannot listen on {opts.host}:{opts.port}: {e.strerror or e}") from e
    except KeyboardInterrupt:
        pass
    finally:
        if owns_pid[0]:
            _release_pid_file()


def _load(opts: ServeOptions) -> Any:
    from ghostline.daemon.engine import load_engine
    from ghostline.daemon.engine.model import ModelLoadError

    if opts.model and opts.backend:
        raise DaemonError("give either --model (a local checkpoint) or --backend (a server URL), not both")
    if opts.model and not Path(opts.model).expanduser().exists():
        raise DaemonError(f"model path does not exist: {opts.model}")
    if opts.backend_api_key == "" and opts.backend:
        opts.backend_api_key = os.environ.get("GHOSTLINE_BACKEND_API_KEY", "")
    try:
        return load_engine(
            opts.model, backend_url=opts.backend, fim_format=opts.fim_format, api_key=opts.backend_api_key,
            remote_model=opts.backend_model, device=opts.device, kv_reuse=not opts.no_kv_reuse,
            cache_mb=opts.cache_mb, deadline_ms=opts.deadline_ms, repo=opts.repo,
        )
    except (ModelLoadError, ValueError) as e:
        raise DaemonError(str(e)) from e


def _token() -> str:
    from ghostline.daemon.server.security import load_or_create_token

    return load_or_create_token()


def _claim_pid_file(host: str, port: int, mode: str, auth: bool) -> bool:
    """Write the pid file unless another live daemon owns it. True when written."""
    info = read_pid()
    if info is not None and info["pid"] != os.getpid() and _alive(info["pid"]):
        logging.getLogger("ghostline.daemon").warning(
            "another daemon (pid %s, port %s) owns %s: `agent daemon status` shows that one", info["pid"],
            info.get("port"), pid_path())
        return False
    pid_path().parent.mkdir(parents=True, exist_ok=True)
    pid_path().write_text(json.dumps({"pid": os.getpid(), "host": host, "port": port, "mode": mode, "auth": auth}))
    return True


def _release_pid_file() -> None:
    try:
        info = json.loads(pid_path().read_text())
        if info.get("pid") == os.getpid():
            pid_path().unlink()
    except (OSError, ValueError):
        pass


def exit_process(code: int) -> None:
    """End the daemon's process now that serving is over (the pid file removed, the telemetry written): flush
    what is printed and logged, then leave without the interpreter's teardown, which with torch loaded spends
    seconds in native thread pools (a daemon must be gone within a second of SIGTERM)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    logging.shutdown()
    os._exit(code)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # an exited child nobody has reaped yet (PID 1 in some containers does not) is not alive
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            if f.read().rsplit(")", 1)[-1].split()[0] == "Z":
                return False
    except (OSError, IndexError):
        pass
    return True


def read_pid() -> dict[str, Any] | None:
    try:
        info = json.loads(pid_path().read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not isinstance(info.get("pid"), int):
        return None
    return info


def status() -> dict[str, Any]:
    info = read_pid()
    if info is None:
        return {"running": False, "pid_file": str(pid_path()), "log_file": str(log_path())}
    running = _alive(info["pid"])
    out = {"running": running, **info, "pid_file": str(pid_path()), "log_file": str(log_path())}
    if running:
        host, port = info.get("host", "127.0.0.1"), int(info.get("port", 8012))
        out["healthy"] = _health(host, port)
        if out["healthy"]:
            out["daemon"] = _daemon_status(host, port)
    else:
        pid_path().unlink(missing_ok=True)
    return out


def _daemon_status(host: str, port: int, timeout: float = 2.0) -> dict[str, Any]:
    """The daemon's own GET /v1/status (with the token): rejected requests, secrets blocked, cache figures."""
    import http.client

    from ghostline.daemon.server.security import read_token

    h = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    headers = {"Host": f"127.0.0.1:{port}"}
    token = read_token()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn = http.client.HTTPConnection(h, port, timeout=timeout)
        conn.request("GET", "/v1/status", headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        if resp.status != 200:
            return {"error": f"HTTP {resp.status} (is {token_path()} the token this daemon uses?)"}
        obj = json.loads(body)
        return obj if isinstance(obj, dict) else {}
    except (OSError, ValueError) as e:
        return {"error": str(e) or type(e).__name__}


def _health(host: str, port: int, timeout: float = 1.0) -> bool:
    import http.client

    h = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    try:
        conn = http.client.HTTPConnection(h, port, timeout=timeout)
        conn.request("GET", "/health", headers={"Host": f"127.0.0.1:{port}"})
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def start(opts: ServeOptions, wait_s: float = 120.0) -> dict[str, Any]:
    """Start a background daemon (its own session, output to the log file) and wait until /health answers."""
    st = status()
    if st["running"]:
        raise DaemonError(f"a daemon is already running (pid {st['pid']}, port {st.get('port')})")
    log_path().parent.mkdir(parents=True, exist_ok=True)
    logf = open(log_path(), "ab")
    cmd = [sys.executable, "-m", "ghostline.daemon", "serve", "--write-pid", *opts.argv()]
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, env=env, cwd=os.getcwd())
    logf.close()
    t0 = time.monotonic()
    while time.monotonic() - t0 < wait_s:
        if proc.poll() is not None:
            tail = log_path().read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            raise DaemonError(f"the daemon exited at startup: {tail[0]} (log: {log_path()})")
        info = read_pid()
        if info and info["pid"] == proc.pid and _health(opts.host, int(info["port"]), 0.5):
            return {"running": True, **info, "log_file": str(log_path())}
        time.sleep(0.1)
    raise DaemonError(f"the daemon did not become healthy within {wait_s:.0f}s (log: {log_path()})")


def stop(timeout_s: float = 10.0) -> dict[str, Any]:
    info = read_pid()
    if info is None or not _alive(info["pid"]):
        pid_path().unlink(missing_ok=True)
        return {"stopped": False, "reason": "no daemon is running"}
    pid = info["pid"]
    os.kill(pid, signal.SIGTERM)
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if not _alive(pid):
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
    pid_path().unlink(missing_ok=True)
    return {"stopped": True, "pid": pid}
