from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from ghostline.sandbox import run_command
from ghostline.sandbox.checkpoints import CheckpointError, Checkpoints, create_worktree
from tests.sandbox.conftest import git


def tree(d: Path) -> dict[str, tuple[str, int]]:
    """Every file under d (but .git): content hash and mode; symlinks by target."""
    out = {}
    for root, dirs, files in os.walk(d):
        dirs[:] = [x for x in dirs if x != ".git"]
        for f in files:
            p = Path(root, f)
            rel = str(p.relative_to(d))
            if p.is_symlink():
                out[rel] = ("->" + os.readlink(p), 0)
            else:
                out[rel] = (hashlib.sha256(p.read_bytes()).hexdigest(), stat.S_IMODE(p.stat().st_mode) & 0o111)
    return out


def populate(d: Path) -> None:
    (d / "src" / "pkg").mkdir(parents=True)
    (d / "src" / "pkg" / "a.py").write_text("print('a')\r\n")
    (d / "src" / "b.txt").write_bytes(b"\xff\xfe binary \x00 data")
    (d / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (d / "run.sh").chmod(0o755)
    (d / "link").symlink_to("src/b.txt")
    (d / "keep.txt").write_text("keep\n")


def mutate(d: Path) -> None:
    (d / "src" / "pkg" / "a.py").write_text("changed\n")
    (d / "keep.txt").unlink()
    (d / "src" / "b.txt").rename(d / "src" / "renamed.txt")
    (d / "run.sh").chmod(0o644)
    (d / "link").unlink()
    (d / "new" / "deep").mkdir(parents=True)
    (d / "new" / "deep" / "x.txt").write_text("created later")
    (d / "src" / "pkg").rename(d / "src" / "pkg2")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    d = tmp_path / "repo"
    d.mkdir()
    git(d, "init", "-q", "-b", "main")
    (d / ".gitignore").write_text("*.log\nbuild/\n")
    populate(d)
    git(d, "add", "-A")
    git(d, "commit", "-qm", "init")
    # uncommitted user changes: modified, staged new file, untracked file, ignored file
    (d / "src" / "pkg" / "a.py").write_text("user edit, not committed\n")
    (d / "staged.txt").write_text("staged\n")
    git(d, "add", "staged.txt")
    (d / "untracked.txt").write_text("untracked\n")
    (d / "debug.log").write_text("ignored log\n")
    git(d, "stash", "list")
    return d


def git_state(d: Path) -> tuple[str, str, str, str]:
    return (git(d, "status", "--porcelain=v1", "--untracked-files=all"), git(d, "rev-parse", "HEAD"),
            git(d, "stash", "list"), git(d, "diff", "--cached"))


def test_undo_in_repo_with_uncommitted_changes(repo: Path) -> None:
    before, state = tree(repo), git_state(repo)
    cp = Checkpoints(repo)
    sha = cp.snapshot("sess1:1")
    assert sha and git_state(repo) == state  # snapshot touches neither index, HEAD nor stash
    mutate(repo)
    (repo / "debug.log").write_text("log written during the turn\n")
    cp2, changed = cp.undo("sess1", 1)
    assert cp2.sha == sha and changed
    after = tree(repo)
    expected = dict(before)
    expected["debug.log"] = tree(repo)["debug.log"]  # ignored files are left alone
    assert after == expected
    assert (repo / "debug.log").read_text() == "log written during the turn\n"
    assert git_state(repo) == state
    assert not (repo / "new").exists()
    assert "refs/ghostline/checkpoints/sess1" not in git(repo, "for-each-ref")  # its only checkpoint was used


@pytest.mark.parametrize("level", ["bubblewrap", "landlock", "none"])
async def test_undo_shell_made_changes_several_turns(repo: Path, level: str) -> None:
    from ghostline.sandbox.runner import probe_bubblewrap, probe_landlock

    if level != "none" and not (probe_bubblewrap() if level == "bubblewrap" else probe_landlock())[0]:
        pytest.skip(f"{level} not available here")
    cp = Checkpoints(repo, session="s2")
    t0 = tree(repo)
    cp.snapshot("s2:1")
    r = await run_command("rm -rf src/pkg && mv run.sh bin.sh && printf 'x' > made.txt && mkdir -p out/a && "
                          "touch out/a/b", cwd=repo, workspace=repo, mode="workspace-write", network=False,
                          timeout=10, level=level)
    assert r.exit_code == 0, r.output
    t1 = tree(repo)
    cp.snapshot("s2:2")
    (repo / "made.txt").write_text("turn 2 edit")
    (repo / "untracked.txt").unlink()
    assert [c.label for c in cp.list("s2")] == ["s2:2", "s2:1"]
    cp.undo("s2", 1)
    assert tree(repo) == t1
    cp.undo("s2", 1)  # a second undo goes one more turn back
    assert tree(repo) == t0
    with pytest.raises(CheckpointError):
        cp.undo("s2", 1)


def test_undo_turns_n_and_default_latest_session(repo: Path) -> None:
    cp = Checkpoints(repo)
    t0 = tree(repo)
    cp.snapshot("old:1")
    (repo / "x1").write_text("1")
    cp.snapshot("sB:1")
    (repo / "x2").write_text("2")
    cp.snapshot("sB:2")
    (repo / "x3").write_text("3")
    assert cp.sessions()[0][0] == "sB"
    cp.undo(turns=2)  # latest session, two turns back
    t = tree(repo)
    assert "x1" in t and "x2" not in t and "x3" not in t
    cp.undo("old", 1)
    assert tree(repo) == t0


def test_non_git_directory_uses_shadow_repo(tmp_path: Path) -> None:
    d = tmp_path / "plain"
    d.mkdir()
    populate(d)
    (d / "node_modules").mkdir()
    (d / "node_modules" / "dep.js").write_text("dep")
    before = tree(d)
    cp = Checkpoints(d)
    assert cp.snapshot("s:1")
    assert not (d / ".git").exists()
    mutate(d)
    (d / "node_modules" / "dep.js").write_text("dep changed")  # excluded by default, left alone
    cp.undo()
    after = tree(d)
    before["node_modules/dep.js"] = after["node_modules/dep.js"]
    assert after == before
    assert not (d / ".git").exists()


def test_restore_conflicting_file_and_directory(tmp_path: Path) -> None:
    d = tmp_path / "w"
    d.mkdir()
    (d / "thing").write_text("was a file")
    cp = Checkpoints(d)
    cp.snapshot("s:1")
    (d / "thing").unlink()
    (d / "thing" / "inner").mkdir(parents=True)
    (d / "thing" / "inner" / "f").write_text("now a dir")
    cp.undo("s")
    assert (d / "thing").read_text() == "was a file"


def test_worktree(repo: Path) -> None:
    path, branch = create_worktree(repo, "job 1")
    assert path.is_dir() and (path / "run.sh").exists()
    assert branch == "ghostline/job-1"
    assert git(path, "rev-parse", "--abbrev-ref", "HEAD").strip() == branch
    path2, branch2 = create_worktree(repo, "job 1")
    assert path2 != path and branch2 != branch
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"


def test_worktree_outside_git(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError):
        create_worktree(tmp_path, None)


def test_undo_skips_turns_that_changed_nothing(repo: Path) -> None:
    cp = Checkpoints(repo, session="s1")
    before = tree(repo)
    cp.snapshot("s1:1")  # before an edit turn
    (repo / "keep.txt").write_text("edited by the agent\n")
    cp.snapshot("s1:2")  # before a turn that only ran the tests
    restored, changed = cp.undo(turns=1)
    assert restored.label == "s1:1" and changed == ["keep.txt"]
    assert tree(repo) == before
    with pytest.raises(CheckpointError, match="no checkpoints"):
        cp.undo(turns=1)
    cp.snapshot("s1:3")  # a turn that changed nothing at all
    with pytest.raises(CheckpointError, match="nothing to undo"):
        cp.undo(turns=1)
    assert tree(repo) == before


def test_session_diff_shows_every_change_since_the_first_checkpoint(tmp_path):
    from ghostline.sandbox.checkpoints import Checkpoints

    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.py").write_text("x = 1\n")
    (ws / "gone.txt").write_text("bye\n")
    cps = Checkpoints(ws, session="s1", prime=False)
    assert cps.session_diff("s1") == ""
    cps.snapshot("s1:1")
    (ws / "a.py").write_text("x = 2\n")  # as an edit tool would
    cps.snapshot("s1:2")
    (ws / "new.txt").write_text("hello\n")  # as a shell command would, after the last checkpoint
    (ws / "gone.txt").unlink()
    diff = cps.session_diff("s1")
    assert "-x = 1" in diff and "+x = 2" in diff and "+hello" in diff and "-bye" in diff


def test_changed_since_lists_what_anything_changed_after_a_checkpoint(repo: Path) -> None:
    (repo / "notes.txt").write_text("untracked before, left alone\n")
    cp = Checkpoints(repo, session="s")
    first = cp.snapshot("s:1")
    assert first is not None
    assert cp.changed_since(first) == []
    (repo / "made.txt").write_text("by a command\n")
    (repo / "src" / "pkg" / "a.py").write_text("changed again\n")
    (repo / "keep.txt").unlink()
    (repo / "more.log").write_text("ignored\n")
    assert sorted(p.relative_to(repo).as_posix() for p in cp.changed_since(first)) == \
        ["keep.txt", "made.txt", "src/pkg/a.py"]
