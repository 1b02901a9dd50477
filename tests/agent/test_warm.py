"""The warm process (agent/warm.py): `agent run` as a fork of a server that has already imported everything."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ghostline.agent import warm
from tests.agent.test_e2e import AGENT, agent_env, make_repo, rename_script
from tests.fakeserver import FakeModelServer, reply

MODEL = "anthropic:claude-sonnet-5-5"


@pytest.fixture
def warm_env(tmp_path, monkeypatch):
    """A private runtime dir for the server, warm runs on, and the server stopped at the end."""
    monkeypatch.setenv("GHOSTLINE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("GHOSTLINE_WARM", "1")
    yield
    warm.query("stop")


def until(cond, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while (value := cond()) is None or value is False:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)  # polling a condition (a background server starting), not waiting for time to pass
    return value


def test_a_run_starts_the_server_and_the_next_run_is_its_fork(tmp_path, warm_env):
    repo = make_repo(tmp_path)
    with FakeModelServer(rename_script() + [reply("again")]) as srv:
        env = agent_env(tmp_path, srv, "anthropic") | {"GHOSTLINE_WARM": "1"}
        first = subprocess.run([AGENT, "run", "rename", "-m", MODEL, "-o", "json"], cwd=repo, env=env,
                               capture_output=True, text=True, timeout=120)
        assert first.returncode == 0, first.stderr
        status = until(lambda: warm.query("status"), "the warm server")
        assert status["served"] == 0
        second = subprocess.run([AGENT, "run", "say again", "-m", MODEL, "-o", "json", "--max-turns", "1"],
                                cwd=repo, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    result = json.loads(second.stdout)  # the fork wrote to the caller's own stdout
    assert result["subtype"] == "success" and result["result"] == "again"
    assert warm.query("status")["served"] == 1


def test_a_fork_says_a_bad_option_in_one_plain_line(tmp_path, warm_env):
    """The server imports typer as a cold run would: plain errors, not rich boxes (its forks inherit it)."""
    repo = make_repo(tmp_path)
    with FakeModelServer([reply("ok")]) as srv:
        env = agent_env(tmp_path, srv, "anthropic") | {"GHOSTLINE_WARM": "1"}
        subprocess.run([AGENT, "run", "x", "-m", MODEL], cwd=repo, env=env, capture_output=True, timeout=120)
        until(lambda: warm.query("status"), "the warm server")
        bad = subprocess.run([AGENT, "run", "x", "--approval", "bogus"], cwd=repo, env=env, capture_output=True,
                             text=True, timeout=120)
    assert warm.query("status")["served"] == 1  # it was the fork that answered
    assert bad.returncode == 2
    errors = [line for line in bad.stderr.splitlines() if "bogus" in line]
    assert len(errors) == 1 and errors[0].startswith("Error: Invalid value for '--approval'"), bad.stderr
    assert "╭" not in bad.stderr


def test_exit_codes_and_ctrl_c_reach_the_caller(tmp_path, warm_env):
    repo = make_repo(tmp_path)
    warm_script = [reply("", [("read", {"path": "calc.py"})])] * 3 + [reply("", [("bash", {"command": "sleep 60"})])]
    with FakeModelServer(warm_script) as srv:
        env = agent_env(tmp_path, srv, "anthropic") | {"GHOSTLINE_WARM": "1"}
        subprocess.run([AGENT, "run", "x", "-m", MODEL, "--max-turns", "1"], cwd=repo, env=env,
                       capture_output=True, timeout=120)
        until(lambda: warm.query("status"), "the warm server")
        budget = subprocess.run([AGENT, "run", "x", "-m", MODEL, "--max-turns", "1", "-o", "json"], cwd=repo,
                                env=env, capture_output=True, text=True, timeout=120)
        assert budget.returncode == 3 and json.loads(budget.stdout)["subtype"] == "error_max_turns"
        p = subprocess.Popen([AGENT, "run", "wait", "-m", MODEL, "-o", "stream-json", "--sandbox", "full-access"],
                             cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert p.stdout is not None
        for line in p.stdout:  # the command is running once its tool call is out
            if json.loads(line).get("type") == "tool_call" and "sleep" in line:
                break
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    assert p.returncode == 130, err
    assert "interrupted; the session is saved" in err
    assert warm.query("status")["served"] == 2


def test_off_in_ci_and_with_warm_0(monkeypatch):
    monkeypatch.delenv("GHOSTLINE_WARM", raising=False)
    monkeypatch.setenv("CI", "true")
    assert not warm.enabled(["run", "x"])
    monkeypatch.setenv("GHOSTLINE_WARM", "1")
    assert warm.enabled(["run", "x"]) and not warm.enabled(["tui"]) and not warm.enabled([])
    monkeypatch.setenv("GHOSTLINE_WARM", "0")
    monkeypatch.delenv("CI")
    assert not warm.enabled(["run", "x"])


def test_the_fingerprint_follows_the_code(tmp_path, monkeypatch):
    for pkg in warm.PACKAGES:
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "m.py").write_text("x = 1\n")
    monkeypatch.setattr(warm, "_package_root", lambda: tmp_path)
    before = warm.code_fingerprint()
    (tmp_path / "tools" / "m.py").write_text("x = 22\n")
    assert warm.code_fingerprint() != before


def test_python_and_python3_of_one_venv_share_a_server(monkeypatch):
    """The `agent` script's shebang may name python3 where a test or another script runs python."""
    exe = Path(sys.executable)
    sibling = exe.with_name("python3" if exe.name == "python" else "python")
    if not sibling.exists():
        pytest.skip(f"no {sibling.name} beside {exe}")
    before = (warm.socket_path(), warm.code_fingerprint())
    monkeypatch.setattr(sys, "executable", str(sibling))
    assert (warm.socket_path(), warm.code_fingerprint()) == before
