"""Hooks with Claude Code's contract: the config tables, real hook commands (Python scripts) run by the engine,
the gate applying their answers, and the loop's moments (prompt, stop, session start, compaction)."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from ghostline.agent import events as ev
from ghostline.agent.config import load_config
from ghostline.agent.hooks import Hooks, merge_tables, parse_hooks
from ghostline.agent.loop import AgentLoop
from ghostline.agent.providers.base import ConfigError
from ghostline.sandbox.policy import Decision
from ghostline.tools.base import BaseTool, ToolContext, ToolResult
from ghostline.tools.registry import ApprovalAnswer, Call, ToolRegistry
from tests.agent.test_loop import EchoTool, ScriptedProvider


def script(tmp_path: Path, name: str, body: str) -> str:
    """A hook command: a Python script reading the hook's JSON from stdin as `data`."""
    path = tmp_path / f"{name}.py"
    path.write_text("import json, sys, os, time\ndata = json.load(sys.stdin)\n" + textwrap.dedent(body))
    return f"{sys.executable} {path}"


def hooks_for(tmp_path: Path, table: dict[str, Any]) -> Hooks:
    parsed, warnings = parse_hooks(table, "test config")
    assert warnings == []
    return Hooks(parsed, session_id="sess-1", transcript_path=tmp_path / "sess-1.jsonl", project_dir=tmp_path)


def on(event: str, command: str, matcher: str = "", timeout: float = 30) -> dict[str, Any]:
    return {event: [{"matcher": matcher, "hooks": [{"type": "command", "command": command, "timeout": timeout}]}]}


class RecordingTool(BaseTool):
    name = "bash"
    kind = "shell"
    description = "runs nothing: records the command"
    input_schema = {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"],
                    "additionalProperties": False}

    def __init__(self) -> None:
        self.ran: list[str] = []

    async def run(self, args, ctx):
        self.ran.append(args["command"])
        return ToolResult(f"ran {args['command']}", meta={"exit_code": 0})


class FixedPolicy:
    def __init__(self, action: str) -> None:
        self.action = action

    def evaluate(self, action, **kw):
        return Decision(self.action, f"policy says {self.action}")


async def gate(tmp_path, hooks, args, *, policy="allow", approver=None):
    tool = RecordingTool()
    registry = ToolRegistry([tool], policy=FixedPolicy(policy), approver=approver, hooks=hooks)
    ctx = ToolContext(workspace=tmp_path, cwd=tmp_path)
    verdict = await registry.admit(Call("c1", "bash", args), ctx)
    results = await registry.execute([verdict] if verdict.allowed else [], ctx)
    return tool, verdict, (results[0] if results else verdict.refusal)


# -- configuration ---------------------------------------------------------------------------------------------

def test_matchers_follow_claude_code_and_ignore_case():
    table, _ = parse_hooks({"PreToolUse": [
        {"matcher": "Bash|Edit", "hooks": [{"command": "a"}]},
        {"matcher": "mcp__.*__write", "hooks": [{"command": "b"}]},
        {"hooks": [{"command": "c"}]},
    ]}, "cfg")
    bash_only, regex, every = table["PreToolUse"]
    assert bash_only.matches("bash") and bash_only.matches("edit") and not bash_only.matches("bash_output")
    assert regex.matches("mcp__fs__write") and not regex.matches("read")
    assert every.matches("anything") and bash_only.commands[0].timeout == 60


def test_bad_tables_are_one_line_config_errors_and_unknown_events_warn():
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        parse_hooks({"PreToolUse": [{"matcher": "(", "hooks": [{"command": "x"}]}]}, "cfg")
    with pytest.raises(ConfigError, match="timeout must be a positive number"):
        parse_hooks({"Stop": [{"hooks": [{"command": "x", "timeout": 0}]}]}, "cfg")
    with pytest.raises(ConfigError, match="command must be a non-empty string"):
        parse_hooks({"Stop": [{"hooks": [{"type": "command"}]}]}, "cfg")
    table, warnings = parse_hooks({"SubagentStop": [], "Stop": [{"hooks": [{"type": "prompt", "prompt": "x"}]}]},
                                  "cfg")
    assert table == {} and len(warnings) == 2 and "SubagentStop" in warnings[0] and "type = \"command\"" in warnings[1]


