"""The report's diffstat without a throwaway index: the same figures, and nothing written to the repository."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from ghostline.agent.landing import LandingRequest, diff_against, head_commit, land, worktree_diffstat


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@e", *args],
                          check=True, capture_output=True, text=True).stdout


def digest_of_git_dir(repo: Path) -> str:
    h = hashlib.sha256()
    for p in sorted((repo / ".git").rglob("*")):
        if p.is_file():
            h.update(str(p).encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    d = tmp_path / "r"
    d.mkdir()
    git(d, "init", "-q")
    (d / ".gitignore").write_text("build/\n")
    (d / "a.py").write_text("one\ntwo\nthree\n")
    (d / "b.py").write_text("keep\n")
    (d / "gone.py").write_text("x\ny\n")
    (d / "blob.bin").write_bytes(b"\0\1\2")
    git(d, "add", "-A")
    git(d, "commit", "-qm", "init")
    return d


def test_edits_and_deletions_are_counted_from_the_working_tree(repo: Path) -> None:
    base = head_commit(repo)
    (repo / "a.py").write_text("one\n2\nthree\nfour\n")
    (repo / "gone.py").unlink()
    (repo / "blob.bin").write_bytes(b"\0\1\3")
    (repo / "build").mkdir()
    (repo / "build" / "x.o").write_text("ignored")
    paths = ["a.py", "gone.py", "blob.bin", "b.py", "build/x.o", "never.py"]
    before = digest_of_git_dir(repo)
    got = worktree_diffstat(repo, base, paths)
    assert digest_of_git_dir(repo) == before  # no index, object or lock left in .git
    assert got == diff_against(repo, base, paths)[1] == {"files": 3, "insertions": 2, "deletions": 3}


def test_a_new_file_is_counted_as_the_throwaway_index_counts_it(repo: Path) -> None:
    base = head_commit(repo)
    (repo / "new.py").write_text("a\nb\n")
    (repo / "a.py").write_text("one\n")
    got = worktree_diffstat(repo, base, ["new.py", "a.py"])
    assert got == diff_against(repo, base, ["new.py", "a.py"])[1] == {"files": 2, "insertions": 2, "deletions": 2}


def test_a_report_that_writes_nothing_counts_without_staging(repo: Path) -> None:
    base = head_commit(repo)
    (repo / "a.py").write_text("changed\n")
    out = land(repo, base=base, paths=["a.py"], request=LandingRequest(), succeeded=True, summary="s", task="t",
               session_id="S")
    assert out["diffstat"] == {"files": 1, "insertions": 1, "deletions": 3} and out["commit"] is None
    assert git(repo, "status", "--porcelain") == " M a.py\n"


def test_a_rename_between_tracked_paths_is_counted_as_git_counts_it(repo: Path) -> None:
    base = head_commit(repo)
    git(repo, "mv", "gone.py", "renamed.py")
    paths = ["gone.py", "renamed.py"]
    assert worktree_diffstat(repo, base, paths) == diff_against(repo, base, paths)[1]


def test_a_path_edited_back_to_what_it_was_counts_nothing(repo: Path) -> None:
    base = head_commit(repo)
    (repo / "a.py").write_text("one\ntwo\nthree\n")  # written, but as it was
    (repo / "b.py").write_text("changed\n")
    assert worktree_diffstat(repo, base, ["a.py", "b.py"]) == {"files": 1, "insertions": 1, "deletions": 1}
