"""Subagents end to end: `agent run` (the real console script) drives the `task` tool against the fake model
server through the real SDKs; the requests the subagents send are checked."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from tests.agent.test_e2e import MODELS, agent_env, make_repo, run_agent
from tests.agent.wire import dumps, system_of, tool_names, tool_results, user_texts
from tests.fakeserver import FakeModelServer, reply

TASK = "where are numbers added? do not change anything"
EXPLORE = "Find the function in this repository that adds two numbers and report its name and file."
FOUND = "old_name in calc.py adds two numbers (line 1)."


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_a_subagent_works_in_its_own_context_and_returns_its_report(tmp_path, provider):
    repo = make_repo(tmp_path)
    script = [
        reply("I'll send an explorer.", [("task", {"description": "find the adder", "prompt": EXPLORE,
                                                   "subagent_type": "explorer"})]),
        reply("", [("grep", {"pattern": "return a \\+ b"})]),
        reply(FOUND),
        reply("The explorer found it: old_name in calc.py."),
    ]
    with FakeModelServer(script) as srv:
        r = run_agent(["run", TASK, "-m", MODELS[provider], "-o", "stream-json"], cwd=repo,
                      env=agent_env(tmp_path, srv, provider))
        bodies = [q.body for q in srv.requests]
        errors = list(srv.errors)
    assert r.returncode == 0, (r.stderr, errors)
    assert len(bodies) == 4
    parent_first, child_first, child_second, parent_second = bodies
    # The subagent's own context: its task as the only user message, its own system prompt and tools.
    assert user_texts(child_first) == [EXPLORE]
    assert TASK not in dumps(child_first) and "I'll send an explorer" not in dumps(child_first)
    assert "You are an explorer" in system_of(child_first) and "You are an explorer" not in system_of(parent_first)
    assert "calc.py" in system_of(child_first) or str(repo) in system_of(child_first)  # the environment
    assert sorted(tool_names(child_first)) == ["glob", "grep", "read", "search"]
    assert "task" in tool_names(parent_first) and "todo_write" in tool_names(parent_first)
    assert TASK not in dumps(child_second) and "return a + b" in tool_results(child_second)[0]
    # The parent sees the report, and nothing of how the subagent got there.
    assert tool_results(parent_second) == [FOUND]
    assert "return a + b" not in dumps(parent_second)
    lines = events(r.stdout)
    task_call = next(e for e in lines if e["type"] == "tool_call" and e["name"] == "task")
    assert task_call["title"] == "task explorer: find the adder"
    nested = [e for e in lines if e["type"] == "subagent_event"]
    assert nested and {e["parent_tool_use_id"] for e in nested} == {task_call["id"]}
    inner = [e["event"]["type"] for e in nested]
    assert {"user_message", "turn_started", "tool_call", "tool_result", "assistant_message", "usage",
            "done"} <= set(inner)
    result = lines[-1]
    assert result["num_turns"] == 4 and result["result"] == "The explorer found it: old_name in calc.py."
    # The subagent's tokens count in the run's report.
    assert result["usage"]["input_tokens"] + result["usage"]["cache_read_input_tokens"] > sum(
        e["input_tokens"] + e["cache_read_input_tokens"] for e in lines if e["type"] == "usage")


def _role(body: dict) -> str:
    if "You are an explorer" not in system_of(body):
        return "parent"
    return "ALPHA" if "ALPHA" in user_texts(body)[0] else "BETA"


def test_read_only_subagents_run_in_parallel(tmp_path):
    arrived = {"ALPHA": threading.Event(), "BETA": threading.Event()}
    order: list[str] = []

    def script(body: dict, provider: str):
        role = _role(body)
        turn = sum(1 for m in body["messages"] if m["role"] == "assistant") + 1
        order.append(f"{role}{turn}")
        if role == "parent":
            if turn == 1:
                return reply("", [("task", {"description": f"look {n}", "prompt": f"Look for {n} in the code.",
                                            "subagent_type": "explorer"}) for n in ("ALPHA", "BETA")])
            return reply("Both explorers reported.")
        if turn == 1:
            arrived[role].set()
            other = "BETA" if role == "ALPHA" else "ALPHA"
            # Held until the other subagent's first request has arrived: only parallel runs get past quickly,
            # and only they send both first requests before either second one.
            return reply("", [("glob", {"pattern": "*.py"})], wait_for=arrived[other])
        return reply(f"{role}: nothing found")

    repo = make_repo(tmp_path)
    with FakeModelServer(script) as srv:
        r = run_agent(["run", "look for ALPHA and BETA", "-m", MODELS["anthropic"], "-o", "stream-json"],
                      cwd=repo, env=agent_env(tmp_path, srv, "anthropic"))
        last = srv.requests[-1].body
    assert r.returncode == 0, r.stderr
    assert order[0] == "parent1" and order[-1] == "parent2"
    assert set(order[1:3]) == {"ALPHA1", "BETA1"}, order
    assert sorted(tool_results(last)) == ["ALPHA: nothing found", "BETA: nothing found"]
    nested = [e for e in events(r.stdout) if e["type"] == "subagent_event"]
    assert len({e["parent_tool_use_id"] for e in nested}) == 2


@pytest.mark.parametrize(("flags", "code", "subtype"), [
    (["--max-turns", "3"], 3, "error_max_turns"),
    (["--max-tokens", "1500"], 4, "error_budget"),
])
def test_a_subagent_spends_the_parents_budget_and_stops_it(tmp_path, flags, code, subtype):
    usage = {"input_tokens": 600, "output_tokens": 10, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}
    script = [reply("", [("task", {"description": "dig", "prompt": "Read everything.",
                                   "subagent_type": "explorer"})], usage=usage)]
    script += [reply("", [("glob", {"pattern": "*.py"})], usage=usage) for _ in range(5)]
    repo = make_repo(tmp_path)
    with FakeModelServer(script) as srv:
        r = run_agent(["run", "dig", "-m", MODELS["anthropic"], "-o", "stream-json", *flags], cwd=repo,
                      env=agent_env(tmp_path, srv, "anthropic"))
        calls = len(srv.requests)
    assert r.returncode == code, r.stderr
    lines = events(r.stdout)
    # One parent turn and two subagent turns: the subagent stops at the run's limit, then the parent does.
    assert calls == 3
    child_done = next(e["event"] for e in lines if e["type"] == "subagent_event" and e["event"]["type"] == "done")
    assert child_done["subtype"] == subtype
    task_result = next(e for e in lines if e["type"] == "tool_result" and e["name"] == "task")
    assert task_result["is_error"] and "stopped before it finished" in task_result["content"]
    assert lines[-2]["type"] == "done" and lines[-2]["subtype"] == subtype
    assert lines[-1]["num_turns"] == 3 and lines[-1]["usage"]["input_tokens"] == 1800


def _agent_file(repo: Path, name: str, text: str) -> None:
    d = repo / ".ghostline" / "agents"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.md").write_text(text)


def test_agent_files_give_prompt_tools_and_model_and_the_gate_still_judges(tmp_path):
    repo = make_repo(tmp_path)
    _agent_file(repo, "fixer", "---\nname: fixer\ndescription: Fixes small bugs\ntools: Read, Edit\n"
                               "model: haiku\n---\nYou are FIXER. Fix the bug you are given.\n")
    _agent_file(repo, "scout", "---\ndescription: Looks around quickly\ntools: [Read, Grep, WebSearch]\n"
                               "model: claude-haiku-4-5\n---\nYou are SCOUT.\n")
    script = [
        reply("", [("task", {"description": "fix it", "prompt": "Rename old_name to add in calc.py.",
                             "subagent_type": "fixer"})]),
        reply("", [("read", {"path": "calc.py"})]),
        reply("", [("edit", {"path": "calc.py", "old_string": "old_name", "new_string": "add"})]),
        reply("The edit was not allowed."),
        reply("", [("task", {"description": "scout", "prompt": "Look at calc.py.", "subagent_type": "scout"})]),
        reply("calc.py has one function."),
        reply("Done."),
    ]
    with FakeModelServer(script) as srv:
        r = run_agent(["run", "fix calc", "-m", MODELS["anthropic"], "-o", "stream-json", "--approval", "ask"],
                      cwd=repo, env=agent_env(tmp_path, srv, "anthropic"))
        bodies = [q.body for q in srv.requests]
    assert r.returncode == 0, r.stderr
    assert "names tools Ghostline does not have here: web_search" in r.stderr
    fixer, fixer_after_edit, scout = bodies[1], bodies[3], bodies[5]
    assert system_of(fixer).startswith("You are FIXER.") and sorted(tool_names(fixer)) == ["edit", "read"]
    assert fixer["model"] == "claude-sonnet-5-5"  # `haiku` is not in the model table: the main model
    # The same gate: a headless run in ask mode cannot approve the subagent's edit, and the subagent is told.
    assert "needs the user's approval" in tool_results(fixer_after_edit)[-1]
    assert "old_name" in (repo / "calc.py").read_text()
    assert system_of(scout).startswith("You are SCOUT.") and sorted(tool_names(scout)) == ["grep", "read"]
    assert scout["model"] == "claude-haiku-4-5"
    denied = [e["event"] for e in events(r.stdout)
              if e["type"] == "subagent_event" and e["event"]["type"] == "permission_request"]
    assert denied and denied[0]["decision"] == "denied" and denied[0]["tool"] == "edit"


def test_text_output_indents_the_subagents_work(tmp_path):
    repo = make_repo(tmp_path)
    script = [reply("", [("task", {"description": "look", "prompt": EXPLORE})]),
              reply("Searching.", [("grep", {"pattern": "def"})]), reply(FOUND), reply("All done.")]
    with FakeModelServer(script) as srv:
        r = run_agent(["run", TASK, "-m", MODELS["openai"]], cwd=repo, env=agent_env(tmp_path, srv, "openai"))
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert "→ task general-purpose: look" in out
    assert "  │ Searching." in out and "  │ → grep def" in out and f"  │ {FOUND}" in out
    assert out[-1] == "All done."
