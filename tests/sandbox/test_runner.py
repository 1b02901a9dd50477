from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from ghostline.sandbox import SandboxError, cgroups, detect_level, run_command
from ghostline.sandbox.runner import check
from tests.sandbox.conftest import confining_levels

ALL = [*confining_levels(), pytest.param("none", id="none")]


def _procs_with(marker: str) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        out.append(int(name))
            except OSError:
                pass
    return out


def _wait_gone(marker: str, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _procs_with(marker):
            return True
        time.sleep(0.05)
    for pid in _procs_with(marker):
        os.kill(pid, 9)
    return False


async def run(cmd: str, ws: Path, level: str, **kw):
    kw.setdefault("mode", "workspace-write")
    kw.setdefault("network", False)
    kw.setdefault("timeout", 10)
    return await run_command(cmd, cwd=kw.pop("cwd", ws), workspace=ws, level=level, **kw)


@pytest.mark.parametrize("level", ALL)
async def test_exit_code_output_and_level(tmp_path: Path, level: str) -> None:
    r = await run("echo out; echo err >&2; exit 3", tmp_path, level)
    assert r.exit_code == 3
    assert r.output == "out\nerr\n"
    assert r.level == level and not r.timed_out and not r.truncated


@pytest.mark.parametrize("level", ALL)
async def test_workspace_writes_and_stdin_is_devnull(tmp_path: Path, level: str) -> None:
    (tmp_path / "sub").mkdir()
    r = await run("pwd; echo hi > f.txt && cat f.txt; touch ../top.txt; read x; echo \"rc=$?\"", tmp_path, level,
                  cwd=tmp_path / "sub")
    assert r.exit_code == 0, r.output
    assert r.output.splitlines() == [os.path.realpath(tmp_path / "sub"), "hi", "rc=1"]
    assert (tmp_path / "top.txt").exists()


@pytest.mark.parametrize("level", confining_levels())
async def test_read_only_mode_blocks_workspace_writes(tmp_path: Path, level: str) -> None:
    r = await run("echo x > f.txt", tmp_path, level, mode="read-only")
    assert r.exit_code != 0
    assert not (tmp_path / "f.txt").exists()


@pytest.mark.parametrize("level", ALL)
async def test_secrets_scrubbed_and_extra_env_passed(tmp_path: Path, level: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-leak-1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "leak-2")
    monkeypatch.setenv("GITHUB_TOKEN", "leak-3")
    monkeypatch.setenv("SSH_AUTH_SOCK", "/tmp/leak-4")
    monkeypatch.setenv("HARMLESS_SETTING", "kept")
    r = await run("env", tmp_path, level, env={"EXTRA_VAR": "given"})
    assert "leak" not in r.output
    assert "HARMLESS_SETTING=kept" in r.output and "EXTRA_VAR=given" in r.output


@pytest.mark.parametrize("level", ALL)
async def test_output_capped_keeps_head_and_tail(tmp_path: Path, level: str) -> None:
    r = await run("echo START; seq 1 200000; echo END", tmp_path, level, output_limit=2000,
                  output_dir=tmp_path / "out")
    assert r.truncated and r.exit_code == 0
    assert r.output.startswith("START\n") and r.output.rstrip().endswith("END")
    assert "omitted" in r.output and len(r.output) < 2300
    full = Path(r.full_output_path)
    assert full.parent == tmp_path / "out"
    data = full.read_text()
    assert data.startswith("START\n1\n") and data.endswith("200000\nEND\n")


@pytest.mark.parametrize("level", ALL)
async def test_timeout_kills_group_and_setsid_children(tmp_path: Path, level: str) -> None:
    mark = str(700000 + uuid.uuid4().int % 99999)
    r = await run(f"setsid sleep {mark} & (setsid sh -c 'sleep {mark}1' &); echo started; sleep 60", tmp_path,
                  level, timeout=1.0)
    assert r.timed_out and r.exit_code == 124
    assert "started" in r.output and "timed out" in r.output
    assert _wait_gone(mark)


@pytest.mark.parametrize("level", ALL)
async def test_background_leftovers_killed_when_command_ends(tmp_path: Path, level: str) -> None:
    mark = str(600000 + uuid.uuid4().int % 99999)
    r = await run(f"nohup sleep {mark} >/dev/null 2>&1 & disown; echo done", tmp_path, level)
    assert r.exit_code == 0 and not r.timed_out
    assert _wait_gone(mark)


@pytest.mark.parametrize("level", ALL)
async def test_cancellation_kills_everything(tmp_path: Path, level: str) -> None:
    mark = str(500000 + uuid.uuid4().int % 99999)
    task = asyncio.create_task(run(f"setsid sleep {mark} & sleep {mark}2", tmp_path, level, timeout=60))
    deadline = time.monotonic() + 5
    while not _procs_with(mark) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert _procs_with(mark)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _wait_gone(mark)


class _Server:
    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(5)
        self.port = self.sock.getsockname()[1]
        self.hit = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        try:
            c, _ = self.sock.accept()
            self.hit.set()
            c.close()
        except OSError:
            pass


@pytest.mark.parametrize("level", confining_levels())
@pytest.mark.parametrize("network", [False, True], ids=["net-off", "net-on"])
async def test_network_flag(tmp_path: Path, level: str, network: bool) -> None:
    srv = _Server()
    try:
        code = f"import socket; socket.create_connection(('127.0.0.1', {srv.port}), 3)"
        r = await run(f"python3 -c \"{code}\"", tmp_path, level, network=network)
        assert (r.exit_code == 0) == network, r.output
        assert srv.hit.wait(0.5 if network else 0.2) == network
    finally:
        srv.sock.close()


@pytest.mark.parametrize("level", confining_levels())
async def test_protected_dirs_created_then_removed(tmp_path: Path, level: str) -> None:
    r = await run("mkdir -p .ghostline/x 2>&1; echo y > .git/config; ls -a", tmp_path, level)
    assert not (tmp_path / ".ghostline").exists() and not (tmp_path / ".git").exists()
    assert r.exit_code != 0 or "Read-only" in r.output or "denied" in r.output


async def test_full_access_runs_plain(tmp_path: Path) -> None:
    r = await run_command("echo x > ../fa.txt", cwd=tmp_path, workspace=tmp_path, mode="full-access",
                          network=False, timeout=10)
    assert r.exit_code == 0 and r.level == "none"
    assert (tmp_path.parent / "fa.txt").exists()


async def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(SandboxError):
        await run_command("true", cwd=tmp_path, workspace=tmp_path, mode="bogus", network=False, timeout=1)
    with pytest.raises(SandboxError):
        await run_command("true", cwd=tmp_path / "nope", workspace=tmp_path, mode="read-only", network=False,
                          timeout=1)


def test_detect_level_and_forcing(monkeypatch: pytest.MonkeyPatch) -> None:
    rep = check()
    assert rep["level"] in ("bubblewrap", "landlock", "none")
    monkeypatch.setenv("GHOSTLINE_SANDBOX", "none")
    assert detect_level() == "none"
    monkeypatch.setenv("GHOSTLINE_SANDBOX", "landlock")
    assert detect_level() == ("landlock" if rep["layers"]["landlock"]["available"] else "none")


@pytest.mark.parametrize("level", [p for p in confining_levels() if p.id == "landlock"])
async def test_landlock_without_mount_namespace_keeps_git_protected(tmp_path: Path, level: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # As on a machine where no mount namespace is permitted: write rights per child of the workspace.
    monkeypatch.setenv("GHOSTLINE_SANDBOX_NO_MOUNTNS", "1")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("[core]\n")
    (tmp_path / "f.txt").write_text("a\n")
    (tmp_path / "sub").mkdir()
    r = await run("echo b >> f.txt && touch sub/new && echo ok; echo x >> .git/config; mv .git g2", tmp_path, level)
    assert "ok" in r.output
    assert (tmp_path / "f.txt").read_text() == "a\nb\n" and (tmp_path / "sub" / "new").exists()
    assert (tmp_path / ".git" / "config").read_text() == "[core]\n"


@pytest.mark.parametrize("level", ALL)
async def test_closed_stdout_still_honours_timeout(tmp_path: Path, level: str) -> None:
    r = await run("echo early; exec >&- 2>&-; sleep 0.5; touch done.txt", tmp_path, level, timeout=20)
    assert r.exit_code == 0 and r.output == "early\n" and not r.timed_out
    assert (tmp_path / "done.txt").exists()
    r = await run("exec >&- 2>&-; sleep 30", tmp_path, level, timeout=1)
    assert r.timed_out and r.exit_code == 124


@pytest.mark.parametrize("level", ALL)
async def test_common_tools_work_inside(tmp_path: Path, level: str) -> None:
    # multiprocessing needs a writable /dev/shm; tempfile a writable TMPDIR; git reads the system.
    code = "import multiprocessing as m, tempfile; m.Lock(); tempfile.mkstemp(); print('mp-ok')"
    r = await run(f"python3 -c \"{code}\" && git init -q inner && echo git-ok", tmp_path, level)
    assert r.exit_code == 0, r.output
    assert "mp-ok" in r.output and "git-ok" in r.output


@pytest.mark.parametrize("v1", [True, False], ids=["v1-tasks", "cgroup-procs"])
@pytest.mark.parametrize("level", confining_levels())
async def test_command_runs_in_its_pids_cgroup(tmp_path: Path, level: str, v1: bool,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    root = cgroups.pids_root()
    if root is None:
        pytest.skip("no writable pids cgroup here (not root, or no pids controller)")
    if not v1:  # the cgroup v2 way (cgroup.procs; for Landlock, written by the parent while the trampoline waits)
        monkeypatch.setattr(cgroups, "is_v1", lambda d: False)
    marker = uuid.uuid4().hex
    task = asyncio.ensure_future(run(f"sleep 5; echo {marker}", tmp_path, level))
    try:
        pids: list[int] = []
        for _ in range(200):
            pids = _procs_with(marker)
            if pids and any(_cmdline(p).startswith(b"/bin/bash") for p in pids):
                break
            await asyncio.sleep(0.025)
        assert pids, "the command did not start"
        rel = "/" + os.path.basename(root) + "/"  # seen from outside the sandbox (bubblewrap has a cgroup ns)
        for pid in pids:
            with open(f"/proc/{pid}/cgroup") as f:
                lines = [ln for ln in f.read().splitlines() if ln.split(":")[1] in ("pids", "")]
            assert any(rel in ln for ln in lines), (pid, _cmdline(pid), lines)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert _wait_gone(marker)


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _detected_level(path: str | None, forced: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PATH", "GHOSTLINE_SANDBOX")}
    env.update({"PATH": path} if path is not None else {})
    env.update({"GHOSTLINE_SANDBOX": forced} if forced else {})
    code = "from ghostline.sandbox import detect_level; print(detect_level())"
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


@pytest.mark.parametrize("forced", [None, "landlock"])
def test_layer_detection_does_not_depend_on_path(forced: str | None) -> None:
    # Each probe runs its own layer; forcing Landlock probes it even where bubblewrap works.
    assert _detected_level("", forced) == _detected_level(os.environ.get("PATH"), forced)


def test_cgroups_of_dead_processes_are_swept() -> None:
    root = cgroups.pids_root()
    if root is None:
        pytest.skip("no writable pids cgroup here (not root, or no pids controller)")
    gone = subprocess.run(["/bin/sh", "-c", "echo $$"], capture_output=True, text=True).stdout.strip()
    stale, ours = Path(root, f"{gone}-{uuid.uuid4().hex[:8]}"), Path(root, f"{os.getpid()}-{uuid.uuid4().hex[:8]}")
    stale.mkdir()
    ours.mkdir()
    try:
        cgroups._sweep_stale(root)
        assert not stale.exists() and ours.exists()
    finally:
        for d in (stale, ours):
            with contextlib.suppress(OSError):
                d.rmdir()
