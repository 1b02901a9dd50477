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


# ------------------------------------------------------------------------------------------------- first use

def test_token_prints_the_token_file(daemon_cli):
    r = CliRunner().invoke(daemon_cli, ["daemon", "token"])
    assert r.exit_code == 0
    from ghostline.daemon.paths import token_path

    assert r.output.strip() == token_path().read_text().strip() and len(r.output.strip()) >= 32
    assert oct(token_path().stat().st_mode & 0o777) == "0o600"
    assert CliRunner().invoke(daemon_cli, ["daemon", "token"]).output == r.output  # the same one every time


@pytest.mark.parametrize("editor,needle", [
    ("vim", "'api_key':       readfile(expand('{tf}'))[0]"), ("neovim", "vim.lsp.inline_completion.enable()"),
    ("emacs", "lsp-inline-completion-mode"), ("vscode", "'--token-file', '{tf}'"),
    ("zed", '"api_url": "http://127.0.0.1:9123/v1/completions"'),
])
def test_editor_config_fills_in_the_address_and_token(daemon_cli, editor, needle):
    from ghostline.daemon.paths import token_path

    r = CliRunner().invoke(daemon_cli, ["daemon", "editor-config", editor, "--port", "9123"])
    assert r.exit_code == 0, r.output
    assert needle.format(tf=token_path()) in r.output and "http://127.0.0.1:9123" in r.output
    assert token_path().is_file()  # the snippet reads it: it exists before the editor starts


def test_editor_config_unknown_editor(daemon_cli):
    r = CliRunner().invoke(daemon_cli, ["daemon", "editor-config", "helix"])
    assert r.exit_code == 2 and "Helix has no inline completion yet" in r.output and "Traceback" not in r.output


def test_a_serve_daemon_is_found_counts_refused_requests_and_ends_on_sigterm(daemon_cli, tiny_ckpt):
    import os
    import signal

    import httpx

    from ghostline.daemon.lsp import default_daemon_url

    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "ghostline.daemon", "serve", "--model", str(tiny_ckpt),
                             "--port", str(port), "--no-telemetry"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        for line in proc.stdout:  # ready: printed once it listens (after the model's loading output)
            if "ghostline daemon on" in line:
                break
        else:
            raise AssertionError("the daemon ended before it listened")
        st = json.loads(CliRunner().invoke(daemon_cli, ["daemon", "status", "--json"]).output)
        assert st["running"] and st["mode"] == "serve" and st["port"] == port and st["pid"] == proc.pid
        assert default_daemon_url() == f"http://127.0.0.1:{port}"  # the LSP bridge finds it, port and all
        assert httpx.post(f"http://127.0.0.1:{port}/infill", json={}).status_code == 401
        assert httpx.post(f"http://127.0.0.1:{port}/infill", json={},
                          headers={"Authorization": "Bearer nope"}).status_code == 401
        r = CliRunner().invoke(daemon_cli, ["daemon", "status"])
        assert "running (foreground `serve`)" in r.output
        assert "refused 2 requests without the right token (missing 1, wrong 1)" in r.output
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
    assert rc == 0
    from ghostline.daemon.paths import pid_path

    assert not pid_path().exists()
