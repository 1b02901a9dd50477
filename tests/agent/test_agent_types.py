"""Agent type files in Claude Code's format: parsing, precedence, tool names, the model rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from ghostline.agent.agent_types import (
    DEFAULT_TYPE,
    load_agent_types,
    parse_agent_file,
    subagent_model,
    tool_name,
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_claude_code_tool_names_become_ours():
    assert [tool_name(n) for n in ("Read", "Grep", "Glob", "Bash", "Edit", "Write", "TodoWrite", "MultiEdit",
                                   "LS", "WebFetch", "Bash(git status:*)", "search", "mcp__db__query")] == [
        "read", "grep", "glob", "bash", "edit", "write", "todo_write", "edit", "glob", "fetch", "bash", "search",
        "mcp__db__query"]


def test_an_agent_file_gives_name_description_tools_model_and_prompt(tmp_path):
    path = write(tmp_path / "reviewer.md", "---\nname: code-reviewer\ndescription: Reviews\n  diffs\n"
                                           "tools: Read, Grep, Glob, Read\nmodel: sonnet\n---\n\nReview it.\n")
    t = parse_agent_file(path)
    assert (t.name, t.description, t.tools, t.model, t.prompt) == (
        "code-reviewer", "Reviews diffs", ("read", "grep", "glob"), "sonnet", "Review it.")
    bare = parse_agent_file(write(tmp_path / "helper.md", "Help with anything.\nMore lines."))
    assert (bare.name, bare.description, bare.tools, bare.model) == ("helper", "Help with anything.", None, None)
    listed = parse_agent_file(write(tmp_path / "l.md", "---\ntools:\n  - Read\n  - Bash\n---\nGo."))
    assert listed.tools == ("read", "bash")


@pytest.mark.parametrize(("text", "why"), [
    ("---\ndescription: ok\nname: a: b\n---\nbody", "must be letters, digits"),  # read line by line: `a: b`
    ("---\nname: x\nbody", "never closed"),
    ("---\nname: x\n---\n", "body (the subagent's system prompt) is empty"),
    ("---\nname: has space\n---\nbody", "must be letters, digits"),
])
def test_a_bad_agent_file_is_refused_with_one_line(tmp_path, text, why):
    with pytest.raises(ValueError) as err:
        parse_agent_file(write(tmp_path / "bad.md", text))
    assert why in str(err.value) and "\n" not in str(err.value)


def test_project_files_win_over_user_files_which_win_over_built_ins(tmp_path):
    root, user = tmp_path / "repo", tmp_path / "config"
    write(user / "agents" / "explorer.md", "---\ndescription: mine\n---\nUser explorer.")
    write(user / "agents" / "shared.md", "---\ndescription: user\n---\nUser.")
    write(root / ".ghostline" / "agents" / "shared.md", "---\ndescription: project\n---\nProject.")
    write(root / ".ghostline" / "agents" / "broken.md", "---\nname: x\n")
    types, warnings = load_agent_types(root, user)
    assert types["explorer"].prompt == "User explorer." and types["shared"].prompt == "Project."
    assert types[DEFAULT_TYPE].source == "built-in"
    assert len(warnings) == 1 and "broken.md" in warnings[0] and "never closed" in warnings[0]
    builtins, none = load_agent_types(tmp_path / "empty", None)
    assert list(builtins) == ["explorer", DEFAULT_TYPE] and none == []
    assert builtins["explorer"].tools == ("read", "grep", "glob", "search")


def test_a_subagent_runs_on_its_model_only_when_the_table_has_it():
    parent = "anthropic:claude-sonnet-5-5"
    assert subagent_model("claude-haiku-4-5", parent) == "anthropic:claude-haiku-4-5"
    assert subagent_model("openai:gpt-4.1", parent) == "openai:gpt-4.1"
    for unknown in (None, "", "inherit", "haiku", "sonnet", "claude-nonexistent-9", "nope:x"):
        assert subagent_model(unknown, parent) is None, unknown
    # A model the config describes counts as known (a local server's, say).
    assert subagent_model("openai:my-local", parent, {"openai:my-local": {"context_window": 8192}}) == \
        "openai:my-local"


def test_agent_files_read_claude_codes_lenient_frontmatter(tmp_path):
    from ghostline.agent.agent_types import parse_agent_file

    f = tmp_path / "reviewer.md"
    f.write_text("\ufeff---\nname: reviewer\ntools: Read, Bash(git diff:*)\nhint: [a] [b]\n---\nReview it.\n")
    t = parse_agent_file(f)
    assert (t.name, t.prompt, t.tools) == ("reviewer", "Review it.", ("read", "bash"))
