from __future__ import annotations

import os
from pathlib import Path

import pytest

from ghostline.dirs import config_dir as user_config_dir
from ghostline.sandbox import PathDenied, resolve_path


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    w = tmp_path / "ws"
    (w / "src").mkdir(parents=True)
    (w / "src" / "a.py").write_text("x = 1\n")
    (w / ".git" / "hooks").mkdir(parents=True)
    (w / ".git" / "config").write_text("[core]\n")
    (tmp_path / "ws-evil").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("s")
    return w


def ok(path: str, ws: Path, *, write: bool = True, mode: str = "workspace-write", cwd: Path | None = None) -> Path:
    return resolve_path(path, cwd=cwd or ws, workspace=ws, write=write, mode=mode)


def test_inside_paths_resolve_to_real_paths(ws: Path) -> None:
    assert ok("src/a.py", ws) == Path(os.path.realpath(ws / "src/a.py"))
    assert ok("src/new/file.txt", ws) == Path(os.path.realpath(ws)) / "src/new/file.txt"
    assert ok("../src/a.py", ws, cwd=ws / "src") == Path(os.path.realpath(ws / "src/a.py"))
    assert ok(str(ws / "src" / ".." / "src" / "a.py"), ws).name == "a.py"


def test_read_only_mode_refuses_writes_but_reads(ws: Path) -> None:
    with pytest.raises(PathDenied, match="read-only"):
        ok("src/a.py", ws, mode="read-only")
    assert ok("src/a.py", ws, write=False, mode="read-only").name == "a.py"


def test_full_access_allows_outside(ws: Path) -> None:
    target = ws.parent / "outside" / "secret.txt"
    assert ok(str(target), ws, mode="full-access") == Path(os.path.realpath(target))


def test_hard_link_write_refused_read_allowed(ws: Path) -> None:
    os.link(ws.parent / "outside" / "secret.txt", ws / "hl.txt")
    with pytest.raises(PathDenied, match="hard link"):
        ok("hl.txt", ws)
    assert ok("hl.txt", ws, write=False).name == "hl.txt"


def test_unknown_mode_and_bad_input(ws: Path) -> None:
    with pytest.raises(PathDenied):
        ok("a", ws, mode="yolo")
    with pytest.raises(PathDenied):
        ok("", ws)
    with pytest.raises(PathDenied):
        ok("a\x00b", ws)


def test_symlink_loop_is_refused_cleanly(ws: Path) -> None:
    (ws / "loop").symlink_to(ws / "loop")
    with pytest.raises(PathDenied):
        ok("loop/x", ws)


def test_user_config_dir_protected_even_in_full_access(ws: Path) -> None:
    cfg = user_config_dir()
    cfg.mkdir(parents=True)
    with pytest.raises(PathDenied, match="protected"):
        ok(str(cfg / "config.toml"), ws, mode="full-access")
