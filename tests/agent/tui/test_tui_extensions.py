"""Custom slash commands and hooks in the TUI: Textual's pilot drives the real app against the fake model server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.agent.tui.drive import lines, make_app, run_to_end, running, submit
from tests.fakeserver import FakeModelServer, reply

EXPLAIN = """\
---
description: Explain a symbol of a file
argument-hint: [symbol] [file]
model: inherit
---
Explain `$1` in @$2 in two sentences. (all arguments: $ARGUMENTS)
"""


@pytest.fixture
def project(tmp_path: Path, fake_model_env: FakeModelServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    cfg = tmp_path / "config" / "ghostline"
    (cfg / "commands").mkdir(parents=True)
    (cfg / "config.toml").write_text("[retry]\nmax_attempts = 2\nbase_delay = 0.01\nmax_delay = 0.02\n")
    (cfg / "commands" / "standup.md").write_text("Summarise what changed since yesterday.\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("GHOSTLINE_EMBEDDINGS", "off")
    monkeypatch.delenv("GHOSTLINE_MODEL", raising=False)
    monkeypatch.delenv("CI", raising=False)
    repo = tmp_path / "repo"
    (repo / ".ghostline" / "commands").mkdir(parents=True)
    (repo / ".ghostline" / "commands" / "explain.md").write_text(EXPLAIN)
    (repo / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.email=t@e", "-c", "user.name=t", "commit", "-qm", "i"]):
        subprocess.run(["git", *args], cwd=repo, check=True)
    return repo


async def test_a_project_command_with_arguments_in_the_tui(project, fake_model_env):
    fake_model_env.enqueue(reply("`add` returns the sum of its two arguments."))
    app = make_app(project)
    async with running(app) as pilot:
        box, popup = app.prompt, app.prompt.popup
        box.focus()
        await pilot.press("/", "e", "x")
        shown = {c.label: c.detail for c in popup.candidates}
        assert shown["/explain [symbol] [file]"] == "Explain a symbol of a file (project)"
        box.clear()
        await submit(app, pilot, "/help")
        await pilot.pause()
        help_text = lines(app, "help")[-1]
        assert "/explain [symbol] [file]" in help_text and "/standup" in help_text
        await run_to_end(app, pilot, "/explain add calc.py")
        assert app.agent_run.final is not None and app.agent_run.final.type == "done"
    sent = json.dumps(fake_model_env.requests[0].body["messages"])
    assert "Explain `add` in @calc.py in two sentences. (all arguments: add calc.py)" in sent
    assert "return a + b" in sent  # @$2 attached the file, as a typed @mention does


async def test_a_hook_block_is_shown_in_the_tui(project, fake_model_env, tmp_path):
    guard = tmp_path / "guard.py"
    guard.write_text("import sys, json\njson.load(sys.stdin)\nprint('no shell today', file=sys.stderr)\nsys.exit(2)\n")
    config = tmp_path / "config" / "ghostline" / "config.toml"
    config.write_text(config.read_text() + f'\n[[hooks.PreToolUse]]\nmatcher = "Bash"\n[[hooks.PreToolUse.hooks]]\n'
                                            f'command = "{sys.executable} {guard}"\n')
    fake_model_env.enqueue(reply("", [("bash", {"command": "ls"})]), reply("Understood."))
    app = make_app(project)
    async with running(app) as pilot:
        await run_to_end(app, pilot, "list the files")
        assert "[blocked by a PreToolUse hook: no shell today]" in lines(app, "warning")
    assert "no shell today" in json.dumps(fake_model_env.requests[1].body["messages"])
