"""Hooks, custom commands and skills end to end: the real `agent run` console script, the real SDKs, the fake model
server, the files a Claude Code user already has (hook scripts, command files, SKILL.md folders)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.agent.test_e2e import MODELS, agent_env, make_repo, run_agent
from tests.fakeserver import FakeModelServer, reply

GUARD = """\
import json, sys
call = json.load(sys.stdin)
if call["tool_name"].lower() == "bash" and "rm -rf" in call["tool_input"].get("command", ""):
    print("Blocked: rm -rf is not allowed; delete files one by one with a reason", file=sys.stderr)
    sys.exit(2)
"""

DRY_RUN = """\
import json, sys
call = json.load(sys.stdin)
command = call["tool_input"]["command"]
if "deploy" in command and "--dry-run" not in command:
    print(json.dumps({"hookSpecificOutput": {
        "hookEventName": "PreToolUse",
        "permissionDecision": "allow",
        "updatedInput": {"command": command + " --dry-run"},
        "additionalContext": "This machine only deploys with --dry-run; the flag was added for you.",
    }}))
"""


def add_user_config(tmp_path: Path, text: str) -> None:
    cfg = tmp_path / "config" / "ghostline" / "config.toml"
    cfg.write_text(cfg.read_text() + "\n" + text)


def hook_toml(event: str, matcher: str, script: Path) -> str:
    return (f'[[hooks.{event}]]\nmatcher = "{matcher}"\n[[hooks.{event}.hooks]]\ntype = "command"\n'
            f'command = "{sys.executable} {script}"\ntimeout = 30\n')


def tool_results(body: dict) -> str:
    return json.dumps(body["messages"])


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_a_pre_tool_use_hook_blocks_rm_rf_with_exit_2(tmp_path, provider):
    repo = make_repo(tmp_path)
    (repo / "build").mkdir()
    (repo / "build" / "out.o").write_text("x")
    guard = tmp_path / "guard.py"
    guard.write_text(GUARD)
    script = [reply("Cleaning up.", [("bash", {"command": "rm -rf build"})]),
              reply("The hook refused rm -rf, so I left build/ alone.")]
    with FakeModelServer(script) as srv:
        env = agent_env(tmp_path, srv, provider)
        add_user_config(tmp_path, hook_toml("PreToolUse", "Bash", guard))
        r = run_agent(["run", "clean the build dir", "-m", MODELS[provider], "-o", "stream-json"], cwd=repo, env=env)
        bodies = [q.body for q in srv.requests]
    assert r.returncode == 0, r.stderr
    assert (repo / "build" / "out.o").exists()
    assert "rm -rf is not allowed; delete files one by one" in tool_results(bodies[1])
    events = [json.loads(line) for line in r.stdout.splitlines()]
    blocked = [e for e in events if e["type"] == "hook_blocked"]
    assert len(blocked) == 1 and blocked[0]["hook_event"] == "PreToolUse" and blocked[0]["id"]
    result = next(e for e in events if e["type"] == "tool_result")
    assert result["is_error"] and "blocked by a PreToolUse hook" in result["content"]


def test_a_hook_rewrites_the_input_and_adds_context(tmp_path):
    repo = make_repo(tmp_path)
    hook = tmp_path / "dry_run.py"
    hook.write_text(DRY_RUN)
    script = [reply("", [("bash", {"command": "echo deploy"})]), reply("Deployed (dry run).")]
    with FakeModelServer(script) as srv:
        env = agent_env(tmp_path, srv, "anthropic")
        add_user_config(tmp_path, hook_toml("PreToolUse", "bash", hook))
        r = run_agent(["run", "deploy", "-m", MODELS["anthropic"], "-o", "json"], cwd=repo, env=env)
        bodies = [q.body for q in srv.requests]
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["commands"] == [{"command": "echo deploy --dry-run", "exit_code": 0}]
    seen = tool_results(bodies[1])
    assert "deploy --dry-run" in seen and "only deploys with --dry-run; the flag was added" in seen


def test_a_untrusted_projects_hooks_do_not_run(tmp_path):
    repo = make_repo(tmp_path)
    mark = tmp_path / "ran"
    (repo / ".ghostline").mkdir()
    (repo / ".ghostline" / "config.toml").write_text(
        f'[[hooks.UserPromptSubmit]]\n[[hooks.UserPromptSubmit.hooks]]\ncommand = "touch {mark}"\n')
    with FakeModelServer([reply("hi")]) as srv:
        r = run_agent(["run", "hello", "-m", MODELS["anthropic"]], cwd=repo, env=agent_env(tmp_path, srv, "anthropic"))
    assert r.returncode == 0 and not mark.exists()
    assert "ignoring hooks" in r.stderr and "not trusted" in r.stderr


REVIEW = """\
---
description: Review one file for a given concern
argument-hint: [file] [concern]
allowed-tools: Read, Grep
---
Review @$1 for $2. Report problems as a list; change nothing.
(asked: $ARGUMENTS)
"""


def test_a_project_command_with_arguments_headless(tmp_path):
    repo = make_repo(tmp_path)
    (repo / ".ghostline" / "commands" / "code").mkdir(parents=True)
    (repo / ".ghostline" / "commands" / "code" / "review.md").write_text(REVIEW)
    script = [reply("", [("bash", {"command": "echo hi"}), ("read", {"path": "calc.py"})]),
              reply("1. old_name is a poor name.")]
    with FakeModelServer(script) as srv:
        r = run_agent(["run", "/code:review calc.py naming", "-m", MODELS["openai"], "-o", "json"], cwd=repo,
                      env=agent_env(tmp_path, srv, "openai"))
        bodies = [q.body for q in srv.requests]
    assert r.returncode == 0, r.stderr
    first_user = [m for m in bodies[0]["messages"] if m["role"] == "user"][-1]["content"]
    assert "Review @calc.py for naming. Report problems as a list" in first_user
    assert "(asked: calc.py naming)" in first_user and "argument-hint" not in first_user
    assert "def old_name(a, b)" in first_user  # @calc.py in the body attached the file, as in the TUI
    results = tool_results(bodies[1])
    # allowed-tools: Read, Grep — bash is refused at the gate for this message, read runs.
    assert "/code:review allows only these tools: Read, Grep" in results and "def old_name" in results
    assert json.loads(r.stdout)["commands"] == []


SKILL = """\
---
name: release-notes
description: Write release notes from the git log in the house style. Use when asked for release notes.
---
# Release notes
BODY-MARKER-7f3a: group changes by Added/Fixed/Removed; one line each; link the PR.
See template.md for the layout.
"""


def test_a_skill_is_loaded_only_on_demand(tmp_path):
    repo = make_repo(tmp_path)
    folder = repo / ".agents" / "skills" / "release-notes"
    folder.mkdir(parents=True)
    (folder / "SKILL.md").write_text(SKILL)
    (folder / "template.md").write_text("TEMPLATE-MARKER-91c2\n## Added\n## Fixed\n")
    script = [reply("", [("skill", {"name": "release-notes"})]),
              reply("", [("skill", {"name": "release-notes", "file": "template.md"})]),
              reply("## Added\n- rename")]
    with FakeModelServer(script) as srv:
        r = run_agent(["run", "write release notes for the last commit", "-m", MODELS["anthropic"], "-o", "json"],
                      cwd=repo, env=agent_env(tmp_path, srv, "anthropic"))
        bodies = [json.dumps(q.body) for q in srv.requests]
        first = srv.requests[0].body
    assert r.returncode == 0, r.stderr
    assert "release-notes: Write release notes from the git log" in json.dumps(first["system"])
    assert "skill" in [t["name"] for t in first["tools"]]
    assert "BODY-MARKER-7f3a" not in bodies[0]  # only the name and description before the call
    assert "BODY-MARKER-7f3a" in bodies[1] and "template.md" in bodies[1]
    assert "TEMPLATE-MARKER-91c2" not in bodies[1] and "TEMPLATE-MARKER-91c2" in bodies[2]


def test_no_skills_no_skill_tool(tmp_path):
    repo = make_repo(tmp_path)
    with FakeModelServer([reply("hi")]) as srv:
        r = run_agent(["run", "hello", "-m", MODELS["anthropic"]], cwd=repo, env=agent_env(tmp_path, srv, "anthropic"))
        tools = [t["name"] for t in srv.requests[0].body["tools"]]
    assert r.returncode == 0 and "skill" not in tools


def test_a_commands_model_answers_its_message(tmp_path):
    repo = make_repo(tmp_path)
    (repo / ".ghostline" / "commands").mkdir(parents=True)
    (repo / ".ghostline" / "commands" / "quick.md").write_text("---\nmodel: openai:gpt-4.1\n---\nAnswer briefly: $ARGUMENTS")
    with FakeModelServer([reply("4")]) as srv:
        env = agent_env(tmp_path, srv, "anthropic")
        env.update({"OPENAI_BASE_URL": srv.openai_base_url, "OPENAI_API_KEY": "sk-test"})
        r = run_agent(["run", "/quick 2+2?", "-m", MODELS["anthropic"], "-o", "json"], cwd=repo, env=env)
        used = [(q.provider, q.body["model"]) for q in srv.requests]
    assert r.returncode == 0, r.stderr
    assert used == [("openai", "gpt-4.1")] and json.loads(r.stdout)["result"] == "4"
