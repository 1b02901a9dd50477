"""The adversarial suite: every case must be contained in workspace-write under each confining layer,
run through the real `agent sandbox run`; and the file tools' path guard must refuse the same tricks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ghostline.dirs import config_dir as user_config_dir
from ghostline.sandbox import PathDenied, resolve_path
from tests.sandbox.adversarial import CASES, run_case, unsafe_reason
from tests.sandbox.conftest import confining_levels

pytestmark = pytest.mark.timeout(60)


def test_suite_is_big_enough() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("level", confining_levels())
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_contained(case, level: str, tmp_path: Path) -> None:
    why = unsafe_reason(case)
    if why:
        pytest.skip(why)
    escaped, out = run_case(case, level, tmp_path)
    assert not escaped, f"{case.name} escaped under {level}: rc={out.rc} output={out.output[-500:]!r}"


# --- the same tricks against the file tools' path guard ---------------------------------------------------
@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".bashrc").write_text("# rc\n")
    monkeypatch.setenv("HOME", str(home))
    w = tmp_path / "ws"
    (w / ".git" / "hooks").mkdir(parents=True)
    (w / ".git" / "config").write_text("[core]\n")
    (w / ".ghostline").mkdir()
    (w / "sub").mkdir()
    (tmp_path / "ws-evil").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("v")
    (w / "planted").symlink_to(outside)
    (w / "dangling").symlink_to(outside / "nothing-yet")
    (w / "sub" / "up").symlink_to("../..")
    os.link(outside / "victim", w / "hardlink")
    return w


GUARD_WRITES = [
    "~/.bashrc", "~/.ssh/authorized_keys", "/etc/passwd", "../outside/victim", "sub/../../outside/victim",
    "/proc/self/root/etc/passwd", "/proc/self/cwd/../outside/victim", "planted/victim", "planted/new",
    "dangling", "sub/up/outside/victim", "hardlink", "../ws-evil/f", "{ws}-evil/f", ".git/hooks/pre-commit",
    ".git/config", ".git", "sub/../.git/HEAD", ".GIT/config", ".ghostline/config.toml", "{cfg}/config.toml",
    "/dev/tcp/127.0.0.1/80", "/tmp/x",
]


@pytest.mark.parametrize("path", GUARD_WRITES)
def test_path_guard_refuses_writes(ws: Path, path: str) -> None:
    p = path.replace("{ws}", str(ws)).replace("{cfg}", str(user_config_dir()))
    if p.startswith(".GIT") and not os.path.exists(ws / ".GIT"):
        (ws / ".GIT").symlink_to(".git")
    with pytest.raises(PathDenied):
        resolve_path(p, cwd=ws, workspace=ws, write=True, mode="workspace-write")


@pytest.mark.parametrize("path", ["~/.ssh/id_rsa", "/proc/1/environ", "/proc/self/environ", "../outside/victim",
                                  "planted/victim", "/proc/self/root/etc/shadow"])
def test_path_guard_refuses_reads_outside(ws: Path, path: str) -> None:
    with pytest.raises(PathDenied):
        resolve_path(path, cwd=ws, workspace=ws, write=False, mode="workspace-write")


def test_path_guard_through_the_tools(ws: Path) -> None:
    tools_paths = pytest.importorskip("ghostline.tools.paths")
    from ghostline.tools.base import ToolContext, ToolError

    ctx = ToolContext(workspace=ws, cwd=ws)
    with pytest.raises(ToolError):
        tools_paths.resolve(ctx, "planted/victim", write=True)
    assert tools_paths.resolve(ctx, "sub/new.txt", write=True) == Path(os.path.realpath(ws)) / "sub/new.txt"
