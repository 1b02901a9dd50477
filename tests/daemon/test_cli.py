"""`agent daemon ...` through typer (register into a fresh app), and a real background daemon start/stop."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_commands(daemon_cli):
    r = CliRunner().invoke(daemon_cli, ["daemon", "--help"])
    assert r.exit_code == 0
    for cmd in ("serve", "start", "stop", "status"):
        assert cmd in r.output
    r = CliRunner().invoke(daemon_cli, ["daemon", "serve", "--help"])
    for opt in ("--model", "--port", "--host", "--fim-format", "--backend"):
        assert opt in r.output


def test_user_errors_are_one_line(daemon_cli, tmp_path):
    r = CliRunner().invoke(daemon_cli, ["daemon", "serve", "--fim-format", "bogus"])
    assert r.exit_code == 2 and "unknown FIM format" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(daemon_cli, ["daemon", "serve", "--model", str(tmp_path / "none")])
    assert r.exit_code == 2 and "model path does not exist" in r.output
    r = CliRunner().invoke(daemon_cli, ["daemon", "serve", "--model", str(tmp_path), "--backend", "http://x"])
    assert r.exit_code == 2 and "not both" in r.output
    r = CliRunner().invoke(daemon_cli, ["daemon", "serve", "--port", "0"])
    assert r.exit_code == 2


def test_status_and_stop_when_not_running(daemon_cli):
    r = CliRunner().invoke(daemon_cli, ["daemon", "status"])
    assert r.exit_code == 1 and "not running" in r.output
    r = CliRunner().invoke(daemon_cli, ["daemon", "stop"])
    assert r.exit_code == 1 and "no daemon is running" in r.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_background_start_status_stop(daemon_cli, tmp_path):
    port = _free_port()
    r = CliRunner().invoke(daemon_cli, ["daemon", "start", "--port", str(port)])
    assert r.exit_code == 0, r.output
    try:
        r = CliRunner().invoke(daemon_cli, ["daemon", "status", "--json"])
        st = json.loads(r.output)
        assert r.exit_code == 0 and st["running"] and st["healthy"] and st["port"] == port
        token = Path(st["token_file"]).read_text().strip()
        import httpx

        body = httpx.post(f"http://127.0.0.1:{port}/infill", json={"input_prefix": "x"},
                          headers={"Authorization": f"Bearer {token}"}).json()
        assert "content" in body
        r = CliRunner().invoke(daemon_cli, ["daemon", "start", "--port", str(port)])
        assert r.exit_code == 2 and "already running" in r.output
    finally:
        r = CliRunner().invoke(daemon_cli, ["daemon", "stop"])
    assert r.exit_code == 0 and "stopped" in r.output
    assert CliRunner().invoke(daemon_cli, ["daemon", "status"]).exit_code == 1
    assert "ghostline daemon on" in Path(json.loads(CliRunner().invoke(daemon_cli, ["daemon", "status", "--json"]).output)[
        "log_file"]).read_text()


def test_module_import_is_light():
    code = "import sys, agent.commands.daemon; print(any(m in sys.modules for m in ('torch','transformers','aiohttp')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.skipif("daemon" not in (ROOT / "agent" / "cli.py").read_text() if (ROOT / "agent" / "cli.py").exists()
                    else True, reason="agent/cli.py does not wire the daemon commands yet")
def test_agent_console_script():
    out = subprocess.run([sys.executable, "-m", "ghostline.agent", "daemon", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and "serve" in out.stdout
