"""The first snapshot's fast path (sandbox/first_add.py, fast_pack.py, git_index.py): the same objects, index
entries and tree as `git add -A`, checked against git itself."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ghostline.sandbox import fast_pack, first_add
from ghostline.sandbox.checkpoint_store import STORE_CONFIG
from ghostline.sandbox.checkpoints import BULK_MIN_FILES, Checkpoints
from ghostline.sandbox.fast_pack import OVER_LIMIT, OverLimit, pack_files, stored_parts
from ghostline.sandbox.git_index import (
    IndexFormatError,
    in_index_order,
    read_entries,
    read_index,
    tree_objects,
    write_index,
)
from tests.sandbox.conftest import git


def odd_files(d: Path) -> None:
    """Files of every kind git stores: text, binary, empty, executable, a symbolic link, one over a stored
    block (64 KiB), a name with spaces and non-ASCII, one nested deep."""
    (d / "deep" / "er" / "est").mkdir(parents=True, exist_ok=True)
    (d / "text.txt").write_text("hello\n")
    (d / "same.txt").write_text("hello\n")  # the same blob twice
    (d / "binary.bin").write_bytes(bytes(range(256)) * 3)
    (d / "empty").write_bytes(b"")
    (d / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (d / "run.sh").chmod(0o755)
    (d / "link").symlink_to("text.txt")
    (d / "big.dat").write_bytes(os.urandom(200_000))
    (d / "a name é.txt").write_text("spaces and accents\n")
    (d / "deep" / "er" / "est" / "f.py").write_text("x = 1\n")


def test_stored_blocks_are_what_zlib_reads():
    import zlib

    for n in (0, 1, 65534, 65535, 65536, 200_000):
        data = os.urandom(n)
        assert zlib.decompress(b"".join(stored_parts(data))) == data
    assert b"".join(stored_parts(b"abc")) == zlib.compress(b"abc", 0)


def test_the_packer_s_checksums_are_zlib_s():
    """CRC-32 and Adler-32 come from zlib-ng where it is installed: the same sums as zlib's."""
    import zlib

    for n in (0, 1, 7, 4096, 65536, 1_000_003):
        data = os.urandom(n)
        assert fast_pack.crc32(data) == zlib.crc32(data) and fast_pack.adler32(data) == zlib.adler32(data)
        assert fast_pack.crc32(data, 12345) == zlib.crc32(data, 12345)


def test_packed_objects_are_git_s_own(tmp_path: Path):
    work, store = tmp_path / "w", tmp_path / "s.git"
    work.mkdir()
    odd_files(work)
    os.mkfifo(work / "fifo")  # not a file: left to git
    git(tmp_path, "init", "-q", "--bare", str(store))
    paths = ["text.txt", "same.txt", "binary.bin", "empty", "run.sh", "link", "big.dat", "a name é.txt",
             "deep/er/est/f.py", "fifo", "gone.txt", "deep"]
    cwd = os.getcwd()
    os.chdir(work)
    try:
        entries = read_entries(b"".join(pack_files(paths, str(store / "objects" / "pack"), 2**30)))
    finally:
        os.chdir(cwd)
    assert [e.path.decode() for e in entries] == paths[:9]  # the fifo, a vanished file, a directory: left out
    for e in entries:
        path = e.path.decode()
        want = (os.readlink(work / path).encode() if e.mode == 0o120000 else (work / path).read_bytes())
        expected = subprocess.run(["git", "hash-object", "--stdin"], input=want, capture_output=True,
                                  check=True).stdout.decode().strip()
        assert e.oid.hex() == expected, path
        st = os.lstat(work / path)
        assert e.stat[8:] == (st.st_gid, st.st_size) and e.stat[2:4] == divmod(st.st_mtime_ns, 10**9)
    assert {oct(e.mode) for e in entries if e.path in (b"run.sh", b"link", b"text.txt")} == {
        "0o100755", "0o120000", "0o100644"}
    git(tmp_path, f"--git-dir={store}", "fsck", "--strict")  # the pack and its index check out
    [idx] = (store / "objects" / "pack").glob("*.idx")
    git(tmp_path, f"--git-dir={store}", "verify-pack", str(idx))
    listed = git(tmp_path, f"--git-dir={store}", "cat-file", "--batch-all-objects", "--batch-check").split()[::3]
    assert len(listed) == len(paths)  # one object a path: the pack's count is fixed before anything is read
    fillers = {oid for oid in listed if oid not in {e.oid.hex() for e in entries}}
    assert len(fillers) == 4  # the second "hello", the fifo, the vanished file, the directory
    for oid in fillers:
        assert git(tmp_path, f"--git-dir={store}", "cat-file", "-p", oid).startswith("ghostline pack filler ")


