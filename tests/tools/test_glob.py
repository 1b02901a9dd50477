from __future__ import annotations

import os
from pathlib import Path

import pytest

from ghostline.tools.base import ToolContext
from ghostline.tools.glob_tool import MAX_FILES, GlobTool
from ghostline.tools.globs import expand_braces, gitignore_style_match, glob_match
from tests.tools.conftest import call

GLOB = GlobTool()


def touch(ws: Path, rel: str, mtime: int) -> None:
    p = ws / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(rel)
    os.utime(p, (mtime, mtime))


@pytest.fixture
def tree(ws: Path) -> Path:
    (ws / ".gitignore").write_text("dist/\n*.pyc\n")
    touch(ws, "a.py", 1_000)
    touch(ws, "src/b.py", 3_000)
    touch(ws, "src/pkg/c.py", 2_000)
    touch(ws, "src/pkg/c.pyc", 9_000)
    touch(ws, "src/pkg/d.ts", 4_000)
    touch(ws, "dist/e.py", 9_000)
    touch(ws, ".git/f.py", 9_000)
    touch(ws, ".github/ci.py", 500)
    return ws


async def test_newest_first_and_gitignore_respected(tree: Path, ctx: ToolContext) -> None:
    res = await call(GLOB, ctx, pattern="**/*.py")
    assert res.content.splitlines() == ["src/b.py", "src/pkg/c.py", "a.py", ".github/ci.py"]
    assert res.meta == {"count": 4, "truncated": False}


async def test_mtime_order_follows_changes(tree: Path, ctx: ToolContext) -> None:
    os.utime(tree / "a.py", (50_000, 50_000))
    res = await call(GLOB, ctx, pattern="**/*.py")
    assert res.content.splitlines()[0] == "a.py"


async def test_star_stays_in_one_directory(tree: Path, ctx: ToolContext) -> None:
    assert (await call(GLOB, ctx, pattern="*.py")).content == "a.py"
    assert (await call(GLOB, ctx, pattern="src/*")).content == "src/b.py"
    assert (await call(GLOB, ctx, pattern="src/pkg/")).content.splitlines() == ["src/pkg/d.ts", "src/pkg/c.py"]
    res = await call(GLOB, ctx, pattern="src/**/*.{py,ts}")
    assert res.content.splitlines() == ["src/pkg/d.ts", "src/b.py", "src/pkg/c.py"]


async def test_path_argument_and_relative_output(tree: Path) -> None:
    ctx = ToolContext(workspace=tree, cwd=tree / "src")
    res = await call(GLOB, ctx, pattern="**/*.py")
    assert res.content.splitlines() == ["b.py", "pkg/c.py"]
    res = await call(GLOB, ctx, pattern="*.ts", path="pkg")
    assert res.content == "pkg/d.ts"
    res = await call(GLOB, ctx, pattern="*.py", path="..")
    assert res.content == "../a.py"


async def test_no_match_escape_and_bad_base(tree: Path, ctx: ToolContext) -> None:
    res = await call(GLOB, ctx, pattern="**/*.rs")
    assert not res.is_error and res.content.startswith("No files match")
    res = await call(GLOB, ctx, pattern="*", path="..")
    assert res.is_error and "outside the workspace" in res.content
    res = await call(GLOB, ctx, pattern="../*")
    assert res.is_error and "outside the workspace" in res.content
    res = await call(GLOB, ctx, pattern="*", path="a.py")
    assert res.is_error and "not a directory" in res.content


async def test_cap_with_a_note(ws: Path, ctx: ToolContext) -> None:
    for i in range(MAX_FILES + 7):
        touch(ws, f"many/f{i:03d}.txt", 1_000 + i)
    res = await call(GLOB, ctx, pattern="many/*.txt")
    lines = res.content.splitlines()
    assert len(lines) == MAX_FILES + 1
    assert lines[0] == f"many/f{MAX_FILES + 6:03d}.txt"  # newest first
    assert lines[-1].startswith(f"[7 more files not shown ({MAX_FILES + 7} in all)")
    assert res.meta["truncated"] is True


def test_glob_translation() -> None:
    assert expand_braces("a.{py,{ts,tsx}}") == ["a.py", "a.ts", "a.tsx"]
    assert glob_match("**/*.py", "x.py") and glob_match("**/*.py", "a/b/x.py")
    assert not glob_match("*.py", "a/x.py")
    assert glob_match("src/**", "src/a/b") and not glob_match("src/**", "srcx/a")
    assert glob_match("src/*", "src/b.py") and not glob_match("src/*", "src/pkg/c.py")  # not via a directory
    assert glob_match("f?[0-9].[!c]", "fa1.h") and not glob_match("f?[0-9].[!c]", "fa1.c")
    assert glob_match("a/**/b", "a/b") and glob_match("a/**/b", "a/x/y/b") and not glob_match("a/**/b", "a/b/c")
    assert glob_match("!x #y ", "!x #y ") and not glob_match("!x #y ", "!x #y")  # literal, trailing space kept
    assert not glob_match("{,}", "a")  # a glob no path matches is not an error
    assert gitignore_style_match("*.py", "deep/dir/x.py") and not gitignore_style_match("*.py", "d.py/x.txt")
    assert gitignore_style_match("src/*.py", "src/x.py") and not gitignore_style_match("src/*.py", "a/src/x.py")
