"""Custom slash commands: Claude Code's command files (frontmatter, $ARGUMENTS/$1.., namespaces) and what a
command's frontmatter puts in force for its one message (allowed-tools at the gate, model)."""

from __future__ import annotations

from pathlib import Path

from ghostline.agent.custom_commands import load_commands, parse_invocation
from ghostline.agent.scope import MessageScope, ModelSwitch
from ghostline.tools.base import ToolContext
from ghostline.tools.frontmatter import list_field, split_frontmatter
from ghostline.tools.registry import Call, ToolRegistry
from ghostline.tools.scope import ToolScope
from tests.agent.test_hooks import RecordingTool
from tests.agent.test_loop import EchoTool, ScriptedProvider


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_arguments_positional_words_and_the_appended_form(tmp_path):
    write(tmp_path / ".ghostline/commands/fix.md", "Fix issue #$1 with priority $2; context: $ARGUMENTS")
    write(tmp_path / ".ghostline/commands/plain.md", "Tidy the imports.")
    commands, _ = load_commands(tmp_path, None)
    fix, plain = commands["fix"], commands["plain"]
    assert fix.expand('123 high "flaky test"') == 'Fix issue #123 with priority high; context: 123 high "flaky test"'
    assert fix.expand("") == "Fix issue # with priority ; context:"
    assert plain.expand("in src/") == "Tidy the imports.\n\nARGUMENTS: in src/"
    assert plain.expand("") == "Tidy the imports." and plain.description == "Tidy the imports."


def test_claude_code_frontmatter_that_is_not_strict_yaml_still_reads():
    fields, body = split_frontmatter("---\nargument-hint: [pr-number] [priority]\nallowed-tools: Bash(git add:*), "
                                     "Bash(git status: *), Read\ndescription: Create a commit\n---\nBody $1\n")
    assert fields["argument-hint"] == "[pr-number] [priority]" and body == "Body $1\n"
    assert list_field(fields, "allowed-tools") == ["Bash(git add:*)", "Bash(git status: *)", "Read"]
    fields, _ = split_frontmatter("---\nargument-hint: [message]\nallowed-tools:\n  - Read\n  - Grep\n---\nx")
    assert fields["argument-hint"] == "[message]" and list_field(fields, "allowed-tools") == ["Read", "Grep"]
    assert split_frontmatter("no frontmatter\n---\n") == ({}, "no frontmatter\n---\n")


def test_namespaces_and_the_project_shadowing_the_user(tmp_path):
    user = tmp_path / "user"
    write(tmp_path / ".ghostline/commands/frontend/Lint.md", "---\ndescription: lint the UI\n---\nRun eslint.")
    write(tmp_path / ".ghostline/commands/review.md", "project review")
    write(user / "commands/review.md", "user review")
    write(user / "commands/standup.md", "---\nmodel: openai:gpt-4.1\n---\nWhat changed?")
    commands, warnings = load_commands(tmp_path, user)
    assert sorted(commands) == ["frontend:lint", "review", "standup"] and warnings == []
    assert commands["review"].body == "project review" and commands["review"].source == "project"
    assert commands["standup"].source == "user" and commands["standup"].model == "openai:gpt-4.1"
    assert commands["frontend:lint"].description == "lint the UI"
    assert parse_invocation("/Frontend:Lint src/ app/") == ("frontend:lint", "src/ app/")
    assert parse_invocation("fix /etc/hosts") is None


def test_allowed_tools_rules_cover_whole_command_lines():
    scope = ToolScope(["Read", "Bash(git status:*)", "bash: git diff *"], "/commit")
    from ghostline.sandbox.policy import Action

    ws = Path("/ws")
    assert scope.permits(Action("read", "read", ("a.py",)), ws)
    assert scope.permits(Action("bash", "shell", command="git status --short"), ws)
    assert scope.permits(Action("bash", "shell", command="git status && git diff HEAD"), ws)
    assert not scope.permits(Action("bash", "shell", command="git status && rm -rf x"), ws)
    assert not scope.permits(Action("edit", "edit", ("a.py",)), ws)
    assert ToolScope(["edit: src/*"]).permits(Action("edit", "edit", ("src/a.py",)), ws)
    assert not ToolScope(["edit: src/*"]).permits(Action("edit", "edit", ("setup.py",)), ws)


async def test_a_message_scope_narrows_the_gate_and_switches_the_model_for_one_run(tmp_path):
    from ghostline.agent.loop import AgentLoop

    session_model = ScriptedProvider([("", [("bash", {"command": "ls"}), ("echo", {"text": "x"})]), ("ok", []),
                                      ("later", [("bash", {"command": "ls"})]), ("fine", [])])
    command_model = ScriptedProvider([("", [("bash", {"command": "ls"}), ("echo", {"text": "x"})]), ("ok", [])])
    bash = RecordingTool()
    loop = AgentLoop(provider=session_model, registry=ToolRegistry([bash, EchoTool()]),
                     ctx=ToolContext(workspace=tmp_path, cwd=tmp_path), system="sys")
    loop.scope_next_message(MessageScope("/look", ToolScope(["echo"], "/look"),
                                         ModelSwitch(command_model, lambda u: None, 1000)))
    events = [e async for e in loop.run("look")]
    results = [e for e in events if e.type == "tool_result"]
    assert results[0].is_error and "/look allows only these tools: echo" in results[0].content
    assert results[1].content == "X" and bash.ran == []
    assert len(command_model.seen) == 2 and session_model.seen == []
    events = [e async for e in loop.run("again")]  # the next message: every tool, the session's model
    assert bash.ran == ["ls"] and len(session_model.seen) == 2 and loop.ctx.tool_scope is None


async def test_the_gate_refuses_out_of_scope_calls_before_hooks_or_policy(tmp_path):
    registry = ToolRegistry([RecordingTool()])
    ctx = ToolContext(workspace=tmp_path, cwd=tmp_path, tool_scope=ToolScope(["Read"], "/ro"))
    verdict = await registry.admit(Call("c", "bash", {"command": "ls"}), ctx)
    assert not verdict.allowed and verdict.refusal.meta == {"denied": True, "out_of_scope": True}
