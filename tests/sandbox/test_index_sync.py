"""Snapshots that look only at what the tree's watch saw change hold exactly what a full look at every file
holds, whatever changed the files."""

from __future__ import annotations

import os
import random
import shutil
import sys
from pathlib import Path

import pytest

from ghostline.sandbox import checkpoint_store
from ghostline.sandbox.checkpoint_store import Store, locate
from ghostline.sandbox.checkpoints import Checkpoints
from tests.sandbox.conftest import git

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the tree watch is inotify's")


def _tree_of(cp: Checkpoints, sha: str) -> str:
    return git(cp.workspace, f"--git-dir={cp.store_path}", "rev-parse", f"{sha}^{{tree}}").strip()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    d = tmp_path / "ws"
    (d / "src" / "pkg").mkdir(parents=True)
    git(d, "init", "-q", "-b", "main")
    (d / ".gitignore").write_text("*.log\nbuild/\n")
    for i in range(30):
        (d / "src" / ("pkg" if i % 2 else "") / f"m{i}.py").write_text(f"x = {i}\n")
    git(d, "add", "-A")
    git(d, "commit", "-qm", "init")
    (d / "untracked.txt").write_text("not committed\n")
    (d / "build").mkdir()
    (d / "build" / "out.bin").write_bytes(b"\0ignored")
    return d


def pair(workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Checkpoints, Checkpoints]:
    """A watched instance, and one in a store of its own that looks at every file every time."""
    watched = Checkpoints(workspace, session="w")
    watched.prime(wait=True)
    assert watched._sync._watch is not None
    monkeypatch.setenv("GHOSTLINE_DATA_DIR", str(tmp_path / "_full"))
    full = Checkpoints(workspace, session="f", prime=False)
    return watched, full


def _files(d: Path) -> list[Path]:
    return sorted(p for p in d.rglob("*") if ".git" not in p.parts and (p.is_file() or p.is_symlink()))


def _dirs(d: Path) -> list[Path]:
    return sorted(p for p in d.rglob("*") if ".git" not in p.parts and p.is_dir() and not p.is_symlink())


def random_change(d: Path, rng: random.Random, n: int) -> None:
    files, dirs = _files(d), [d, *_dirs(d)]
    op = rng.choice(["write", "write", "atomic", "scratch", "new", "delete", "rename", "chmod", "mkdir", "rmtree",
                     "movedir", "ignored", "unignored", "symlink", "gitignore"])
    if op == "atomic" and files:  # as the file tools write: a temporary file renamed over the target
        p = rng.choice(files)
        if not p.is_symlink():
            tmp = p.with_name(f".{p.name}.{n}.tmp")
            tmp.write_text(f"atomic {n}\n")
            tmp.rename(p)
    elif op == "scratch":  # a command's scratch file and directory, gone before the next snapshot
        scratch = rng.choice(dirs) / f"scratch{n}"
        scratch.mkdir()
        (scratch / "f").write_text("x")
        shutil.rmtree(scratch)
        (d / f"scratch{n}.txt").write_text("x")
        (d / f"scratch{n}.txt").unlink()
    elif op == "write" and files:
        p = rng.choice(files)
        if not p.is_symlink():
            p.write_text(f"edit {n}\n")
    elif op == "new":
        (rng.choice(dirs) / f"new{n}.py").write_text(f"new {n}\n")
    elif op == "delete" and files:
        rng.choice(files).unlink()
    elif op == "rename" and files:
        p = rng.choice(files)
        p.rename(rng.choice(dirs) / f"renamed{n}{p.suffix}")
    elif op == "chmod" and files:
        p = rng.choice(files)
        if not p.is_symlink():
            p.chmod(p.stat().st_mode ^ 0o111)
    elif op == "mkdir":
        sub = rng.choice(dirs) / f"dir{n}" / "deep"
        sub.mkdir(parents=True)
        (sub / "f.txt").write_text(f"in a new directory {n}\n")
    elif op == "rmtree" and len(dirs) > 1:
        shutil.rmtree(rng.choice(dirs[1:]))
    elif op == "movedir" and len(dirs) > 1:
        src = rng.choice(dirs[1:])
        target = rng.choice([x for x in dirs if not x.is_relative_to(src)]) / f"moved{n}"
        src.rename(target)
    elif op == "ignored":
        (rng.choice(dirs) / f"debug{n}.log").write_text("ignored\n")
    elif op == "unignored":  # an ignored file removed: a path gone that the index never held
        logs = [p for p in files if p.suffix == ".log"]
        if logs:
            rng.choice(logs).unlink()
    elif op == "symlink" and files:
        (rng.choice(dirs) / f"link{n}").symlink_to(os.path.relpath(rng.choice(files), d))
    elif op == "gitignore":
        with open(d / ".gitignore", "a") as f:
            f.write(f"new{n}.py\n")


