from __future__ import annotations

import os
from pathlib import Path

from ghostline.tools.base import ToolContext
from ghostline.tools.edit import EditTool
from ghostline.tools.read import ReadTool
from ghostline.tools.write import WriteTool
from tests.tools.conftest import call

READ, WRITE, EDIT = ReadTool(), WriteTool(), EditTool()


# --- write ------------------------------------------------------------------------------------------


async def test_write_creates_file_and_parent_dirs(ws: Path, ctx: ToolContext, changed: list[Path]) -> None:
    res = await call(WRITE, ctx, path="pkg/sub/mod.py", content="x = 1\ny = 2\n")
    assert not res.is_error, res.content
    target = ws / "pkg" / "sub" / "mod.py"
    assert target.read_text() == "x = 1\ny = 2\n"
    assert res.content == "Created pkg/sub/mod.py (2 lines)."
    assert res.meta["path"] == str(target)
    assert "+x = 1" in res.meta["diff"] and "+y = 2" in res.meta["diff"]
    assert changed == [target]
    # The new content counts as seen: writing again needs no read.
    res = await call(WRITE, ctx, path="pkg/sub/mod.py", content="x = 3\n")
    assert not res.is_error, res.content
    assert target.read_text() == "x = 3\n"
    assert "-x = 1" in res.meta["diff"] and "+x = 3" in res.meta["diff"]


async def test_write_refuses_to_overwrite_an_unread_file(ws: Path, ctx: ToolContext, changed: list[Path]) -> None:
    (ws / "keep.txt").write_text("precious\n")
    res = await call(WRITE, ctx, path="keep.txt", content="gone\n")
    assert res.is_error and "read it first" in res.content
    assert (ws / "keep.txt").read_text() == "precious\n"
    assert changed == []
    await call(READ, ctx, path="keep.txt")
    res = await call(WRITE, ctx, path="keep.txt", content="replaced\n")
    assert not res.is_error and res.content.startswith("Overwrote keep.txt")
    assert (ws / "keep.txt").read_text() == "replaced\n"


async def test_write_refuses_a_stale_file(ws: Path, ctx: ToolContext) -> None:
    f = ws / "s.txt"
    f.write_text("v1\n")
    await call(READ, ctx, path="s.txt")
    f.write_text("v2 by the user\n")
    res = await call(WRITE, ctx, path="s.txt", content="v3\n")
    assert res.is_error and "changed on disk since it was last read" in res.content
    assert f.read_text() == "v2 by the user\n"


async def test_write_protected_and_outside_paths(ws: Path, ctx: ToolContext, tmp_path: Path) -> None:
    (ws / ".git").mkdir()
    res = await call(WRITE, ctx, path=".git/hooks/pre-commit", content="evil")
    assert res.is_error and ".git" in res.content
    assert not (ws / ".git" / "hooks").exists()
    res = await call(WRITE, ctx, path=".ghostline/config.toml", content="approval='auto'")
    assert res.is_error and ".ghostline" in res.content
    res = await call(WRITE, ctx, path="../escape.txt", content="x")
    assert res.is_error and not (Path(os.path.realpath(tmp_path)) / "escape.txt").exists()
    outside = Path(os.path.realpath(tmp_path)) / "outdir"
    outside.mkdir()
    (ws / "door").symlink_to(outside)
    res = await call(WRITE, ctx, path="door/x.txt", content="x")
    assert res.is_error and not (outside / "x.txt").exists()
    ro = ToolContext(workspace=ws, cwd=ws, sandbox_mode="read-only")
    res = await call(WRITE, ro, path="new.txt", content="x")
    assert res.is_error and "read-only" in res.content and not (ws / "new.txt").exists()


async def test_write_onto_a_directory_is_refused(ws: Path, ctx: ToolContext) -> None:
    (ws / "d").mkdir()
    res = await call(WRITE, ctx, path="d", content="x")
    assert res.is_error and "directory" in res.content


