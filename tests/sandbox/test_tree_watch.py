"""The tree watch (inotify): what changed since the last look, and "unknown" where events cannot tell."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ghostline.sandbox import run_command
from ghostline.sandbox.tree_watch import TreeWatch

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="inotify is Linux's")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    d = tmp_path / "ws"
    (d / "a" / "b").mkdir(parents=True)
    (d / "ignored" / "deep").mkdir(parents=True)
    (d / "a" / "one.py").write_text("1\n")
    (d / "a" / "b" / "two.py").write_text("2\n")
    (d / "top.txt").write_text("top\n")
    (d / ".git").mkdir()
    return d


def start(d: Path, skip_new: frozenset[str] = frozenset({"node_modules"})) -> TreeWatch:
    watch = TreeWatch.start(d, lambda rel, new: rel == "ignored" or (new and rel.rpartition("/")[2] in skip_new))
    assert watch is not None
    return watch


def test_each_kind_of_file_change_is_reported_once(tree: Path) -> None:
    watch = start(tree)
    assert watch.take() == set()
    (tree / "a" / "one.py").write_text("changed\n")
    (tree / "a" / "b" / "two.py").chmod(0o755)
    (tree / "top.txt").unlink()
    (tree / "new.txt").write_text("new\n")
    (tree / "a" / "b" / "two.py").rename(tree / "a" / "moved.py")
    (tree / "link").symlink_to("a/one.py")
    assert watch.take() == {"a/one.py", "a/b/two.py", "top.txt", "new.txt", "a/moved.py", "link"}
    assert watch.take() == set()


def test_a_new_directory_is_one_path_and_is_watched_from_then_on(tree: Path) -> None:
    watch = start(tree)
    (tree / "n" / "m").mkdir(parents=True)
    (tree / "n" / "m" / "f.py").write_text("written before the directory had a watch\n")
    assert watch.take() == {"n"}  # the caller scans it
    (tree / "n" / "m" / "g.py").write_text("g\n")
    assert watch.take() == {"n/m/g.py"}


def test_a_directory_removed_or_moved_away_is_one_path(tree: Path, tmp_path: Path) -> None:
    watch = start(tree)
    shutil.rmtree(tree / "a" / "b")
    assert watch.take() == {"a/b", "a/b/two.py"}
    (tree / "a" / "c").mkdir()
    (tree / "a" / "c" / "x").write_text("x")
    watch.take()
    (tree / "a" / "c").rename(tmp_path / "outside")
    assert watch.take() == {"a/c"}
    (tmp_path / "outside" / "x").write_text("changed where the tree no longer is\n")
    assert watch.take() == set()


def test_a_directory_moved_within_the_tree_is_watched_under_its_new_name(tree: Path) -> None:
    watch = start(tree)
    (tree / "a" / "b").rename(tree / "c")
    assert watch.take() == {"a/b", "c"}
    (tree / "c" / "two.py").write_text("edited after the move\n")
    assert watch.take() == {"c/two.py"}


def test_skipped_directories_report_nothing(tree: Path) -> None:
    watch = start(tree)
    (tree / "ignored" / "deep" / "x.log").write_text("x")
    (tree / ".git" / "index").write_text("git's own")
    (tree / "node_modules" / "pkg").mkdir(parents=True)  # new, and named as the skip rule says
    watch.take()
    (tree / "node_modules" / "pkg" / "index.js").write_text("x")
    assert watch.take() == set()


def test_lost_events_say_unknown_then_the_watch_is_whole_again(tree: Path) -> None:
    watch = start(tree)
    (tree / "made").mkdir()  # created while events are being dropped: it must still get a watch
    a, b = tree / "a" / "one.py", tree / "top.txt"
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    for i in range(limit + 10):  # alternating, so the kernel cannot merge them: the queue overflows
        os.utime(a if i % 2 else b, (i, i))
    assert watch.take() is None
    (tree / "made" / "f").write_text("f")
    assert watch.take() == {"made/f"}


def test_the_root_going_away_makes_it_unknown_for_good(tree: Path, tmp_path: Path) -> None:
    watch = start(tree)
    tree.rename(tmp_path / "elsewhere")
    assert watch.take() is None
    (tmp_path / "elsewhere" / "top.txt").write_text("x")
    assert watch.take() is None


def test_too_many_directories_means_no_watch(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ghostline.sandbox import tree_watch

    monkeypatch.setattr(tree_watch, "MAX_DIRS", 2)
    assert TreeWatch.start(tree) is None


def test_running_out_of_watches_later_makes_it_unknown_for_good(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ghostline.sandbox import tree_watch

    watch = start(tree)
    monkeypatch.setattr(tree_watch, "MAX_DIRS", watch.watched_dirs + 1)
    (tree / "new" / "a" / "b").mkdir(parents=True)  # three directories more than the watch may hold
    assert watch.take() is None
    (tree / "top.txt").write_text("x")
    assert watch.take() is None


@pytest.mark.parametrize("level", ["bubblewrap", "landlock"])
async def test_changes_made_inside_the_sandbox_are_seen(tree: Path, level: str) -> None:
    from ghostline.sandbox.runner import probe_bubblewrap, probe_landlock

    if not (probe_bubblewrap() if level == "bubblewrap" else probe_landlock())[0]:
        pytest.skip(f"{level} not available here")
    watch = start(tree)
    r = await run_command("printf x >> a/one.py && rm top.txt && mkdir -p out/deep && touch out/deep/f",
                          cwd=tree, workspace=tree, mode="workspace-write", network=False, timeout=20, level=level)
    assert r.exit_code == 0, r.output
    # (the runner holds a .ghostline directory in place for the command's duration, so it cannot make one)
    assert watch.take() - {".ghostline"} == {"a/one.py", "top.txt", "out"}


def test_files_that_came_and_went_can_be_left_out(tree: Path) -> None:
    watch = start(tree)
    (tree / "a" / ".one.py.tmp").write_text("an atomic write's temporary file\n")
    (tree / "a" / ".one.py.tmp").rename(tree / "a" / "one.py")
    (tree / "scratch").write_text("removed before the next look\n")
    (tree / "scratch").unlink()
    (tree / "tmpdir" / "sub").mkdir(parents=True)
    shutil.rmtree(tree / "tmpdir")
    assert watch.take(transient=False) == {"a/one.py"}
    (tree / "scratch").write_text("again\n")
    (tree / "scratch").unlink()
    assert watch.take() == {"scratch"}


def test_a_file_replaced_by_a_rename_then_removed_is_a_change(tree: Path) -> None:
    watch = start(tree)
    (tree / "a" / ".one.py.tmp").write_text("an atomic write\n")
    (tree / "a" / ".one.py.tmp").rename(tree / "a" / "one.py")  # replaces the file that was there
    (tree / "a" / "one.py").unlink()
    assert watch.take(transient=False) == {"a/one.py"}  # it was there at the last look, and is gone now


def test_the_last_close_of_the_watch_happens_after_the_process_exits(tree: Path) -> None:
    """The process exits holding its watch; a helper holding a copy closes it once the process is gone, so the
    kernel's slow freeing of the watches is off the exit."""
    code = textwrap.dedent(f"""
        import os, sys
        from pathlib import Path
        from ghostline.sandbox import tree_watch
        watch = tree_watch.TreeWatch.start(Path({str(tree)!r}))
        tree_watch.close_after_exit()  # what atexit runs (agent/lifecycle.py runs the exit functions)
        helper = tree_watch._last_closer[0]
        print(helper.pid, os.readlink(f"/proc/{{helper.pid}}/fd/{{watch.fileno()}}"), flush=True)
        os._exit(0)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert proc.returncode == 0, proc.stderr
    pid, target = proc.stdout.split()
    assert target == "anon_inode:inotify"  # the helper holds the watch
    try:
        helper = os.pidfd_open(int(pid))
    except ProcessLookupError:
        return  # already gone: it saw the end of its input and exited
    try:
        assert select.select([helper], [], [], 30)[0], "the helper outlived the process by 30 s"
    finally:
        os.close(helper)