def test_project_hooks_need_trust_and_add_to_the_users(tmp_path, monkeypatch):
    monkeypatch.setenv("GHOSTLINE_DATA_DIR", str(tmp_path / "data"))
    user = tmp_path / "user.toml"
    user.write_text('[[hooks.Stop]]\n[[hooks.Stop.hooks]]\ncommand = "user-hook"\n')
    repo = tmp_path / "repo"
    (repo / ".ghostline").mkdir(parents=True)
    (repo / ".ghostline" / "config.toml").write_text('[[hooks.Stop]]\n[[hooks.Stop.hooks]]\ncommand = "repo-hook"\n')
    cfg = load_config(repo, user_file=user)
    assert [c.command for g in cfg.hooks["Stop"] for c in g.commands] == ["user-hook"]
    assert any("ignoring hooks" in w and "not trusted" in w for w in cfg.warnings)
    from ghostline.sandbox.store import trust

    trust(repo)
    cfg = load_config(repo, user_file=user)
    assert [c.command for g in cfg.hooks["Stop"] for c in g.commands] == ["user-hook", "repo-hook"]
    assert merge_tables(cfg.hooks, {}) == cfg.hooks


# -- PreToolUse / PostToolUse at the gate ------------------------------------------------------------------------

async def test_exit_2_blocks_the_call_and_the_model_reads_stderr(tmp_path):
    guard = script(tmp_path, "guard", """
        if "rm -rf" in data["tool_input"]["command"]:
            print("rm -rf is not allowed in this repository", file=sys.stderr)
            sys.exit(2)
    """)
    hooks = hooks_for(tmp_path, on("PreToolUse", guard, "Bash"))
    tool, verdict, result = await gate(tmp_path, hooks, {"command": "rm -rf build"})
    assert tool.ran == [] and not verdict.allowed
    assert result.is_error and "rm -rf is not allowed in this repository" in result.content
    assert [(r.kind, r.event) for r in verdict.hook_reports] == [("blocked", "PreToolUse")]
    tool, verdict, result = await gate(tmp_path, hooks, {"command": "ls"})
    assert tool.ran == ["ls"] and verdict.hook_reports == []


async def test_the_hook_gets_claude_codes_fields_on_stdin(tmp_path):
    seen = tmp_path / "seen.json"
    record = script(tmp_path, "record", f"open({str(seen)!r}, 'w').write(json.dumps(data))\n"
                                        "print(os.environ['CLAUDE_PROJECT_DIR'], file=open("
                                        f"{str(tmp_path / 'env.txt')!r}, 'w'))\n")
    await gate(tmp_path, hooks_for(tmp_path, on("PreToolUse", record)), {"command": "make"})
    data = json.loads(seen.read_text())
    assert data["hook_event_name"] == "PreToolUse" and data["tool_name"] == "bash"
    assert data["tool_input"] == {"command": "make"} and data["session_id"] == "sess-1"
    assert data["cwd"] == str(tmp_path) and data["transcript_path"].endswith("sess-1.jsonl")
    assert (tmp_path / "env.txt").read_text().strip() == str(tmp_path)


async def test_updated_input_is_validated_and_context_follows_the_result(tmp_path):
    rewrite = script(tmp_path, "rewrite", """
        cmd = data["tool_input"]["command"]
        print(json.dumps({"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "allow",
                          "updatedInput": {"command": cmd + " --dry-run"},
                          "additionalContext": "dry runs only on this machine"}}))
    """)
    tool, verdict, result = await gate(tmp_path, hooks_for(tmp_path, on("PreToolUse", rewrite)),
                                       {"command": "deploy"}, policy="ask")
    assert tool.ran == ["deploy --dry-run"]  # "allow" spared the approval the policy wanted
    assert result.content == "ran deploy --dry-run\n\ndry runs only on this machine"
    broken = script(tmp_path, "broken", 'print(json.dumps({"updatedInput": {"cmd": 1}}))')
    tool, verdict, result = await gate(tmp_path, hooks_for(tmp_path, on("PreToolUse", broken)), {"command": "x"})
    assert tool.ran == [] and "rewrote the arguments of bash into invalid ones" in result.content


async def test_a_hook_allow_never_overrides_a_policy_deny_and_ask_asks(tmp_path):
    allow = script(tmp_path, "allow", 'print(json.dumps({"permissionDecision": "allow"}))')
    tool, verdict, _ = await gate(tmp_path, hooks_for(tmp_path, on("PreToolUse", allow)), {"command": "x"},
                                  policy="deny")
    assert tool.ran == [] and "denied by the sandbox policy" in verdict.reason
    asked = []

    async def approver(request):
        asked.append(request.reason)
        return ApprovalAnswer(True)

    ask = script(tmp_path, "ask", 'print(json.dumps({"hookSpecificOutput": {"permissionDecision": "ask", '
                                  '"permissionDecisionReason": "production host"}}))')
    tool, verdict, _ = await gate(tmp_path, hooks_for(tmp_path, on("PreToolUse", ask)), {"command": "x"},
                                  approver=approver)
    assert asked == ["production host"] and tool.ran == ["x"] and verdict.asked
    tool, verdict, result = await gate(tmp_path, hooks_for(tmp_path, on("PreToolUse", ask)), {"command": "x"})
    assert tool.ran == [] and "headless" in result.content  # nobody to ask: refused


