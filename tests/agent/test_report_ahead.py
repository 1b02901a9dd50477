"""The report's diffstat counted while the model writes its answer: taken at the end only while it holds."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from ghostline.agent import events as ev
from ghostline.agent.landing import head_commit, worktree_diffstat
from ghostline.agent.report_ahead import ReportAhead
from ghostline.sandbox.checkpoints import Checkpoints
from tests.agent.test_e2e import MODELS, agent_env, make_repo, run_agent
from tests.fakeserver import FakeModelServer, reply


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@e", *args],
                          check=True, capture_output=True, text=True).stdout


class FakeRun(SimpleNamespace):
    """What ReportAhead reads of a PreparedRun, over real checkpoints."""

    def changed_by_run(self) -> list[str]:
        return [str(p) for p in self.loop.checkpoints.changed_since(self.loop.first_checkpoint)]


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeRun:
    monkeypatch.setenv("GHOSTLINE_DATA_DIR", str(tmp_path / "data"))
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "a.py").write_text("one\ntwo\n")
    (repo / "b.py").write_text("b\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")
    checkpoints = Checkpoints(repo, session="s")
    checkpoints.prime(wait=True)
    loop = SimpleNamespace(checkpoints=checkpoints, first_checkpoint=checkpoints.snapshot("s:1"),
                           stats=SimpleNamespace(files_changed=[]))
    return FakeRun(root=repo, is_git=True, loop=loop)


def a_turn_edits(run: FakeRun, ahead: ReportAhead, text: str) -> None:
    ahead.observe(ev.ToolCall("t1", "edit", {}, kind="edit"))
    (run.root / "a.py").write_text(text)
    run.loop.stats.files_changed = [str(run.root / "a.py")]
    ahead.observe(ev.TurnStarted(2))  # the next model call: the count begins


def test_the_count_made_ahead_is_taken_when_nothing_changed_since(run: FakeRun) -> None:
    base = head_commit(run.root)
    ahead = ReportAhead(run, base)
    a_turn_edits(run, ahead, "one\n2\nthree\n")
    run.changed_by_run()  # what the report does first at the end
    assert ahead.diffstat(["a.py"]) == worktree_diffstat(run.root, base, ["a.py"]) == {
        "files": 1, "insertions": 2, "deletions": 1}


def test_a_change_after_the_count_makes_it_count_again(run: FakeRun) -> None:
    ahead = ReportAhead(run, head_commit(run.root))
    a_turn_edits(run, ahead, "one\n2\n")
    ahead.diffstat(["a.py"])  # the count is done
    (run.root / "b.py").write_text("the user's editor, while the model answered\n")
    run.changed_by_run()
    assert ahead.diffstat(["a.py"]) is None
    assert ahead.diffstat(["a.py", "b.py"]) is None


def test_no_count_without_a_turn_that_may_change_files(run: FakeRun) -> None:
    ahead = ReportAhead(run, head_commit(run.root))
    ahead.observe(ev.ToolCall("t1", "read", {}, kind="read"))
    ahead.observe(ev.TurnStarted(2))
    assert ahead.diffstat([]) is None


def test_undo_after_a_headless_run_keeps_the_earlier_turns_work(tmp_path: Path) -> None:
    """The real `agent run`: a write turn, then a command turn, the report counted while the model answers; undo
    of the last turn keeps what the write turn did (the report's look at the files must not hide it)."""
    repo = make_repo(tmp_path)
    script = [reply("", [("write", {"path": "notes.md", "content": "kept\n"})]),
              reply("", [("bash", {"command": "printf 'x' >> calc.py && rm AGENT.md && mkdir -p out && "
                                              "echo y > out/f.txt"})]),
              reply("Done.")]
    with FakeModelServer(script) as srv:
        env = agent_env(tmp_path, srv, "anthropic")
        r = run_agent(["run", "go", "-m", MODELS["anthropic"], "--approval", "auto", "-o", "json"], cwd=repo, env=env)
        assert r.returncode == 0, r.stderr
        undo = run_agent(["undo"], cwd=repo, env=env)
    assert undo.returncode == 0, undo.stderr
    assert (repo / "notes.md").read_text() == "kept\n" and (repo / "AGENT.md").exists()
    assert not (repo / "out").exists() and not (repo / "calc.py").read_text().endswith("x")
