"""`agent run` end to end: the real console script, the real SDKs, the fake model server, a throwaway git repo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakeserver import FakeModelServer, cut_stream, overloaded, reply

AGENT = str(Path(sys.executable).parent / "agent")
SECRET = "sk-live-do-not-leak-1234567890"


def make_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "calc.py").write_text("def old_name(a, b):\n    return a + b\n")
    (repo / "test_calc.py").write_text(
        "from calc import old_name\n\nassert old_name(2, 3) == 5\nprint('1 passed')\n")
    (repo / "AGENT.md").write_text("Run the tests with: python3 test_calc.py\n")
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.email=t@e", "-c", "user.name=t", "commit", "-qm", "init"]):
        subprocess.run(["git", *args], cwd=repo, check=True)
    return repo


def agent_env(tmp_path: Path, srv: FakeModelServer, provider: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and "BASE_URL" not in k}
    cfg = tmp_path / "config" / "ghostline"
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "config.toml").write_text("[retry]\nbase_delay = 0.01\nmax_delay = 0.05\n")
    env.update({"XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
                "CI": "true", "MY_SERVICE_TOKEN": SECRET, "GHOSTLINE_EMBEDDINGS": "off"})
    if provider == "anthropic":
        env.update({"ANTHROPIC_BASE_URL": srv.anthropic_base_url, "ANTHROPIC_API_KEY": "sk-ant-test"})
    else:
        env.update({"OPENAI_BASE_URL": srv.openai_base_url, "OPENAI_API_KEY": "sk-test"})
    return env


MODELS = {"anthropic": "anthropic:claude-sonnet-5-5", "openai": "openai:gpt-4.1"}


def run_agent(args, *, cwd, env, timeout=120):
    return subprocess.run([AGENT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def rename_script():
    return [
        reply("I'll find every use.", [("grep", {"pattern": "old_name"})]),
        reply("", [("read", {"path": "calc.py"}), ("read", {"path": "test_calc.py"})]),
        reply("Renaming.", [
            ("edit", {"path": "calc.py", "old_string": "def old_name(", "new_string": "def new_name("}),
            ("edit", {"path": "test_calc.py", "old_string": "old_name", "new_string": "new_name",
                      "replace_all": True}),
        ]),
        reply("", [("bash", {"command": "python3 test_calc.py && env"})]),
        reply("Renamed old_name to new_name in 2 files; the tests pass."),
    ]


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_rename_and_test_cycle_json_report(tmp_path, provider):
    repo = make_repo(tmp_path)
    with FakeModelServer(rename_script()) as srv:
        env = agent_env(tmp_path, srv, provider)
        r = run_agent(["run", "rename old_name to new_name everywhere and run the tests", "--model",
                       MODELS[provider], "--output-format", "json", "--approval", "auto",
                       "--sandbox", "workspace-write"], cwd=repo, env=env)
        bodies = [json.dumps(q.body) for q in srv.requests]
        errors = list(srv.errors)
    assert r.returncode == 0, (r.stdout, r.stderr, errors)
    out = json.loads(r.stdout)
    assert out["type"] == "result" and out["subtype"] == "success" and out["is_error"] is False
    assert out["result"] == "Renamed old_name to new_name in 2 files; the tests pass."
    assert out["num_turns"] == 5 and out["duration_ms"] > 0 and out["session_id"]
    assert set(out["usage"]) == {"input_tokens", "output_tokens", "cache_read_input_tokens",
                                 "cache_creation_input_tokens"}
    assert out["usage"]["input_tokens"] > 0 and out["usage"]["output_tokens"] > 0
    assert isinstance(out["cost_usd"], float) and out["cost_usd"] > 0
    assert sorted(out["files_changed"]) == ["calc.py", "test_calc.py"]
    assert out["commands"] == [{"command": "python3 test_calc.py && env", "exit_code": 0}]
    assert out["sandbox"]["mode"] == "workspace-write"
    assert "new_name" in (repo / "calc.py").read_text() and "old_name" not in (repo / "test_calc.py").read_text()
    assert len(bodies) == 5
    # The project's AGENT.md reached the model, and the system prompt never changed between calls.
    assert "python3 test_calc.py" in bodies[0]
    # Secrets from the environment never reach the model (the command printed its environment).
    assert not any(SECRET in b for b in bodies)
    assert not any("sk-ant-test" in b or "sk-test" in b for b in bodies)


def _system_of(body: dict) -> str:
    if "system" in body:
        return json.dumps(body["system"])
    return json.dumps([m for m in body["messages"] if m["role"] == "system"])


def test_system_prompt_is_stable_and_cached(tmp_path):
    repo = make_repo(tmp_path)
    with FakeModelServer(rename_script()) as srv:
        r = run_agent(["run", "rename", "-m", MODELS["anthropic"], "-o", "json"], cwd=repo,
                      env=agent_env(tmp_path, srv, "anthropic"))
        bodies = [q.body for q in srv.requests]
    assert r.returncode == 0, r.stderr
    assert len({_system_of(b) for b in bodies}) == 1
    assert "cache_control" in json.dumps(bodies[0]["system"]) or "cache_control" in json.dumps(bodies[0]["tools"])
    assert json.loads(r.stdout)["usage"]["cache_read_input_tokens"] > 0


def test_text_output_streams_and_lists_tool_calls(tmp_path):
    repo = make_repo(tmp_path)
    with FakeModelServer(rename_script()) as srv:
        r = run_agent(["run", "rename", "-m", MODELS["openai"]], cwd=repo, env=agent_env(tmp_path, srv, "openai"))
    assert r.returncode == 0, r.stderr
    assert "→ grep old_name" in r.stdout and "→ bash python3 test_calc.py" in r.stdout
    assert "the tests pass." in r.stdout
    assert "\x1b[" not in r.stdout  # no styling when stdout is not a terminal


def test_stream_json_is_one_event_per_line(tmp_path):
    repo = make_repo(tmp_path)
    with FakeModelServer(rename_script()) as srv:
        r = run_agent(["run", "rename", "-m", MODELS["anthropic"], "-o", "stream-json"], cwd=repo,
                      env=agent_env(tmp_path, srv, "anthropic"))
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    types = [e["type"] for e in lines]
    assert types[0] == "session_started" and types[-2] == "done" and types[-1] == "result"
    assert {"turn_started", "text_delta", "tool_call", "tool_result", "diff", "usage"} <= set(types)


def test_retries_and_a_cut_stream_do_not_duplicate_the_transcript(tmp_path):
    repo = make_repo(tmp_path)
    script = [overloaded(retry_after="0"), cut_stream("Looking.", [("read", {"path": "calc.py"})]),
              reply("Looking.", [("read", {"path": "calc.py"})]), reply("done")]
    with FakeModelServer(script) as srv:
        r = run_agent(["run", "look", "-m", MODELS["anthropic"], "-o", "json"], cwd=repo,
                      env=agent_env(tmp_path, srv, "anthropic"))
        last = srv.requests[-1].body
    assert r.returncode == 0, r.stderr
    assistants = [m for m in last["messages"] if m["role"] == "assistant"]
    assert len(assistants) == 1
    assert json.loads(r.stdout)["num_turns"] == 2


def test_tool_error_is_recovered(tmp_path):
    repo = make_repo(tmp_path)
    script = [reply("", [("read", {"path": "missing.py"})]), reply("", [("read", {"path": "calc.py"})]),
              reply("found it")]
    with FakeModelServer(script) as srv:
        r = run_agent(["run", "read", "-m", MODELS["openai"], "-o", "json"], cwd=repo,
                      env=agent_env(tmp_path, srv, "openai"))
        second = srv.requests[1].body["messages"]
    assert r.returncode == 0, r.stderr
    tool_msgs = [m for m in second if m["role"] == "tool"]
    assert tool_msgs and "missing.py" in json.dumps(tool_msgs[0])


@pytest.mark.parametrize(("flags", "code", "subtype"), [
    (["--max-turns", "2"], 3, "error_max_turns"),
    (["--max-tokens", "10"], 4, "error_budget"),
    (["--max-cost", "0.000001"], 4, "error_budget"),
])
def test_budget_exit_codes(tmp_path, flags, code, subtype):
    repo = make_repo(tmp_path)
    script = [reply("", [("glob", {"pattern": "*.py"})]) for _ in range(6)]
    with FakeModelServer(script) as srv:
        r = run_agent(["run", "loop forever", "-m", MODELS["anthropic"], "-o", "json", *flags], cwd=repo,
                      env=agent_env(tmp_path, srv, "anthropic"))
        calls = len(srv.requests)
    assert r.returncode == code, r.stderr
    out = json.loads(r.stdout)
    assert out["subtype"] == subtype and out["is_error"] is True
    assert calls == (2 if subtype == "error_max_turns" else 1)


def test_model_api_failure_exits_1(tmp_path):
    repo = make_repo(tmp_path)
    with FakeModelServer([overloaded("0")] * 10) as srv:
        r = run_agent(["run", "x", "-m", MODELS["anthropic"], "-o", "json"], cwd=repo,
                      env=agent_env(tmp_path, srv, "anthropic"))
    assert r.returncode == 1
    assert json.loads(r.stdout)["subtype"] == "error_during_execution"


def _session_file(tmp_path: Path) -> Path | None:
    files = list((tmp_path / "data" / "ghostline" / "sessions").glob("*.jsonl"))
    return files[0] if files else None


def _wait_for(pred, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def _started_bash(tmp_path: Path) -> bool:
    f = _session_file(tmp_path)
    return f is not None and '"name":"bash"' in f.read_text() and '"type":"tool_result"' in f.read_text()


def test_resume_after_sigkill_keeps_finished_tool_results(tmp_path):
    repo = make_repo(tmp_path)
    script = [reply("", [("read", {"path": "calc.py"})]), reply("", [("bash", {"command": "sleep 60"})])]
    with FakeModelServer(script) as srv:
        env = agent_env(tmp_path, srv, "anthropic")
        p = subprocess.Popen([AGENT, "run", "look then wait", "-m", MODELS["anthropic"], "-o", "json"], cwd=repo,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            assert _wait_for(lambda: _started_bash(tmp_path)), "the run never reached the bash call"
        finally:
            p.send_signal(signal.SIGKILL)
            p.wait(10)
    session_id = _session_file(tmp_path).stem
    with FakeModelServer([reply("resumed and done")]) as srv:
        r = run_agent(["run", "--resume", session_id, "carry on", "-m", MODELS["anthropic"], "-o", "json"],
                      cwd=repo, env=agent_env(tmp_path, srv, "anthropic"))
        body = srv.requests[0].body
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["session_id"] == session_id and out["result"] == "resumed and done"
    text = json.dumps(body["messages"])
    assert "return a + b" in text  # the finished read survived the kill
    assert "interrupted" in text  # the unfinished bash call is marked, pairs stay valid
    assert body["messages"][0]["content"][0]["text"] == "look then wait"
    assert "carry on" in json.dumps(body["messages"][-1])


def test_continue_picks_the_latest_session_here(tmp_path):
    repo = make_repo(tmp_path)
    with FakeModelServer([reply("first"), reply("second")]) as srv:
        env = agent_env(tmp_path, srv, "openai")
        r1 = run_agent(["run", "one", "-m", MODELS["openai"], "-o", "json"], cwd=repo, env=env)
        r2 = run_agent(["run", "--continue", "two", "-o", "json", "-m", MODELS["openai"]], cwd=repo, env=env)
        last = srv.requests[-1].body["messages"]
    assert r1.returncode == 0 and r2.returncode == 0, r2.stderr
    assert json.loads(r1.stdout)["session_id"] == json.loads(r2.stdout)["session_id"]
    assert [m["role"] for m in last if m["role"] != "system"] == ["user", "assistant", "user"]


def test_ctrl_c_kills_the_command_saves_and_exits_130(tmp_path):
    repo = make_repo(tmp_path)
    marker = tmp_path / "child.pid"
    script = [reply("", [("bash", {"command": f"echo $$ > {marker}; sleep 60"})])]
    with FakeModelServer(script) as srv:
        env = agent_env(tmp_path, srv, "anthropic")
        p = subprocess.Popen([AGENT, "run", "wait", "-m", MODELS["anthropic"], "-o", "json", "--sandbox",
                              "full-access"], cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, text=True)
        assert _wait_for(lambda: marker.exists() and marker.read_text().strip())
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    assert p.returncode == 130, err
    assert json.loads(out)["subtype"] == "interrupted"
    pid = int(marker.read_text())
    assert _wait_for(lambda: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text(), 10)
    assert '"type":"interrupted"' in _session_file(tmp_path).read_text()
