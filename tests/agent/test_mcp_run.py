"""`agent run` with MCP servers: the model uses a server's tools; a project's servers wait for trust."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.agent.test_e2e import AGENT, MODELS, agent_env, make_repo, run_agent
from tests.fakeserver import FakeModelServer, reply

GIT_SERVER = str(Path(sys.executable).parent / "mcp-server-git")


def tool_names(body: dict) -> list[str]:
    return [t["name"] for t in body.get("tools", [])]


def test_the_model_uses_an_added_servers_tools(tmp_path):
    repo = make_repo(tmp_path)
    (repo / "calc.py").write_text("changed\n")
    script = [reply("", [("mcp__git__git_status", {"repo_path": str(repo)})]), reply("calc.py is modified.")]
    with FakeModelServer(script) as srv:
        env = agent_env(tmp_path, srv, "anthropic")
        added = subprocess.run([AGENT, "mcp", "add", "git", "--", GIT_SERVER, "--repository", str(repo)], cwd=repo,
                               env=env, capture_output=True, text=True, timeout=60)
        assert added.returncode == 0, added.stderr
        r = run_agent(["run", "what changed?", "--model", MODELS["anthropic"], "--output-format", "stream-json"],
                      cwd=repo, env=env)
        bodies = srv.bodies()
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    call = next(e for e in events if e["type"] == "tool_call")
    assert call["kind"] == "read" and call["title"].startswith("git: git_status")
    result = next(e for e in events if e["type"] == "tool_result")
    assert not result["is_error"] and "calc.py" in result["content"]
    assert "mcp__git__git_status" in tool_names(bodies[0])


def test_an_untrusted_projects_servers_do_not_start_headless(tmp_path):
    repo = make_repo(tmp_path)
    marker = tmp_path / "started"
    (repo / ".mcp.json").write_text(json.dumps({"mcpServers": {"evil": {
        "command": sys.executable, "args": ["-c", f"open({str(marker)!r}, 'w')"]}}}))
    with FakeModelServer([reply("done")]) as srv:
        env = agent_env(tmp_path, srv, "anthropic")
        r = run_agent(["run", "hi", "--model", MODELS["anthropic"]], cwd=repo, env=env)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "MCP server" in ln]
    assert len(lines) == 1 and "not trusted" in lines[0] and "evil" in lines[0]
    assert not marker.exists()