# --- edit -------------------------------------------------------------------------------------------


async def test_edit_requires_a_read_first(ws: Path, ctx: ToolContext) -> None:
    (ws / "m.py").write_text("a = 1\n")
    res = await call(EDIT, ctx, path="m.py", old_string="a = 1", new_string="a = 2")
    assert res.is_error and "read it first" in res.content
    assert (ws / "m.py").read_text() == "a = 1\n"


async def test_edit_unique_match_and_diff(ws: Path, ctx: ToolContext, changed: list[Path]) -> None:
    f = ws / "m.py"
    f.write_text("def f():\n    return 1\n\ndef g():\n    return 2\n")
    await call(READ, ctx, path="m.py")
    res = await call(EDIT, ctx, path="m.py", old_string="    return 2", new_string="    return 20")
    assert not res.is_error, res.content
    assert f.read_text() == "def f():\n    return 1\n\ndef g():\n    return 20\n"
    assert res.content.startswith("Edited m.py.")
    assert "-    return 2\n+    return 20" in res.meta["diff"]
    assert res.meta["diff"].startswith("--- a/m.py\n+++ b/m.py\n")
    assert res.meta["path"] == str(f) and changed == [f]
    # file_state was refreshed: a second edit needs no re-read and is not stale.
    res = await call(EDIT, ctx, path="m.py", old_string="return 1", new_string="return 10")
    assert not res.is_error, res.content
    assert "return 10" in f.read_text()


async def test_edit_several_matches_needs_replace_all(ws: Path, ctx: ToolContext) -> None:
    f = ws / "r.py"
    f.write_text("foo(1)\nfoo(2)\nfoo(3)\n")
    await call(READ, ctx, path="r.py")
    res = await call(EDIT, ctx, path="r.py", old_string="foo", new_string="bar")
    assert res.is_error
    assert f.read_text() == "foo(1)\nfoo(2)\nfoo(3)\n"
    res = await call(EDIT, ctx, path="r.py", old_string="foo", new_string="bar", replace_all=True)
    assert not res.is_error, res.content
    assert f.read_text() == "bar(1)\nbar(2)\nbar(3)\n"


async def test_edit_no_match_is_a_precise_error(ws: Path, ctx: ToolContext) -> None:
    f = ws / "n.py"
    f.write_text("alpha = 1\nbeta = 2\n")
    await call(READ, ctx, path="n.py")
    res = await call(EDIT, ctx, path="n.py", old_string="gamma = 3", new_string="gamma = 4")
    assert res.is_error and res.content.startswith("n.py: old_string was not found")
    assert f.read_text() == "alpha = 1\nbeta = 2\n"


async def test_edit_stale_missing_and_identical(ws: Path, ctx: ToolContext) -> None:
    f = ws / "s.py"
    f.write_text("x = 1\n")
    await call(READ, ctx, path="s.py")
    f.write_text("x = 1  # touched by the user\n")
    res = await call(EDIT, ctx, path="s.py", old_string="x = 1", new_string="x = 2")
    assert res.is_error and "changed on disk" in res.content
    assert f.read_text() == "x = 1  # touched by the user\n"
    res = await call(EDIT, ctx, path="nope.py", old_string="a", new_string="b")
    assert res.is_error and "not found" in res.content
    res = await call(EDIT, ctx, path="s.py", old_string="x", new_string="x")
    assert res.is_error and "identical" in res.content


async def test_edit_in_git_internals_refused(ws: Path, ctx: ToolContext) -> None:
    (ws / ".git").mkdir()
    (ws / ".git" / "config").write_text("[core]\n")
    await call(READ, ctx, path=".git/config")  # reading is fine
    res = await call(EDIT, ctx, path=".git/config", old_string="[core]", new_string="[core]\nhooksPath=/tmp")
    assert res.is_error and ".git" in res.content
    assert (ws / ".git" / "config").read_text() == "[core]\n"
