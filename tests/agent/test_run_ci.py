"""`agent run` for CI: --commit/--patch/--branch, --output-schema (exit 6), input piped to stdin, --allow/--deny on
the command line and permission_request events. The real console script against the fake model server."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.agent.test_e2e import AGENT, MODELS, agent_env, make_repo, run_agent
from tests.fakeserver import FakeModelServer, reply

RENAME = [
    reply("", [("read", {"path": "calc.py"}), ("read", {"path": "test_calc.py"})]),
    reply("", [("edit", {"path": "calc.py", "old_string": "def old_name(", "new_string": "def new_name("}),
               ("edit", {"path": "test_calc.py", "old_string": "old_name", "new_string": "new_name",
                         "replace_all": True}),
               ("write", {"path": "NOTES.md", "content": "renamed\n"})]),
    reply("Rename old_name to new_name in calc and its test, and keep a note of why the long summary line goes "
          "on past seventy-two characters\n\nBoth files now use new_name."),
]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def run_piped(args, *, cwd, env, stdin: bytes):
    return subprocess.run([AGENT, *args], cwd=cwd, env=env, capture_output=True, timeout=120, input=stdin)


def test_commit_and_patch_in_a_worktree_on_a_named_branch(tmp_path):
    repo = make_repo(tmp_path)
    base = git(repo, "rev-parse", "HEAD").strip()
    patch = tmp_path / "out" / "rename.patch"
    with FakeModelServer(list(RENAME)) as srv:
        env = agent_env(tmp_path, srv, "anthropic")
        cfg = tmp_path / "config" / "ghostline" / "config.toml"
        cfg.write_text(cfg.read_text() + '\n[commit]\nauthor = "CI Bot <ci@example.com>"\n')
        r = run_agent(["run", "rename it", "-m", MODELS["anthropic"], "-o", "json", "--worktree=rename",
                       "--branch", "refactor/rename", "--commit", "--patch", str(patch)], cwd=repo, env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    worktree = Path(out["sandbox"]["worktree"]["path"])
    assert out["branch"] == "refactor/rename" == out["sandbox"]["worktree"]["branch"]
    assert out["commit"] == git(repo, "rev-parse", "refactor/rename").strip()
    assert out["diffstat"] == {"files": 3, "insertions": 4, "deletions": 3}
    assert out["patch"] == str(patch)
    subject, _, rest = git(repo, "log", "-1", "--format=%B", out["commit"]).partition("\n\n")
    assert len(subject) <= 72 and subject.startswith("Rename old_name to new_name") and subject.endswith("...")
    assert "Both files now use new_name." in rest and f"Ghostline-Session: {out['session_id']}" in rest
    assert git(repo, "log", "-1", "--format=%an <%ae>", out["commit"]).strip() == "CI Bot <ci@example.com>"
    assert git(repo, "rev-parse", f"{out['commit']}^").strip() == base
    assert git(worktree, "status", "--porcelain") == ""
    # The main checkout is untouched, and the patch applies to the base there.
    assert "old_name" in (repo / "calc.py").read_text() and git(repo, "status", "--porcelain") == ""
    git(repo, "apply", "--check", str(patch))
    assert "new file mode" in patch.read_text() and "NOTES.md" in patch.read_text()


def test_commit_on_a_new_branch_takes_only_the_runs_files(tmp_path):
    repo = make_repo(tmp_path)
    (repo / "scratch.txt").write_text("mine, not the agent's\n")  # the user's own untracked file
    (repo / "AGENT.md").write_text("edited by hand\n")  # and their own uncommitted change
    with FakeModelServer(list(RENAME)) as srv:
        r = run_agent(["run", "rename it", "-m", MODELS["openai"], "-o", "json", "--branch", "fix/rename",
                       "--commit"], cwd=repo, env=agent_env(tmp_path, srv, "openai"))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["branch"] == "fix/rename" == git(repo, "symbolic-ref", "--short", "HEAD").strip()
    assert sorted(git(repo, "show", "--name-only", "--format=", out["commit"]).split()) == [
        "NOTES.md", "calc.py", "test_calc.py"]
    assert out["patch"] is None and out["diffstat"]["files"] == 3
    assert sorted(git(repo, "status", "--porcelain").splitlines()) == [" M AGENT.md", "?? scratch.txt"]
    # A failed start: the branch exists now.
    with FakeModelServer([]) as srv:
        again = run_agent(["run", "x", "-m", MODELS["openai"], "--branch", "fix/rename"], cwd=repo,
                          env=agent_env(tmp_path, srv, "openai"))
    assert again.returncode == 2 and "already exists" in again.stderr and "Traceback" not in again.stderr


def _schema(tmp_path: Path) -> Path:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps({"type": "object", "required": ["summary", "risk"],
                                "properties": {"summary": {"type": "string"},
                                               "risk": {"enum": ["low", "medium", "high"]}}}))
    return path


def test_output_schema_retries_once_and_reports_the_value(tmp_path):
    repo = make_repo(tmp_path)
    script = [reply('{"summary": "adds two numbers", "risk": "none"}'),
              reply('```json\n{"summary": "adds two numbers", "risk": "low"}\n```')]
    with FakeModelServer(script) as srv:
        r = run_agent(["run", "review calc.py", "-m", MODELS["anthropic"], "-o", "stream-json", "--output-schema",
                       str(_schema(tmp_path))], cwd=repo, env=agent_env(tmp_path, srv, "anthropic"))
        bodies = [json.dumps(q.body) for q in srv.requests]
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    checks = [e for e in lines if e["type"] == "output_schema_check"]
    assert [c["valid"] for c in checks] == [False, True] and "at /risk" in checks[0]["error"]
    assert [e["subtype"] for e in lines if e["type"] == "done"] == ["success"]  # one end, after the valid answer
    assert lines[-1]["structured_result"] == {"summary": "adds two numbers", "risk": "low"}
    assert '\\"required\\": [' in bodies[0] and "does not satisfy the required JSON Schema" in bodies[1]


def test_output_schema_still_invalid_exits_6(tmp_path):
    repo = make_repo(tmp_path)
    with FakeModelServer([reply("looks fine"), reply('{"summary": 3}')]) as srv:
        r = run_agent(["run", "review", "-m", MODELS["openai"], "-o", "json", "--output-schema",
                       str(_schema(tmp_path))], cwd=repo, env=agent_env(tmp_path, srv, "openai"))
    assert r.returncode == 6, r.stderr
    out = json.loads(r.stdout)
    assert out["subtype"] == "error_output_schema" and out["structured_result"] is None
    assert "after 2 attempts" in out["result"]


def test_a_bad_schema_file_is_one_line_before_any_model_call(tmp_path):
    repo = make_repo(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "no-such-type"}')
    with FakeModelServer([]) as srv:
        r = run_agent(["run", "x", "-m", MODELS["openai"], "--output-schema", str(bad)], cwd=repo,
                      env=agent_env(tmp_path, srv, "openai"))
        calls = len(srv.requests)
    assert r.returncode == 2 and calls == 0
    assert r.stderr.strip().count("\n") == 0 and "not a valid JSON Schema" in r.stderr


def _first_user_text(body: dict) -> str:
    content = body["messages"][0]["content"]
    return content if isinstance(content, str) else "".join(b.get("text", "") for b in content)


def test_piped_input_is_attached_and_dash_reads_the_task(tmp_path):
    repo = make_repo(tmp_path)
    with FakeModelServer([reply("reviewed"), reply("done")]) as srv:
        env = agent_env(tmp_path, srv, "anthropic")
        piped = run_piped(["run", "review this", "-m", MODELS["anthropic"]], cwd=repo, env=env,
                          stdin=b"--- a/calc.py\n+++ b/calc.py\n")
        dash = run_piped(["run", "-", "-m", MODELS["anthropic"]], cwd=repo, env=env, stdin=b"fix the typo\n")
        first, second = (_first_user_text(q.body) for q in srv.requests)
    assert piped.returncode == 0 and dash.returncode == 0, (piped.stderr, dash.stderr)
    assert first == "review this\n\n<stdin>\n--- a/calc.py\n+++ b/calc.py\n</stdin>"
    assert second == "fix the typo\n"


def test_binary_stdin_is_refused_in_one_line(tmp_path):
    repo = make_repo(tmp_path)
    with FakeModelServer([]) as srv:
        r = run_piped(["run", "look", "-m", MODELS["anthropic"]], cwd=repo, env=agent_env(tmp_path, srv, "anthropic"),
                      stdin=b"\x7fELF\x00\x01\x02")
    assert r.returncode == 2 and r.stderr.decode().strip() == (
        "agent: stdin holds binary data; pipe text (a log, a diff), or name the file in the task")


def test_allow_and_deny_rules_and_permission_requests_in_stream_json(tmp_path):
    repo = make_repo(tmp_path)
    script = [reply("", [("read", {"path": "calc.py"})]),
              reply("", [("edit", {"path": "calc.py", "old_string": "a + b", "new_string": "b + a"}, "e1"),
                         ("write", {"path": "new.txt", "content": "x"}, "w1"),
                         ("bash", {"command": "git push origin main"}, "b1")]),
              reply("done")]
    with FakeModelServer(script) as srv:
        r = run_agent(["run", "go", "-m", MODELS["anthropic"], "-o", "stream-json", "--approval", "ask",
                       "--allow", "edit: calc.py", "--deny", "bash: git push *"], cwd=repo,
                      env=agent_env(tmp_path, srv, "anthropic"))
    assert r.returncode == 0, r.stderr
    requests = {e["id"]: e for e in map(json.loads, r.stdout.splitlines()) if e["type"] == "permission_request"}
    assert set(requests) == {"w1", "b1"}  # the edit was allowed by --allow: nobody was asked
    assert requests["w1"]["decision"] == "denied" and requests["w1"]["decided_by"] == "headless"
    assert "needs the user's approval" in requests["w1"]["reason"]
    assert requests["b1"]["decided_by"] == "policy" and "deny rule 'bash: git push *'" in requests["b1"]["reason"]
    assert "b + a" in (repo / "calc.py").read_text() and not (repo / "new.txt").exists()


def test_a_bad_rule_on_the_command_line_is_a_usage_error(tmp_path):
    repo = make_repo(tmp_path)
    with FakeModelServer([]) as srv:
        r = run_agent(["run", "x", "-m", MODELS["anthropic"], "--allow", "bash(npm test"], cwd=repo,
                      env=agent_env(tmp_path, srv, "anthropic"))
    assert r.returncode == 2 and r.stderr.startswith("agent: --allow: bad permission rule")