def test_a_file_over_the_limit_is_not_read(tmp_path: Path, monkeypatch):
    (tmp_path / "small").write_bytes(b"x" * 10)
    (tmp_path / "big").write_bytes(b"y" * 100)
    monkeypatch.chdir(tmp_path)
    read = []
    real = fast_pack._read_all
    monkeypatch.setattr(fast_pack, "_read_all", lambda fd, size: read.append(size) or real(fd, size))
    with pytest.raises(OverLimit):
        pack_files(["small", "big"], str(tmp_path), 50)
    assert read == [10]  # the big one's size was enough to stop
    assert not list(tmp_path.glob("pack-*"))


def test_trees_are_the_ones_git_writes(tmp_path: Path):
    """tree_objects over an index: the same trees as `git write-tree`, names that sort around '/' included."""
    odd_files(tmp_path)
    for name in ("a-b", "a.b", "a0", "a/b", "a/c/d", "ab/x", "a b/y", "z"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    git(tmp_path, "init", "-q")
    git(tmp_path / "deep", "init", "-q")  # a gitlink among the entries
    git(tmp_path / "deep", "commit", "-q", "--allow-empty", "-m", "x")
    git(tmp_path, "add", "-A")
    trees = tree_objects(in_index_order(read_index(str(tmp_path / ".git" / "index"))))
    ours = [hashlib.sha1(b"tree %d\0%s" % (len(t), t)).hexdigest() for t in trees]
    root = git(tmp_path, "write-tree").strip()
    assert ours[-1] == root
    listed = git(tmp_path, "ls-tree", "-r", "-t", "--format=%(objecttype) %(objectname)", root).splitlines()
    below = [line.split()[-1] for line in listed if line.startswith("tree ")]
    assert len(below) == 4 and sorted(ours[:-1]) == sorted(below)


@pytest.mark.parametrize("version", ["2", "3", "4"])
def test_the_index_reads_and_writes_as_git_does(tmp_path: Path, version: str):
    odd_files(tmp_path)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    if version == "3":
        (tmp_path / "intent.txt").write_text("later\n")
        git(tmp_path, "add", "-N", "intent.txt")  # intent-to-add: an extended flag, so version 3
    git(tmp_path, "update-index", f"--index-version={version}")
    index = tmp_path / ".git" / "index"
    before = git(tmp_path, "ls-files", "--debug", "-s")
    entries = read_index(str(index))
    write_index(str(index), in_index_order(list(reversed(entries))))  # any order in: git's order out
    assert git(tmp_path, "ls-files", "--debug", "-s") == before
    git(tmp_path, "status", "--porcelain")  # git reads it without complaint
    # every stat kept: nothing looks changed (an intent-to-add entry always does)
    assert git(tmp_path, "diff-files", "--name-only") == ("intent.txt\n" if version == "3" else "")


def test_a_split_index_is_left_to_git(tmp_path: Path):
    odd_files(tmp_path)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "update-index", "--split-index")
    with pytest.raises(IndexFormatError):
        read_index(str(tmp_path / ".git" / "index"))


def many_new_files(d: Path, n: int = BULK_MIN_FILES + 40) -> None:
    for i in range(n):
        (d / "gen" / f"d{i % 9}").mkdir(parents=True, exist_ok=True)
        (d / "gen" / f"d{i % 9}" / f"m{i}.py").write_text(f"def f{i}(x):\n    return x + {i}\n")


def snapshot_tree(cp: Checkpoints) -> str:
    return git(cp.workspace, f"--git-dir={cp.store_path}", "for-each-ref", "--format=%(tree)").strip()