async def test_failures_warn_and_the_call_goes_on(tmp_path):
    crash = script(tmp_path, "crash", 'print("traceback here", file=sys.stderr); sys.exit(1)')
    slow = script(tmp_path, "slow", "time.sleep(30)")
    bad_json = script(tmp_path, "badjson", 'print("{not json")')
    table = {"PreToolUse": [{"hooks": [{"command": crash}, {"command": slow, "timeout": 0.5},
                                       {"command": bad_json}, {"command": "/nonexistent/hook"}]}]}
    tool, verdict, _ = await gate(tmp_path, hooks_for(tmp_path, table), {"command": "ls"})
    assert tool.ran == ["ls"]
    messages = [r.message for r in verdict.hook_reports]
    assert all(r.kind == "warning" for r in verdict.hook_reports) and len(messages) == 4
    assert any("failed (exit 1): traceback here" in m for m in messages)
    assert any("timed out" in m for m in messages)
    assert any("does not parse" in m for m in messages)
    assert any("exit 127" in m for m in messages)


async def test_matching_hooks_run_in_parallel(tmp_path):
    # Each waits for the other's mark: run one after the other, the first would give up and fail.
    a, b = tmp_path / "a.mark", tmp_path / "b.mark"
    body = """
        open({mine!r}, "w").close()
        for _ in range(400):
            if os.path.exists({other!r}):
                sys.exit(0)
            time.sleep(0.025)
        sys.exit(1)
    """
    first = script(tmp_path, "first", body.format(mine=str(a), other=str(b)))
    second = script(tmp_path, "second", body.format(mine=str(b), other=str(a)))
    table = {"PreToolUse": [{"hooks": [{"command": first}]}, {"matcher": "bash", "hooks": [{"command": second}]}]}
    _, verdict, _ = await gate(tmp_path, hooks_for(tmp_path, table), {"command": "ls"})
    assert verdict.hook_reports == []


async def test_output_is_bounded(tmp_path):
    loud = script(tmp_path, "loud", 'sys.stderr.write("x" * 5_000_000); sys.exit(2)')
    _, _, result = await gate(tmp_path, hooks_for(tmp_path, on("PreToolUse", loud)), {"command": "ls"})
    assert len(result.content) < 20_000 and "more characters cut" in result.content


async def test_post_tool_use_sees_the_response_and_talks_to_the_model(tmp_path):
    post = script(tmp_path, "post", """
        assert data["tool_response"]["exit_code"] == 0 and data["tool_response"]["content"].startswith("ran ")
        print(json.dumps({"decision": "block", "reason": "formatting changed 2 files",
                          "hookSpecificOutput": {"additionalContext": "run the linter next"}}))
    """)
    reports = []
    tool = RecordingTool()
    registry = ToolRegistry([tool], hooks=hooks_for(tmp_path, on("PostToolUse", post, "bash")))
    ctx = ToolContext(workspace=tmp_path, cwd=tmp_path, on_hook=lambda call_id, r: reports.append((call_id, r)))
    [result] = await registry.run([Call("c9", "bash", {"command": "fmt"})], ctx)
    assert "[PostToolUse hook] formatting changed 2 files" in result.content
    assert "[PostToolUse hook context] run the linter next" in result.content
    assert [(cid, r.kind) for cid, r in reports] == [("c9", "blocked")]


# -- the loop's moments ------------------------------------------------------------------------------------------

def make_loop(tmp_path, turns, table) -> tuple[ScriptedProvider, AgentLoop]:
    hooks = hooks_for(tmp_path, table)
    provider = ScriptedProvider(turns)
    registry = ToolRegistry([EchoTool()], hooks=hooks)
    return provider, AgentLoop(provider=provider, registry=registry, ctx=ToolContext(workspace=tmp_path, cwd=tmp_path),
                               system="sys", hooks=hooks)


async def test_user_prompt_submit_adds_context_or_drops_the_prompt(tmp_path):
    gatekeeper = script(tmp_path, "prompt", """
        if "password" in data["prompt"]:
            print("prompts must not contain secrets", file=sys.stderr)
            sys.exit(2)
        print("Today's on-call: Ada")
    """)
    provider, loop = make_loop(tmp_path, [("ok", [])], on("UserPromptSubmit", gatekeeper))
    events = [e async for e in loop.run("who is on call?")]
    assert [e.type for e in events[:2]] == ["user_message", "context_note"]
    assert "who is on call?" in provider.seen[0][-1].text and "Today's on-call: Ada" in provider.seen[0][-1].text
    events = [e async for e in loop.run("my password is hunter2")]
    assert isinstance(events[0], ev.HookBlocked) and "must not contain secrets" in events[0].reason
    assert events[-1].subtype == "stopped_by_hook" and len(provider.seen) == 1
    assert not any("hunter2" in m.text for m in loop.messages)