@pytest.mark.parametrize("seed", [1, 2, 3, 7])  # 7 found a file replaced by a rename taken for new
def test_watched_snapshots_hold_what_a_full_look_holds(workspace: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    watched, full = pair(workspace, tmp_path, monkeypatch)
    rng = random.Random(seed)
    first = watched.snapshot("w:first")
    for n in range(40):
        for k in range(rng.randint(1, 3)):
            random_change(workspace, rng, n * 10 + k)
            if rng.random() < 0.3:  # as a run's report does while the model thinks: it syncs the index too
                watched.changed_since(first)
        a, b = watched.snapshot(f"w:{n}"), full.snapshot(f"f:{n}")
        assert a and b
        assert _tree_of(watched, a) == _tree_of(full, b), f"seed {seed}, step {n}"


def test_a_store_index_replaced_by_another_process_means_a_full_look(workspace: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    watched, full = pair(workspace, tmp_path, monkeypatch)
    watched.snapshot("w:1")
    store = Store(watched.store_path, locate(workspace))
    store.drop_index()  # as another session recovering from an unreadable index would: started again from
    store.seed_index()  # the repository's index, which does not hold the untracked file
    (workspace / "src" / "m0.py").write_text("changed\n")
    a, b = watched.snapshot("w:2"), full.snapshot("f:2")
    assert _tree_of(watched, a) == _tree_of(full, b)
    assert "untracked.txt" in git(workspace, f"--git-dir={watched.store_path}", "ls-tree", "--name-only", a)


def test_changes_since_a_checkpoint_come_from_the_watch(workspace: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    watched, _ = pair(workspace, tmp_path, monkeypatch)
    first = watched.snapshot("w:1")
    (workspace / "src" / "m0.py").write_text("changed\n")
    (workspace / "src" / "pkg" / "m1.py").unlink()
    (workspace / "made" / "deep").mkdir(parents=True)
    (workspace / "made" / "deep" / "x.txt").write_text("x")
    (workspace / "debug.log").write_text("ignored: not a change a snapshot holds\n")
    assert first
    assert sorted(p.relative_to(workspace).as_posix() for p in watched.changed_since(first)) == [
        "made/deep/x.txt", "src/m0.py", "src/pkg/m1.py"]


def _inotify_descriptors() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:inotify"
        except OSError:  # the descriptor listdir itself used
            pass
    return count


def test_close_gives_the_watch_back_and_snapshots_go_on(workspace: Path) -> None:
    before = _inotify_descriptors()
    cp = Checkpoints(workspace, session="w")
    cp.prime(wait=True)
    assert _inotify_descriptors() == before + 1
    cp.close()
    assert _inotify_descriptors() == before
    (workspace / "after.txt").write_text("written after the watch went\n")
    sha = cp.snapshot("w:1")
    assert sha and "after.txt" in git(workspace, f"--git-dir={cp.store_path}", "ls-tree", "--name-only", sha)


def test_changed_since_is_remembered_while_the_watch_sees_nothing_change(workspace: Path, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    watched, full = pair(workspace, tmp_path, monkeypatch)
    first = watched.snapshot("w:1")
    (workspace / "src" / "m0.py").write_text("changed\n")
    assert [p.name for p in watched.changed_since(first)] == ["m0.py"]
    generation = watched.generation
    assert [p.name for p in watched.changed_since(first)] == ["m0.py"] and watched.generation == generation
    (workspace / "src" / "m2.py").write_text("changed too\n")
    assert sorted(p.name for p in watched.changed_since(first)) == ["m0.py", "m2.py"]
    assert watched.generation > generation
    unwatched = full.snapshot("f:1")  # no watch: every look may find something new
    before = full.generation
    full.changed_since(unwatched)
    assert full.generation > before



def test_a_turn_that_deletes_files_runs_one_git_add(workspace: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    watched, full = pair(workspace, tmp_path, monkeypatch)
    watched.snapshot("w:1")
    (workspace / "src" / "pkg" / "debug.log").write_text("ignored\n")
    watched.snapshot("w:2")
    commands: list[str] = []
    real = checkpoint_store.run_for_store

    def counted(argv: list[str], **kw: object) -> tuple[int, bytes, bytes]:
        commands.append(next(a for a in argv[1:] if not a.startswith("-") and "=" not in a))
        return real(argv, **kw)

    monkeypatch.setattr(checkpoint_store, "run_for_store", counted)
    (workspace / "src" / "pkg" / "m1.py").unlink()  # tracked
    (workspace / "src" / "pkg" / "debug.log").unlink()  # ignored: never in the index
    (workspace / "src" / "m0.py").write_text("changed\n")
    a = watched.snapshot("w:3")
    assert commands == ["add", "write-tree"]
    monkeypatch.setattr(checkpoint_store, "run_for_store", real)
    assert _tree_of(watched, a) == _tree_of(full, full.snapshot("f:3"))
    assert "src/pkg/m1.py" not in git(workspace, f"--git-dir={watched.store_path}", "ls-tree", "-r", "--name-only", a)
