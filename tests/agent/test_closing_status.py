"""The report's files_changed: edits report their own files; what commands change is found by one `git status`,
taken while the model thinks, and only when something that may change files ran."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from ghostline.agent import events as ev
from ghostline.agent.later import Later
from ghostline.agent.runner import PreparedRun
from tests.agent.test_e2e import agent_env, make_repo, run_agent
from tests.fakeserver import FakeModelServer, reply


def test_files_a_command_made_are_reported_and_files_dirty_before_are_not(tmp_path):
    repo = make_repo(tmp_path)
    (repo / "notes.txt").write_text("mine, untracked before the run\n")
    script = [reply("", [("bash", {"command": "echo new > made.txt"})]),
              reply("", [("read", {"path": "made.txt"})]),
              reply("made it")]
    with FakeModelServer(script) as srv:
        r = run_agent(["run", "make a file", "-m", "anthropic:claude-sonnet-5-5", "-o", "json"], cwd=repo,
                      env=agent_env(tmp_path, srv, "anthropic"))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["files_changed"] == ["made.txt"]


class _NoCheckpoints:
    """A loop where no checkpoint was taken (checkpoints off): the report falls back to git status."""

    checkpoints = None
    first_checkpoint = None


def _run(tmp_path: Path) -> PreparedRun:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    before = Later(lambda: {"old.txt": "1:1"})
    return PreparedRun(loop=_NoCheckpoints(), session=None, cwd=tmp_path, root=tmp_path, is_git=True, model_label="m",  # type: ignore[arg-type]
                       sandbox_report={}, changed_before=before, started=0.0, config=None)  # type: ignore[arg-type]


def test_reads_and_edits_need_no_status(tmp_path):
    run = _run(tmp_path)
    for e in (ev.TurnStarted(turn=1), ev.ToolCall("1", "read", {}, kind="read"), ev.TurnStarted(turn=2),
              ev.ToolCall("2", "edit", {}, kind="edit"), ev.TurnStarted(turn=3)):
        run.observe(e)
    assert run._status_now is None
    assert run.changed_by_run() == []  # the status from before the run serves: nothing else moved


def test_a_command_asks_for_one_status_during_the_next_model_call(tmp_path):
    run = _run(tmp_path)
    run.observe(ev.ToolCall("1", "bash", {}, kind="shell"))
    assert run._status_now is None  # not while the command may still change files
    (tmp_path / "made.txt").write_text("x")  # what the command did
    run.observe(ev.TurnStarted(turn=2))
    taken = run._status_now
    assert taken is not None
    run.observe(ev.TurnStarted(turn=3))
    assert run._status_now is taken  # nothing moved since: the same status serves
    assert run.changed_by_run() == [str(tmp_path / "made.txt")]
