from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ghostline.agent.commands.sandbox import register
from ghostline.sandbox import detect_level
from ghostline.sandbox.checkpoints import Checkpoints
from ghostline.sandbox.store import is_trusted, remember


@pytest.fixture
def app() -> typer.Typer:
    a = typer.Typer()

    @a.callback()
    def main() -> None:
        """test app"""

    register(a)
    return a


runner = CliRunner()


def layer_args() -> list[str]:
    """Where no OS layer works, `sandbox run` refuses the confined modes unless told `--level none`."""
    return ["--level", "none"] if detect_level() == "none" else []


def test_sandbox_check(app: typer.Typer) -> None:
    r = runner.invoke(app, ["sandbox", "check"])
    assert r.exit_code == 0
    assert "level in force:" in r.output
    r = runner.invoke(app, ["sandbox", "check", "--json"])
    rep = json.loads(r.output)
    assert rep["level"] in ("bubblewrap", "landlock", "none")


def test_sandbox_run_exit_code_and_errors(app: typer.Typer, tmp_path: Path) -> None:
    run = ["sandbox", "run", *layer_args(), "--cwd", str(tmp_path)]
    r = runner.invoke(app, [*run, "--", "sh", "-c", "echo hi; exit 7"])
    assert r.exit_code == 7 and "hi" in r.output
    r = runner.invoke(app, [*run, "--", "echo a | tr a b"])
    assert r.exit_code == 0 and r.output.strip() == "b"
    r = runner.invoke(app, ["sandbox", "run", "--mode", "nope", "--", "true"])
    assert r.exit_code == 2 and "--mode" in r.output
    r = runner.invoke(app, ["sandbox", "run", "--cwd", str(tmp_path / "missing"), "--", "true"])
    assert r.exit_code == 2


def test_sandbox_run_fails_closed_without_a_layer(app: typer.Typer, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GHOSTLINE_SANDBOX", "none")  # as where no OS layer works
    run = ["sandbox", "run", "--cwd", str(tmp_path)]
    for mode in ("workspace-write", "read-only"):
        r = runner.invoke(app, [*run, "--mode", mode, "--", "touch made"])
        assert r.exit_code == 2, r.output
        assert r.output.count("\n") == 1 and "refusing to run the command unconfined" in r.output
        assert "--level none" in r.output and not (tmp_path / "made").exists()
    r = runner.invoke(app, [*run, "--level", "none", "--", "touch made"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "made").exists()
    r = runner.invoke(app, [*run, "--mode", "full-access", "--", "echo plain"])
    assert r.exit_code == 0 and r.output == "plain\n"


def test_undo_command(app: typer.Typer, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("v1")
    Checkpoints(tmp_path).snapshot("abc:1")
    (tmp_path / "f.txt").write_text("v2")
    (tmp_path / "g.txt").write_text("new")
    r = runner.invoke(app, ["undo", "--cwd", str(tmp_path), "--list"])
    assert r.exit_code == 0 and "abc:1" in r.output
    r = runner.invoke(app, ["undo", "--cwd", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "f.txt").read_text() == "v1" and not (tmp_path / "g.txt").exists()
    r = runner.invoke(app, ["undo", "--cwd", str(tmp_path)])
    assert r.exit_code == 1 and "no checkpoints" in r.output
    r = runner.invoke(app, ["undo", "--turns", "0", "--cwd", str(tmp_path)])
    assert r.exit_code == 2


def test_undo_says_in_one_line_why_checkpoints_are_off(app: typer.Typer, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GHOSTLINE_CHECKPOINT_MAX_MB", "0.05")
    ws = tmp_path / "w"
    ws.mkdir()
    (ws / "big.bin").write_bytes(os.urandom(200_000))
    assert Checkpoints(ws).snapshot("s:1") is None
    for args in (["undo", "--cwd", str(ws)], ["undo", "--list", "--cwd", str(ws)]):
        r = runner.invoke(app, args)
        assert "checkpoints are off" in r.output and "GHOSTLINE_CHECKPOINT_MAX_MB" in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1
    assert runner.invoke(app, ["undo", "--cwd", str(ws)]).exit_code == 1


def test_permissions_and_trust_commands(app: typer.Typer, tmp_path: Path) -> None:
    remember(tmp_path, "bash: npm run test *")
    r = runner.invoke(app, ["permissions", "--cwd", str(tmp_path)])
    assert r.exit_code == 0 and "npm run test *" in r.output
    r = runner.invoke(app, ["permissions", "--all"])
    assert str(tmp_path.resolve()) in r.output
    r = runner.invoke(app, ["permissions", "--clear", "--cwd", str(tmp_path)])
    assert "forgot 1" in r.output
    assert "no remembered" in runner.invoke(app, ["permissions", "--cwd", str(tmp_path)]).output
    r = runner.invoke(app, ["trust", str(tmp_path)])
    assert r.exit_code == 0 and is_trusted(tmp_path)
    assert str(tmp_path.resolve()) in runner.invoke(app, ["trust", "--list"]).output
    runner.invoke(app, ["trust", str(tmp_path), "--remove"])
    assert not is_trusted(tmp_path)


def test_real_console_script(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("agent")
    if not exe.exists():
        pytest.skip("the console script is not installed beside this interpreter")
    p = subprocess.run([str(exe), "sandbox", "run", *layer_args(), "--cwd", str(tmp_path), "--",
                        "echo ok > f; exit 5"], capture_output=True, text=True, env=dict(os.environ), timeout=60)
    assert p.returncode == 5 and (tmp_path / "f").read_text() == "ok\n"
    p = subprocess.run([str(exe), "sandbox", "check"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "level in force" in p.stdout


def test_ctrl_c_kills_the_command_tree(tmp_path: Path) -> None:
    import signal
    import time
    import uuid

    exe = Path(sys.executable).with_name("agent")
    if not exe.exists():
        pytest.skip("the console script is not installed beside this interpreter")
    mark = str(400000 + uuid.uuid4().int % 99999)
    p = subprocess.Popen([str(exe), "sandbox", "run", *layer_args(), "--cwd", str(tmp_path), "--",
                          f"setsid sleep {mark} & sleep {mark}1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def alive() -> list[str]:
        out = []
        for n in os.listdir("/proc"):
            if n.isdigit() and int(n) != p.pid:
                try:
                    with open(f"/proc/{n}/cmdline", "rb") as f:
                        cmd = f.read()
                except OSError:
                    continue
                if cmd.startswith(b"sleep\0") and mark.encode() in cmd:
                    out.append(n)
        return out

    deadline = time.monotonic() + 20
    while len(alive()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(alive()) == 2
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=20)
    assert p.returncode == 130
    assert b"Traceback" not in out and b"Exception ignored" not in out
    deadline = time.monotonic() + 3
    while alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive()