async def test_a_stop_hook_sends_the_model_back_with_its_reason(tmp_path):
    stop = script(tmp_path, "stop", """
        if not data["stop_hook_active"]:
            print("the changelog is not updated", file=sys.stderr)
            sys.exit(2)
    """)
    provider, loop = make_loop(tmp_path, [("done", []), ("changelog updated", [])], on("Stop", stop))
    events = [e async for e in loop.run("fix it")]
    assert events[-1].subtype == "success" and events[-1].result == "changelog updated"
    assert "the changelog is not updated" in provider.seen[1][-1].text
    assert sum(isinstance(e, ev.HookBlocked) for e in events) == 1


async def test_a_stop_hook_that_never_lets_go_is_bounded(tmp_path):
    stubborn = script(tmp_path, "stubborn", 'print(json.dumps({"decision": "block", "reason": "more"}))')
    provider, loop = make_loop(tmp_path, [("done", [])] * 12, on("Stop", stubborn))
    events = [e async for e in loop.run("go")]
    assert events[-1].subtype == "success" and len(provider.seen) == 11
    assert isinstance(events[-2], ev.HookWarning) and "the run ends anyway" in events[-2].message


async def test_continue_false_stops_the_run_after_the_call(tmp_path):
    halt = script(tmp_path, "halt", 'print(json.dumps({"continue": False, "stopReason": "tests are red"}))')
    provider, loop = make_loop(tmp_path, [("", [("echo", {"text": "a"})]), ("never", [])],
                               on("PostToolUse", halt))
    events = [e async for e in loop.run("go")]
    assert events[-1].subtype == "stopped_by_hook" and "tests are red" in events[-1].result
    assert len(provider.seen) == 1 and any(isinstance(e, ev.HookWarning) and e.stop for e in events)


async def test_session_start_context_comes_first_once(tmp_path):
    start = script(tmp_path, "start", 'print(json.dumps({"hookSpecificOutput": {"additionalContext": '
                                      '"branch: main, 3 open issues", "source": data["source"]}}))')
    provider, loop = make_loop(tmp_path, [("a", []), ("b", [])], on("SessionStart", start, "startup"))
    first = [e async for e in loop.run("one")]
    second = [e async for e in loop.run("two")]
    assert first[0].type == "context_note" and "3 open issues" in first[0].text
    assert not any(e.type == "context_note" for e in second)


async def test_pre_compact_fires_before_a_manual_compaction(tmp_path):
    mark = tmp_path / "compact.json"
    pre = script(tmp_path, "pre", f"open({str(mark)!r}, 'w').write(json.dumps(data))")

    class NothingToCompact:
        def observe(self, e):
            pass

        def estimate(self, system, tools, messages):
            return 10

        async def compact_now(self, system, tools, messages, focus=None):
            return messages, []

    provider, loop = make_loop(tmp_path, [], on("PreCompact", pre, "manual"))
    loop.compactor = NothingToCompact()
    assert [e async for e in loop.compact("keep the API notes")] == []
    data = json.loads(mark.read_text())
    assert data["trigger"] == "manual" and data["custom_instructions"] == "keep the API notes"


def test_session_end_runs_from_synchronous_code(tmp_path):
    end = script(tmp_path, "end", 'print("bye", file=sys.stderr); sys.exit(2)')
    hooks = hooks_for(tmp_path, on("SessionEnd", end))
    reports = hooks.session_ended("other", ToolContext(workspace=tmp_path, cwd=tmp_path))
    assert [(r.kind, r.message) for r in reports] == [("warning", "bye")]


async def test_notification_fires_before_a_person_is_asked(tmp_path):
    seen = tmp_path / "notified.json"
    notify = script(tmp_path, "notify", f"open({str(seen)!r}, 'w').write(json.dumps(data))")
    hooks = hooks_for(tmp_path, on("Notification", notify, "permission_prompt"))

    async def approver(request):
        assert seen.exists()  # the hook ran before the question
        return ApprovalAnswer(True)

    tool, verdict, _ = await gate(tmp_path, hooks, {"command": "make deploy"}, policy="ask", approver=approver)
    data = json.loads(seen.read_text())
    assert data["notification_type"] == "permission_prompt" and "bash" in data["message"] and tool.ran
    seen.unlink()
    await gate(tmp_path, hooks, {"command": "ls"}, policy="allow", approver=approver)
    assert not seen.exists()  # nobody asked: no notification