def git_add_all_tree(d: Path, tmp_path: Path) -> str:
    """What `git add -A` makes of the work tree, in an index of its own (the repository's stays as it is)."""
    env = {**os.environ, "GIT_INDEX_FILE": str(tmp_path / "reference-index")}
    subprocess.run(["git", "add", "-A"], cwd=d, env=env, check=True, capture_output=True)
    return subprocess.run(["git", "write-tree"], cwd=d, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_a_first_snapshot_of_many_new_files_is_what_git_add_makes(tmp_path: Path, monkeypatch):
    d = tmp_path / "r"
    d.mkdir()
    (d / "tracked.txt").write_text("one\n")
    (d / "gone.txt").write_text("two\n")
    (d / ".gitignore").write_text("*.log\n")
    git(d, "init", "-q")
    git(d, "add", "-A")
    git(d, "commit", "-qm", "init")
    (d / "tracked.txt").write_text("edited\n")
    (d / "gone.txt").unlink()
    (d / "ignored.log").write_text("never stored\n")
    odd_files(d)
    many_new_files(d)
    git(d / "deep", "init", "-q")  # a repository inside: git's own add records it (a gitlink)
    (d / "deep" / "inner.txt").write_text("inner\n")
    git(d / "deep", "add", "-A")
    git(d / "deep", "commit", "-qm", "inner")
    used = []
    real = first_add.add_new_files
    monkeypatch.setattr("ghostline.sandbox.checkpoints.add_new_files",
                        lambda *a: used.append(real(*a)) or used[-1])
    cp = Checkpoints(d, session="s")
    assert cp.snapshot("s:1")
    assert len(used) == 1 and used[0] is not None  # the fast path ran
    assert snapshot_tree(cp) == git_add_all_tree(d, tmp_path)
    assert list((cp.store_path / "objects" / "pack").glob("pack-*.pack"))  # the new blobs and the trees, packed
    loose = [p.parent.name + p.name for p in (cp.store_path / "objects").glob("[0-9a-f][0-9a-f]/*")]
    kinds = {oid: git(d, f"--git-dir={cp.store_path}", "cat-file", "-t", oid).strip() for oid in loose}
    # the edited tracked file, the checkpoint, and the root's tree: the nested repository is git's own to add,
    # so the root differs from the tree packed for it; every other tree was found packed
    assert sorted(kinds.values()) == ["blob", "commit", "tree"]
    assert [oid for oid, kind in kinds.items() if kind == "tree"] == [snapshot_tree(cp)]


def test_the_pack_s_fillers_go_at_the_store_s_next_gc(tmp_path: Path):
    d = tmp_path / "r"
    d.mkdir()
    many_new_files(d)
    for i in range(5):
        (d / f"empty{i}.py").write_bytes(b"")  # one blob, four fillers
    git(d, "init", "-q")
    cp = Checkpoints(d, session="s")
    assert cp.snapshot("s:1")

    def objects() -> dict[str, bytes]:
        """Each object's name and content."""
        listed = subprocess.run(["git", f"--git-dir={cp.store_path}", "cat-file", "--batch-all-objects",
                                 "--batch=%(objectname) %(objectsize)"], capture_output=True, check=True).stdout
        out, pos = {}, 0
        while pos < len(listed):
            head, _, rest = listed[pos:pos + 100].partition(b"\n")
            name, size = head.split()
            start = pos + len(head) + 1
            out[name.decode()] = listed[start:start + int(size)]
            pos = start + int(size) + 1
        return out

    before = objects()
    fillers = {o for o, content in before.items() if content.startswith(b"ghostline pack filler ")}
    assert fillers  # the copies of the empty blob (each packer writes it once)
    # an automatic gc (here: for too many packs), with the store's settings
    config = [x for k, v in {**STORE_CONFIG, "gc.auto": "2000", "gc.autoPackLimit": "1"}.items()
              for x in ("-c", f"{k}={v}")]
    subprocess.run(["git", f"--git-dir={cp.store_path}", *config, "gc", "--auto", "--quiet"], check=True,
                   env={**os.environ, "GIT_WORK_TREE": str(d)})
    assert set(objects()) == set(before) - fillers  # dropped, not left loose for two weeks
    git(d, f"--git-dir={cp.store_path}", "fsck", "--strict", "--no-dangling")


def test_a_pack_left_half_written_goes_at_the_store_s_gc(tmp_path: Path):
    """A packer stopped mid-way (terminated when the program ends) leaves its temporary pack under git's own
    prefix for one, which the store's gc removes."""
    d = tmp_path / "r"
    d.mkdir()
    (d / "f.txt").write_text("x\n")
    git(d, "init", "-q")
    cp = Checkpoints(d, session="s")
    assert cp.snapshot("s:1")
    pack_dir = cp.store_path / "objects" / "pack"
    writer = fast_pack.PackWriter(str(pack_dir), 2)
    writer.add(fast_pack.BLOB, b"half", fast_pack.object_id(fast_pack.BLOB, b"half"))
    os.close(writer.fd)  # as if killed: neither finished nor abandoned
    assert [p.name.startswith("tmp_pack_") for p in pack_dir.iterdir() if p.name.startswith("tmp")] == [True]
    with cp._using_store() as store:  # noqa: SLF001
        store.gc()
    assert not [p for p in pack_dir.iterdir() if p.name.startswith("tmp")]


def test_the_entries_written_are_clean_by_stat(tmp_path: Path):
    """git finds nothing to hash again: each new file's stat in the index matches the file."""
    d = tmp_path / "r"
    d.mkdir()
    many_new_files(d)
    git(d, "init", "-q")
    cp = Checkpoints(d, prime=False)
    with cp._using_store() as store:  # noqa: SLF001 - the step inside a snapshot, on its own
        store.seed_index()
        pathspec = cp._pathspec(store)  # noqa: SLF001
        assert first_add.add_new_files(store, first_add.untracked_paths(store, pathspec), pathspec, 2**30)
        assert store.git("diff-files", "--name-only") == ""
        assert len(store.git("ls-files").split()) == BULK_MIN_FILES + 40


def test_an_index_it_cannot_read_leaves_the_first_snapshot_to_git(tmp_path: Path, monkeypatch):
    d = tmp_path / "r"
    d.mkdir()
    many_new_files(d)
    git(d, "init", "-q")

    def unreadable(path: str):
        raise IndexFormatError("index extension link")

    monkeypatch.setattr(first_add, "read_index", unreadable)
    cp = Checkpoints(d, session="s")
    assert cp.snapshot("s:1")
    assert snapshot_tree(cp) == git_add_all_tree(d, tmp_path)


def test_the_packer_runs_as_its_own_process_from_any_directory(tmp_path: Path):
    """`python -P -m ghostline.sandbox.fast_pack`: a work tree with a `ghostline` folder does not shadow it."""
    (tmp_path / "ghostline").mkdir()
    (tmp_path / "ghostline" / "__init__.py").write_text("raise SystemExit('the work tree was imported')\n")
    (tmp_path / "f.txt").write_text("x\n")
    git(tmp_path, "init", "-q", "--bare", str(tmp_path / "s.git"))
    packer = [sys.executable, "-P", "-m", "ghostline.sandbox.fast_pack", str(tmp_path / "s.git" / "objects" / "pack")]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.run([*packer, "100"], cwd=tmp_path, input=b"f.txt", capture_output=True, env=env)
    assert proc.returncode == 0, proc.stderr
    [entry] = read_entries(proc.stdout)
    assert entry.path == b"f.txt" and entry.oid.hex() == git(tmp_path, "hash-object", "f.txt").strip()
    over = subprocess.run([*packer, "1"], cwd=tmp_path, input=b"f.txt", capture_output=True, env=env)
    assert over.returncode == OVER_LIMIT and over.stdout == b""  # 2 bytes > 1: nothing read, nothing written
    assert len(list((tmp_path / "s.git" / "objects" / "pack").glob("*.pack"))) == 1


def test_many_new_files_over_the_cap_are_not_packed_and_turn_checkpoints_off(tmp_path: Path):
    d = tmp_path / "r"
    d.mkdir()
    many_new_files(d)
    git(d, "init", "-q")
    cp = Checkpoints(d, session="s", max_bytes=2000)
    assert cp.snapshot("s:1") is None
    assert "a snapshot would store" in (cp.notice or "") and "of untracked files" in (cp.notice or "")
    assert not list((cp.store_path / "objects" / "pack").glob("*.pack"))


def test_over_the_cap_the_store_compresses_before_it_drops_a_checkpoint(tmp_path: Path):
    """The first snapshot's pack is stored uncompressed: when a later snapshot takes the store over the cap,
    compressing it comes first, and another session's checkpoint survives."""
    d = tmp_path / "r"
    d.mkdir()
    many_new_files(d)
    for i in range(40):  # compressible: ~800 KB stored, a few KB deflated
        (d / "gen" / f"text{i}.txt").write_text(f"line {i} of text that repeats\n" * 700)
    git(d, "init", "-q")
    first = Checkpoints(d, session="a", max_bytes=900_000)
    assert first.snapshot("a:1")
    (d / "noise.bin").write_bytes(os.urandom(400_000))  # not compressible: stored plus this is over the cap
    second = Checkpoints(d, session="b", max_bytes=900_000)
    assert second.snapshot("b:1")
    assert [s for s, _ in second.sessions()] == ["b", "a"]  # a's checkpoint kept
    assert second.notice is None


def test_a_process_working_on_the_store_is_stopped_when_the_program_ends(monkeypatch):
    """A first snapshot's packers, like the store's git processes, do not outlive the program."""
    from ghostline.sandbox import checkpoint_store

    started = threading.Event()

    class Running(set):
        def add(self, p):
            super().add(p)
            started.set()

    monkeypatch.setattr(checkpoint_store, "_running", Running())
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(checkpoint_store.run_for_store(
        [sys.executable, "-c", "import sys; sys.stdin.read(); import time; time.sleep(60)"], cwd=Path.cwd())[0]))
    worker.start()
    assert started.wait(30)
    checkpoint_store._stop_running()  # what atexit runs
    worker.join(30)
    assert result == [-15]  # terminated, not left to sleep
