"""The checkpoint store: outside the user's repository, cost that follows what changed, bounded disk use."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from ghostline.apply import write_file
from ghostline.sandbox import checkpoints as ckpt
from ghostline.sandbox import run_command
from ghostline.sandbox.checkpoints import Checkpoint, CheckpointError, Checkpoints, expired
from tests.sandbox.conftest import git
from tests.sandbox.test_checkpoints import mutate, populate, repo, tree  # noqa: F401  (repo is a fixture)


def dot_git(d: Path) -> dict[str, tuple[int, str]]:
    """Every file under d/.git with its size and content hash: what 'nothing written into .git' compares."""
    out = {}
    for root, _dirs, files in os.walk(d / ".git"):
        for f in files:
            p = Path(root, f)
            out[str(p.relative_to(d))] = (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def store_git(cp: Checkpoints, *args: str) -> str:
    return git(cp.workspace, f"--git-dir={cp.store_path}", *args)


def local_objects(cp: Checkpoints) -> int:
    """Objects the store holds itself (loose + packed), not those it borrows from the repository."""
    counts = dict(line.split(": ") for line in store_git(cp, "count-objects", "-v").splitlines())
    return int(counts["count"]) + int(counts["in-pack"])


async def sh(d: Path, command: str) -> None:
    r = await run_command(command, cwd=d, workspace=d, mode="workspace-write", network=False, timeout=20,
                          level="none")
    assert r.exit_code == 0, r.output


SHELL_TURN = " && ".join([
    "printf 'more\\n' >> src/pkg/a.py", "printf '\\000\\001\\377' > blob.bin",  # modify, binary
    "rm keep.txt", "mv src/b.txt src/moved.txt",  # delete, rename
    "chmod -x run.sh", "chmod +x src/moved.txt",  # executable bits
    "ln -sfn keep.txt link", "ln -s src dirlink",  # symlinks: retargeted, new (to a directory)
    "mkdir -p made/deep", "printf x > made/deep/f",  # new directories
])


async def test_every_kind_of_change_is_undone_and_nothing_goes_into_dot_git(repo: Path) -> None:  # noqa: F811
    before_git, before = dot_git(repo), tree(repo)
    cp = Checkpoints(repo, session="s")
    cp.snapshot("s:1")
    write_file(repo / "src" / "pkg" / "a.py", "written by the file tool\n")  # turn 1: the write tool
    after_turn1 = tree(repo)
    cp.snapshot("s:2")
    await sh(repo, SHELL_TURN)  # turn 2: a shell command
    assert tree(repo) != after_turn1
    cp.undo("s", 1)
    assert tree(repo) == after_turn1
    cp.undo("s", 1)
    assert tree(repo) == before
    assert dot_git(repo) == before_git  # no object, ref, index or config change in the user's .git
    assert len(list(cp.store_path.glob("sharedindex.*"))) == 1  # the restores' throwaway indexes left none
    assert cp.store_path.is_relative_to(Path(os.environ["GHOSTLINE_DATA_DIR"]))


async def test_outside_git_the_same_kinds_of_change_are_undone(tmp_path: Path) -> None:
    d = tmp_path / "plain"
    d.mkdir()
    populate(d)
    before = tree(d)
    cp = Checkpoints(d, session="s")
    cp.snapshot("s:1")
    await sh(d, SHELL_TURN)
    cp.undo()
    assert tree(d) == before and not (d / ".git").exists()


def test_committed_files_are_borrowed_not_copied(tmp_path: Path) -> None:
    d = tmp_path / "r"
    for i in range(300):
        (d / f"dir{i % 10}").mkdir(parents=True, exist_ok=True)
        (d / f"dir{i % 10}" / f"f{i}.txt").write_text(f"file {i}\n" * 50)
    git(d, "init", "-q")
    git(d, "add", "-A")
    git(d, "commit", "-qm", "init")
    cp = Checkpoints(d, session="s")
    assert cp.snapshot("s:1")
    assert local_objects(cp) <= 3  # the commit (trees and blobs are the repository's)
    (d / "dir3" / "f3.txt").write_text("edited\n")
    n = local_objects(cp)
    cp.snapshot("s:2")
    assert local_objects(cp) - n <= 4  # one blob, its tree, the root tree, the commit


def test_untracked_tree_first_snapshot_packs_and_then_costs_what_changed(tmp_path: Path) -> None:
    d = tmp_path / "u"
    for i in range(3000):
        (d / f"d{i % 40}" / f"s{i % 3}").mkdir(parents=True, exist_ok=True)
        (d / f"d{i % 40}" / f"s{i % 3}" / f"f{i}.py").write_text(f"x = {i}\n" * (i % 20 + 1))
    git(d, "init", "-q")
    before = tree(d)
    cp = Checkpoints(d, session="s")
    cp.prime(wait=True)
    assert cp.snapshot("s:1")
    assert "count: 0" in git(d, "count-objects", "-v")  # not one object in the user's repository
    assert list((cp.store_path / "objects" / "pack").glob("*.pack"))  # one pack, not 3000 loose files
    (d / "d7" / "s1" / "f127.py").write_text("changed\n")
    (d / "d8" / "new.py").write_text("new\n")
    n = local_objects(cp)
    cp.snapshot("s:2")
    assert local_objects(cp) - n <= 8  # 2 blobs, the trees on their paths, the commit: not the tree
    (d / "d9" / "s0" / "f9.py").unlink()
    cp.undo(turns=2)
    assert tree(d) == before


def test_user_attributes_and_assume_unchanged_do_not_change_the_bytes(repo: Path) -> None:  # noqa: F811
    (repo / ".gitattributes").write_text("* text=auto eol=crlf\n*.bin filter=nosuch\n")
    git(repo, "config", "core.autocrlf", "true")
    git(repo, "config", "filter.nosuch.required", "true")
    (repo / "lf.txt").write_bytes(b"a\nb\n")
    (repo / "mixed.bin").write_bytes(b"a\r\nb\n\x00")
    git(repo, "update-index", "--assume-unchanged", "src/b.txt")
    before = tree(repo)
    cp = Checkpoints(repo, session="s")
    assert cp.snapshot("s:1")
    (repo / "lf.txt").write_bytes(b"changed\r\n")
    (repo / "mixed.bin").write_bytes(b"changed")
    (repo / "src" / "b.txt").write_bytes(b"assumed unchanged, but changed")
    cp.undo()
    assert tree(repo) == before


def test_a_sha256_repository_gets_a_sha256_store(tmp_path: Path) -> None:
    d = tmp_path / "r256"
    d.mkdir()
    git(d, "init", "-q", "--object-format=sha256")
    populate(d)
    git(d, "add", "src")
    git(d, "commit", "-qm", "init")
    before = tree(d)
    cp = Checkpoints(d, session="s")
    assert cp.snapshot("s:1")
    mutate(d)
    cp.undo()
    assert tree(d) == before


def test_workspace_in_a_subdirectory_covers_only_it(repo: Path) -> None:  # noqa: F811
    ws = repo / "src"
    cp = Checkpoints(ws, session="s")
    cp.snapshot("s:1")
    (ws / "pkg" / "a.py").write_text("changed in the workspace\n")
    (repo / "keep.txt").write_text("changed outside it\n")
    _, changed = cp.undo()
    assert changed == ["src/pkg/a.py"]
    assert (ws / "pkg" / "a.py").read_text() == "user edit, not committed\n"
    assert (repo / "keep.txt").read_text() == "changed outside it\n"


def test_concurrent_snapshots_wait_for_each_other(repo: Path) -> None:  # noqa: F811
    results: list[str | None] = []
    instances = [Checkpoints(repo, session=f"s{i}", prime=False) for i in range(3)]
    threads = [threading.Thread(target=lambda c=c: results.append(c.snapshot("x:1"))) for c in instances]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and all(results)


def _cp(session: str, age_days: float, n: int, now: float) -> Checkpoint:
    return Checkpoint(f"{session}{n}", session, f"{session}:{n}", int(now - age_days * 86400))


def test_retention_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ckpt, "KEEP_SESSIONS", 2)
    monkeypatch.setattr(ckpt, "KEEP_PER_SESSION", 3)
    now = time.time()
    cps = [_cp("new", 0.1, i, now) for i in range(5, 0, -1)]
    cps += [_cp("mid", 1, 1, now), _cp("old", 2, 1, now), _cp("ancient", 40, 1, now)]
    cps.sort(key=lambda c: c.time, reverse=True)
    dropped = {c.label for c in expired(cps, now, current=None)}
    assert dropped == {"new:2", "new:1", "old:1", "ancient:1"}
    # the current session is never dropped whole, however old or many the sessions
    assert "ancient:1" not in {c.label for c in expired(cps, now, current="ancient")}


def test_old_checkpoints_and_stale_stores_are_pruned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ckpt, "KEEP_PER_SESSION", 3)
    d = tmp_path / "w"
    d.mkdir()
    cp = Checkpoints(d, session="s")
    for i in range(5):
        (d / "f.txt").write_text(str(i))
        cp.snapshot(f"s:{i}")
    stale = cp.store_path.parent / "gone-0123456789abcdef.git"
    stale.mkdir()
    (stale / "ghostline.lock").touch()
    os.utime(stale / "ghostline.lock", (0, 0))
    assert [c.label for c in Checkpoints(d).list("s")] == ["s:4", "s:3", "s:2"]
    assert not stale.exists()


def random_file(p: Path, n: int) -> None:
    p.write_bytes(os.urandom(n))  # incompressible: the store grows by n


def test_size_cap_drops_oldest_checkpoints_first(tmp_path: Path) -> None:
    d = tmp_path / "w"
    d.mkdir()
    (d / "small.txt").write_text("small")
    cp = Checkpoints(d, session="s", max_bytes=350_000)
    assert cp.snapshot("s:1")
    random_file(d / "a.bin", 200_000)
    assert cp.snapshot("s:2")
    (d / "a.bin").unlink()
    random_file(d / "b.bin", 200_000)
    assert cp.snapshot("s:3")  # a.bin and b.bin together exceed the cap: s:1 and s:2 go
    assert [c.label for c in cp.list("s")] == ["s:3"]
    assert cp.notice is None


def test_a_snapshot_over_the_cap_turns_checkpoints_off_with_one_line(tmp_path: Path) -> None:
    d = tmp_path / "w"
    d.mkdir()
    (d / "small.txt").write_text("small")
    cp = Checkpoints(d, session="s", max_bytes=150_000)
    assert cp.snapshot("s:1")
    random_file(d / "big.bin", 300_000)
    assert cp.snapshot("s:2") is None
    assert cp.notice and "checkpoints are off" in cp.notice and "\n" not in cp.notice
    assert cp.list("s") == []
    with pytest.raises(CheckpointError, match="checkpoints are off"):
        cp.undo()
    assert cp.snapshot("s:3") is None  # no hashing of a tree that does not fit again in this run


def test_a_first_snapshot_over_the_cap_hashes_nothing(tmp_path: Path) -> None:
    d = tmp_path / "w"
    d.mkdir()
    random_file(d / "big.bin", 300_000)
    cp = Checkpoints(d, session="s", max_bytes=100 * 1024)
    assert cp.snapshot("s:1") is None
    assert local_objects(cp) == 0
    assert "untracked files" in (cp.notice or "") and "100 KB cap" in (cp.notice or "")
    (d / "big.bin").unlink()  # the next run finds a tree that fits: on again
    assert Checkpoints(d, session="s2", max_bytes=100_000).snapshot("s2:1")
    assert Checkpoints(d).notice is None


def test_the_prime_waits_for_what_it_is_told_to_go_after(tmp_path: Path) -> None:
    d = tmp_path / "r"
    d.mkdir()
    (d / "a.txt").write_text("a\n")
    git(d, "init", "-q")
    reached, release = threading.Event(), threading.Event()

    def after() -> None:  # as the SDK's import in the background, in a run
        reached.set()
        assert release.wait(30)

    cp = Checkpoints(d, session="s", prime_after=after)
    assert reached.wait(30)
    assert not (cp.store_path / "index").exists()  # nothing primed yet
    release.set()
    cp.prime(wait=True)
    assert (cp.store_path / "index").exists()
    assert cp.snapshot("s:1")


def test_a_checkpoint_commit_is_the_one_git_commit_tree_writes(repo: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
                                                                 ) -> None:
    """Store.commit writes the commit object itself: byte for byte what `git commit-tree -m` makes of the same
    tree, identity, time and message (so the same name), and one git's fsck accepts."""
    cp = Checkpoints(repo)
    assert cp.snapshot("s:1")
    with cp._using_store() as store:  # noqa: SLF001
        tree = store.git("write-tree").strip()
        when = 1_800_000_123
        monkeypatch.setattr(time, "time", lambda: when + 0.75)
        for message in ("s:2", "before restoring 0123456789ab", "élan: a label with ünïcode"):
            ours = store.commit(tree, message)
            offset = time.localtime(when).tm_gmtoff // 60
            date = f"@{when} {'-' if offset < 0 else '+'}{abs(offset) // 60:02d}{abs(offset) % 60:02d}"
            theirs = store.git("commit-tree", tree, "-m", message,
                               env={"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}).strip()
            assert ours == theirs, message
    store_git(cp, "fsck", "--strict", "--no-dangling")


def test_refs_written_as_files_are_git_s_refs(repo: Path) -> None:  # noqa: F811
    cp = Checkpoints(repo, session="s")
    first = cp.snapshot("s:1")
    store_git(cp, "pack-refs", "--all")  # the first ref now in packed-refs: a new one still shows beside it
    mutate(repo)
    second = cp.snapshot("s:2")
    assert first and second and first != second
    listed = store_git(cp, "for-each-ref", "--format=%(objectname)", "refs/ghostline/").split()
    assert sorted(listed) == sorted([first, second])
    assert [c.sha for c in cp.list("s")] == [second, first]
    cp.undo("s")  # deletes the undone checkpoint through git and sets the undo ref
    assert store_git(cp, "rev-parse", "--verify", "refs/ghostline/undo/last^{commit}").strip()
