"""The todo list and plan mode end to end: `agent run` against the fake model server through the real SDKs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ghostline.agent.session import Session, latest_todos, sessions_root
from tests.agent.test_e2e import MODELS, agent_env, make_repo, run_agent
from tests.agent.wire import dumps, system_of, tool_names, tool_results
from tests.fakeserver import FakeModelServer, reply

TODOS = [{"content": "Fix the bug in calc.py", "status": "in_progress"},
         {"content": "Run the whole suite", "status": "pending"}]


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def small_window(tmp_path: Path) -> None:
    """A window small enough that reading four big files makes compaction summarise the start."""
    cfg = tmp_path / "config" / "ghostline" / "config.toml"
    cfg.write_text('max_output_tokens = 1000\n' + cfg.read_text() + '[models."anthropic:claude-sonnet-5-5"]\n'
                   "context_window = 9000\n[compaction]\nsnip_at = 1.0\nmicro_at = 1.0\nrecent_min_tokens = 300\n"
                   "keep_tool_turns = 1\nresult_cap_fraction = 0.5\nturn_cap_fraction = 0.5\n")


def test_the_todo_list_survives_compaction_and_resume(tmp_path):
    repo = make_repo(tmp_path)
    for i in range(1, 5):
        (repo / f"big{i}.txt").write_text("".join(f"MARKER-{i} line {n}: lorem ipsum dolor sit amet\n"
                                                  for n in range(120)))
    steps = [reply("Planning.", [("todo_write", {"todos": TODOS})])]
    steps += [reply("", [("read", {"path": f"big{i}.txt"})]) for i in range(1, 5)]
    steps += [reply("Read them all."), reply("Left: fixing the bug, then the suite.")]
    requests: list[dict] = []

    def script(body: dict, provider: str):
        if not body.get("tools"):  # the compaction's summary call
            return reply("SUMMARY: the four big files were read.")
        requests.append(body)
        return steps.pop(0)

    with FakeModelServer(script) as srv:
        env = agent_env(tmp_path, srv, "anthropic")
        small_window(tmp_path)
        first = run_agent(["run", "read the big files", "-m", MODELS["anthropic"], "-o", "stream-json"], cwd=repo,
                          env=env)
        resumed = run_agent(["run", "--continue", "what is left?", "-m", MODELS["anthropic"], "-o", "json"],
                            cwd=repo, env=env)
        errors = list(srv.errors)
    assert first.returncode == 0, (first.stderr, errors)
    assert resumed.returncode == 0, (resumed.stderr, errors)
    lines = events(first.stdout)
    assert [e["items"] for e in lines if e["type"] == "todo_list"] == [TODOS]
    assert any(e["type"] == "compaction" and e["stage"] in ("collapse", "auto_compact") for e in lines)
    after_compaction, after_resume = requests[-2], requests[-1]
    # The start of the conversation was summarised (the first file is gone), the todo list was kept.
    assert "MARKER-1" not in dumps(after_compaction) and "SUMMARY: the four big files" in dumps(after_compaction)
    for body in (after_compaction, after_resume):
        assert "Fix the bug in calc.py" in dumps(body) and "Run the whole suite" in dumps(body)
    assert "what is left?" in dumps(after_resume)
    session_id = json.loads(resumed.stdout)["session_id"]
    session = Session.open(sessions_root(tmp_path / "data" / "ghostline"), session_id)
    assert latest_todos(session.records()) == TODOS  # what a resumed TUI shows as its checklist


PLAN = "Plan:\n1. Rename old_name to add in calc.py and test_calc.py.\n2. Run python3 test_calc.py."


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_plan_mode_refuses_writes_prints_the_plan_and_accepting_it_edits(tmp_path, provider):
    repo = make_repo(tmp_path)
    script = [
        reply("Looking first.", [("read", {"path": "calc.py"}), ("bash", {"command": "git log --oneline"}),
                                 ("write", {"path": "new.py", "content": "x = 1\n"}),
                                 ("bash", {"command": "python3 test_calc.py"}),
                                 ("todo_write", {"todos": TODOS})]),
        reply(PLAN),
        reply("", [("read", {"path": "calc.py"})]),
        reply("", [("edit", {"path": "calc.py", "old_string": "old_name", "new_string": "add"})]),
        reply("Renamed."),
    ]
    with FakeModelServer(script) as srv:
        env = agent_env(tmp_path, srv, provider)
        planned = run_agent(["run", "rename old_name to add", "-m", MODELS[provider], "--approval", "plan"],
                            cwd=repo, env=env)
        session_id = planned.stderr.split("--resume ", 1)[1].split()[0] if "--resume " in planned.stderr else ""
        accepted = run_agent(["run", "--resume", session_id, "--approval", "auto-edit", "go ahead with the plan",
                              "-m", MODELS[provider]], cwd=repo, env=env)
        bodies = [q.body for q in srv.requests]
    assert planned.returncode == 0, planned.stderr
    assert planned.stdout.rstrip().endswith(PLAN.splitlines()[-1]) and PLAN.splitlines()[1] in planned.stdout
    assert f"agent run --resume {session_id} --approval auto-edit" in planned.stderr
    assert "Plan mode is on" in system_of(bodies[0]) and "Plan mode is on" in system_of(bodies[1])
    assert "task" in tool_names(bodies[0]) and "write" in tool_names(bodies[0])  # the tools stay (and cached)
    read, log, write, test, todo = tool_results(bodies[1])
    assert "def old_name" in read and "init" in log and "Todo list updated" in todo
    for refused in (write, test):
        assert "denied by the sandbox policy: plan mode: only tools that read run" in refused
    assert not (repo / "new.py").exists()
    # Accepted: an editing mode, the plan-mode section gone, the plan still in the conversation.
    assert accepted.returncode == 0, accepted.stderr
    assert "Plan mode is on" not in system_of(bodies[2]) and "Rename old_name to add" in dumps(bodies[2])
    assert "def add(" in (repo / "calc.py").read_text()
