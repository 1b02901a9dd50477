"""The edit tool each model knows best, end to end through the real SDKs and the fake model server: a GPT-5 model
gets `apply_patch` (and the rules for it in its system prompt), a Claude model keeps `edit`; a patch's diff and
files reach every front end like an edit's; the gate judges every path a patch touches; /model swaps the tool."""

from __future__ import annotations

import json

from tests.agent.test_e2e import MODELS, agent_env, make_repo, run_agent
from tests.agent.test_e2e_extensions import add_user_config
from tests.fakeserver import FakeModelServer, reply

RENAME = """*** Begin Patch
*** Update File: calc.py
@@
-def old_name(a, b):
+def new_name(a, b):
     return a + b
*** Update File: test_calc.py
@@
-from calc import old_name
+from calc import new_name

-assert old_name(2, 3) == 5
+assert new_name(2, 3) == 5
*** End Patch"""


def _tools(body: dict) -> list[str]:
    return [t.get("name") or t["function"]["name"] for t in body.get("tools", [])]


def test_a_gpt5_model_edits_with_apply_patch(tmp_path):
    repo = make_repo(tmp_path)
    script = [reply("", [("read", {"path": "calc.py"})]), reply("Renaming.", [("apply_patch", {"input": RENAME})]),
              reply("", [("bash", {"command": "python3 test_calc.py"})]), reply("Renamed; the test passes.")]
    with FakeModelServer(script) as srv:
        r = run_agent(["run", "rename old_name to new_name", "-m", "openai:gpt-5", "-o", "stream-json"], cwd=repo,
                      env=agent_env(tmp_path, srv, "openai"))
        bodies = [q.body for q in srv.requests]
    assert r.returncode == 0, r.stderr
    tools = _tools(bodies[0])
    assert "apply_patch" in tools and "edit" not in tools and tools.index("apply_patch") == 2
    system = bodies[0]["messages"][0]["content"]
    assert "Change files with `apply_patch`" in system and "`edit` replaces" not in system
    assert "new_name" in (repo / "calc.py").read_text() and "old_name" not in (repo / "test_calc.py").read_text()
    events = [json.loads(line) for line in r.stdout.splitlines()]
    diff = next(e for e in events if e["type"] == "diff")
    assert diff["path"].endswith("calc.py") and "+def new_name(a, b):" in diff["diff"]
    assert "+from calc import new_name" in diff["diff"]  # one diff event with every file's changes
    result = events[-1]
    assert sorted(result["files_changed"]) == ["calc.py", "test_calc.py"]
    assert result["commands"] == [{"command": "python3 test_calc.py", "exit_code": 0}]


def test_a_claude_model_keeps_edit(tmp_path):
    repo = make_repo(tmp_path)
    with FakeModelServer([reply("hi")]) as srv:
        r = run_agent(["run", "hello", "-m", MODELS["anthropic"]], cwd=repo, env=agent_env(tmp_path, srv, "anthropic"))
        body = srv.requests[0].body
    assert r.returncode == 0, r.stderr
    assert "edit" in _tools(body) and "apply_patch" not in _tools(body)
    assert "`edit` replaces an exact, unique `old_string`" in json.dumps(body["system"])


def test_the_gate_judges_every_path_of_a_patch(tmp_path):
    repo = make_repo(tmp_path)
    (repo / "secrets").mkdir()
    (repo / "secrets" / "token.txt").write_text("t0k3n\n")
    patch = RENAME.replace("*** End Patch", "*** Update File: secrets/token.txt\n@@\n-t0k3n\n+leaked\n*** End Patch")
    script = [reply("", [("apply_patch", {"input": patch})]), reply("The policy refused the patch.")]
    with FakeModelServer(script) as srv:
        env = agent_env(tmp_path, srv, "openai")
        add_user_config(tmp_path, '[permissions]\ndeny = ["apply_patch: secrets/*"]\n')
        r = run_agent(["run", "rename", "-m", "openai:gpt-5.1-codex", "-o", "stream-json"], cwd=repo, env=env)
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    result = next(e for e in events if e["type"] == "tool_result")
    assert result["is_error"] and "deny rule 'apply_patch: secrets/*'" in result["content"]
    assert (repo / "secrets" / "token.txt").read_text() == "t0k3n\n" and "old_name" in (repo / "calc.py").read_text()
    assert events[-1]["files_changed"] == []


def test_a_refused_patch_is_a_failure_the_model_reads(tmp_path):
    repo = make_repo(tmp_path)
    stale = RENAME.replace("-def old_name(a, b):\n+def new_name(a, b):\n     return a + b",
                           "-def subtract(a, b):\n+def minus(a, b):\n     return a - b")
    script = [reply("", [("apply_patch", {"input": stale})]), reply("It did not apply.")]
    with FakeModelServer(script) as srv:
        r = run_agent(["run", "rename", "-m", "openai:gpt-5", "-o", "json"], cwd=repo,
                      env=agent_env(tmp_path, srv, "openai"))
        bodies = [q.body for q in srv.requests]
    assert r.returncode == 0, r.stderr
    tool = next(m for m in bodies[1]["messages"] if m["role"] == "tool")
    assert tool["content"].startswith("Error: the patch was not applied (a patch applies whole or not at all)")
    assert "calc.py: the chunk's lines were not found" in tool["content"]
    assert "1 | def old_name(a, b):" in tool["content"]  # the closest region, as edit's refusals show it
    assert "old_name" in (repo / "test_calc.py").read_text()  # the other file's part did not apply either


def test_switching_model_switches_the_edit_tool(tmp_path, fake_model_env, monkeypatch):
    from ghostline.agent.options import RunOptions
    from ghostline.agent.runner import prepare_run, switch_model

    repo = make_repo(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("GHOSTLINE_EMBEDDINGS", "off")
    run = prepare_run(RunOptions(model=MODELS["anthropic"], cwd=repo), headless=True)
    names = [t.name for t in run.loop.registry.tools]
    switch_model(run, "openai:gpt-5")
    after = [t.name for t in run.loop.registry.tools]
    assert after == [("apply_patch" if n == "edit" else n) for n in names]
    assert "Change files with `apply_patch`" in run.loop.system and "`edit` replaces" not in run.loop.system
    assert run.loop.ctx.images is not None and run.loop.ctx.images.max_bytes == 20 * 1024 * 1024
    switch_model(run, "openai:o3-mini")
    assert [t.name for t in run.loop.registry.tools] == names and run.loop.ctx.images is None
    assert "`edit` replaces" in run.loop.system
