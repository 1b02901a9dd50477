"""Where MCP servers come from (.mcp.json, config.toml scopes), `agent mcp add/list/remove`, and trust."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ghostline.agent.mcp_config import add_server, expand, load_servers, remove_server
from ghostline.agent.mcp_session import McpSession
from ghostline.sandbox.store import trust
from ghostline.tools import ApprovalAnswer, ToolRegistry

AGENT = str(Path(sys.executable).parent / "agent")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GHOSTLINE_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("GHOSTLINE_DATA_DIR", str(tmp_path / "data"))
    project = tmp_path / "proj"
    (project / ".git").mkdir(parents=True)
    return project


def test_expand_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKEN", "abc")
    monkeypatch.delenv("UNSET_VAR", raising=False)
    assert expand("Bearer ${TOKEN}") == "Bearer abc"
    assert expand("${UNSET_VAR:-fallback}/x") == "fallback/x"
    with pytest.raises(ValueError, match="UNSET_VAR"):
        expand("${UNSET_VAR}")


def test_claude_and_codex_formats_and_scopes(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GH_TOKEN", "t0k")
    (home / ".mcp.json").write_text(json.dumps({"mcpServers": {
        "github": {"type": "http", "url": "https://api.example/mcp", "headers": {"Authorization": "Bearer ${GH_TOKEN}"}},
        "files": {"command": "npx", "args": ["-y", "server-files", "${ROOT:-.}"], "env": {"K": "v"}},
        "broken": {"command": "x", "env": {"K": "${NOT_SET_ANYWHERE}"}},
        "shared": {"command": "from-project"},
    }}))
    cfg = Path(os.environ["GHOSTLINE_CONFIG_DIR"])
    cfg.mkdir()
    (cfg / "config.toml").write_text(f"""
[mcp_servers.docs]
url = "https://docs.example/mcp"
bearer_token_env_var = "GH_TOKEN"
tool_timeout_sec = 5
[mcp_servers.off]
command = "never"
enabled = false
[mcp_servers.shared]
command = "from-user"
[projects."{home}".mcp_servers.shared]
command = "from-local"
startup_timeout_s = 3
""")
    found = load_servers(home)
    by_name = {s.name: s for s in found.specs}
    assert set(by_name) == {"github", "files", "docs", "shared"}
    assert by_name["github"].headers == {"Authorization": "Bearer t0k"} and by_name["github"].origin == "project"
    assert by_name["files"].args == ("-y", "server-files", ".") and by_name["files"].env == {"K": "v"}
    assert by_name["docs"].headers["Authorization"] == "Bearer t0k" and by_name["docs"].tool_timeout_s == 5
    assert by_name["docs"].origin == "user" and found.scopes["docs"] == "user"
    assert by_name["shared"].command == "from-local" and found.scopes["shared"] == "local"
    assert by_name["shared"].startup_timeout_s == 3 and by_name["shared"].origin == "user"
    assert len(found.problems) == 1 and "broken" in found.problems[0] and "NOT_SET_ANYWHERE" in found.problems[0]


def test_unreadable_mcp_json_costs_one_line(home: Path) -> None:
    (home / ".mcp.json").write_text("{not json")
    found = load_servers(home)
    assert found.specs == [] and len(found.problems) == 1 and ".mcp.json" in found.problems[0]


def test_add_and_remove_round_trip(home: Path) -> None:
    add_server("local", "a", {"command": "run-a", "args": ["--x"]}, home)
    add_server("user", "b", {"type": "http", "url": "http://h/mcp"}, home)
    add_server("project", "c", {"command": "run-c"}, home)
    found = load_servers(home)
    assert found.scopes == {"a": "local", "c": "project", "b": "user"}
    assert json.loads((home / ".mcp.json").read_text())["mcpServers"]["c"] == {"command": "run-c"}
    assert remove_server("local", "a", home) and not remove_server("local", "a", home)
    assert remove_server("project", "c", home)
    assert set(load_servers(home).scopes) == {"b"}
    with pytest.raises(ValueError):
        add_server("user", "bad name!", {"command": "x"}, home)


def _echo_server(name: str) -> dict:
    return {"command": sys.executable, "args": ["-m", "tests.support.mcp_server"], "cwd": str(ROOT)}


async def test_project_servers_wait_for_trust_or_approval(home: Path) -> None:
    add_server("project", "repo", _echo_server("repo"), home)
    add_server("local", "mine", _echo_server("mine"), home)

    async def run(trusted: bool, ask=None) -> tuple[list[str], list[str]]:
        registry = ToolRegistry([])
        session = McpSession(load_servers(home), registry, home, trusted=trusted)
        try:
            lines = await session.start(ask)
            return lines, sorted({t.name.split("__")[1] for t in registry.tools})
        finally:
            await session.stop()

    lines, servers = await run(False)
    assert servers == ["mine"] and "not trusted" in lines[0] and "repo" in lines[0]
    asked = []

    async def always(request):
        asked.append(request)
        return ApprovalAnswer(True, always=True)

    assert (await run(False, always))[1] == ["mine", "repo"] and asked[0].title == "start the MCP server 'repo'"
    assert (await run(False))[1] == ["mine", "repo"]  # remembered for this command line
    add_server("project", "repo", {**_echo_server("repo"), "args": ["-m", "tests.support.mcp_server", "--slow", "0"]},
               home)
    lines, servers = await run(False)
    assert servers == ["mine"]  # the command line changed: asked again
    trust(home)
    assert (await run(True))[1] == ["mine", "repo"]


def test_cli_add_list_remove(home: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def agent(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([AGENT, "mcp", *args], cwd=home, env=env, capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)

    added = agent("add", "echo", "-e", f"PYTHONPATH={ROOT}", "--", sys.executable, "-m", "tests.support.mcp_server")
    assert added.returncode == 0, added.stderr
    subprocess.run([AGENT, "mcp", "add", "web", "--scope", "project", "--url", "http://127.0.0.1:9/mcp"], cwd=home,
                   env=env, check=True, capture_output=True)
    listed = agent("list", "--json")
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert (rows["echo"]["scope"], rows["echo"]["connected"], rows["echo"]["tools"]) == ("local", True, 7)
    assert "not trusted" in rows["web"]["error"]
    assert agent("remove", "web").returncode == 0
    missing = agent("remove", "web")
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "no MCP server 'web'" in missing.stderr
    bad = agent("add", "x", "--scope", "everywhere", "--", "cmd")
    assert bad.returncode == 2 and "--scope must be one of" in bad.stderr
