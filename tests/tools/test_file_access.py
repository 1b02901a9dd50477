"""ToolContext.files: read, edit and write go through another keeper of the files (an editor's buffers)."""

from __future__ import annotations

from pathlib import Path

from ghostline.tools import EditTool, ReadTool, ToolContext, WriteTool
from tests.tools.conftest import call


class Buffers:
    """An editor's unsaved buffers: what it has wins over the disk."""

    def __init__(self, texts: dict[Path, str]) -> None:
        self.texts = texts
        self.writes: list[Path] = []

    async def read_text(self, path: Path) -> str | None:
        return self.texts.get(path)

    async def write_text(self, path: Path, text: str) -> None:
        self.texts[path] = text
        self.writes.append(path)


async def test_read_edit_write_through_the_buffers(ws: Path, ctx: ToolContext, changed: list[Path]) -> None:
    disk = ws / "app.py"
    disk.write_text("def f():\n    return 'disk'\n")
    buffers = Buffers({disk: "def f():\n    return 'unsaved'\n"})
    ctx.files = buffers
    read = await call(ReadTool(), ctx, path="app.py")
    assert "unsaved" in read.content and "disk" not in read.content
    edited = await call(EditTool(), ctx, path="app.py", old_string="'unsaved'", new_string="'edited'")
    assert not edited.is_error, edited.content
    assert buffers.texts[disk] == "def f():\n    return 'edited'\n" and "'disk'" in disk.read_text()
    assert "-    return 'unsaved'" in edited.meta["diff"] and changed == [disk]
    broken = await call(EditTool(), ctx, path="app.py", old_string="return 'edited'", new_string="return (")
    assert broken.is_error and "parse" in broken.content  # the applier's syntax guard ran on the text
    created = await call(WriteTool(), ctx, path="new.txt", content="hello\n")
    assert not created.is_error and buffers.texts[ws / "new.txt"] == "hello\n" and not (ws / "new.txt").exists()


async def test_a_buffer_changed_since_it_was_read_is_refused(ws: Path, ctx: ToolContext) -> None:
    path = ws / "notes.md"
    path.write_text("x\n")
    buffers = Buffers({path: "one\n"})
    ctx.files = buffers
    await call(ReadTool(), ctx, path="notes.md")
    buffers.texts[path] = "one\ntwo (typed by the user)\n"
    stale = await call(WriteTool(), ctx, path="notes.md", content="replaced\n")
    assert stale.is_error and "changed since it was last read" in stale.content
    unread = await call(EditTool(), ctx, path="other.md", old_string="a", new_string="b")
    assert unread.is_error  # not in the buffers, not on disk: the disk path says so
