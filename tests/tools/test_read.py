from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

from ghostline.tools.base import ToolContext
from ghostline.tools.read import DEFAULT_LIMIT, LINE_CUT, ReadTool, image_size
from tests.tools.conftest import call

READ = ReadTool()


async def test_numbered_lines_like_cat_n(ws: Path, ctx: ToolContext) -> None:
    (ws / "a.py").write_text("first\nsecond\n\tthird\n")
    res = await call(READ, ctx, path="a.py")
    assert not res.is_error
    assert res.content == "     1\tfirst\n     2\tsecond\n     3\t\tthird"
    assert res.meta["total_lines"] == 3 and res.meta["partial"] is False
    assert str(ws / "a.py") in ctx.file_state.seen


async def test_offset_and_limit_say_how_to_read_on(ws: Path, ctx: ToolContext) -> None:
    (ws / "n.txt").write_text("".join(f"line {i}\n" for i in range(1, 11)))
    res = await call(READ, ctx, path="n.txt", offset=3, limit=4)
    rows = res.content.splitlines()
    assert rows[0] == "     3\tline 3" and rows[3] == "     6\tline 6"
    assert rows[4] == "[showing lines 3-6 of 10; read on with offset=7]"
    assert res.meta["partial"] is True and res.meta["end_line"] == 6
    tail = await call(READ, ctx, path="n.txt", offset=7)
    assert tail.content.splitlines()[-1] == "[showing lines 7-10 of 10]"


async def test_default_limit_is_2000_lines(ws: Path, ctx: ToolContext) -> None:
    (ws / "big.txt").write_text("x\n" * (DEFAULT_LIMIT + 5))
    res = await call(READ, ctx, path="big.txt")
    assert res.meta["end_line"] == DEFAULT_LIMIT
    assert f"read on with offset={DEFAULT_LIMIT + 1}" in res.content


async def test_long_lines_are_cut_with_a_marker(ws: Path, ctx: ToolContext) -> None:
    (ws / "min.js").write_text("a" * (LINE_CUT + 500) + "\nshort\n")
    res = await call(READ, ctx, path="min.js")
    first = res.content.splitlines()[0]
    assert first.endswith(f"[line cut, {LINE_CUT + 500} chars]")
    assert len(first) < LINE_CUT + 100
    assert "     2\tshort" in res.content


async def test_crlf_is_shown_without_carriage_returns(ws: Path, ctx: ToolContext) -> None:
    (ws / "w.txt").write_bytes(b"one\r\ntwo\r\n")
    res = await call(READ, ctx, path="w.txt")
    assert res.content == "     1\tone\n     2\ttwo"


async def test_binary_file_is_refused(ws: Path, ctx: ToolContext) -> None:
    (ws / "blob.bin").write_bytes(b"\x7fELF\x00\x01\x02" * 50)
    res = await call(READ, ctx, path="blob.bin")
    assert res.is_error and "binary file" in res.content
    assert str(ws / "blob.bin") not in ctx.file_state.seen


async def test_missing_file_suggests_close_names(ws: Path, ctx: ToolContext) -> None:
    (ws / "config.toml").write_text("x = 1\n")
    res = await call(READ, ctx, path="confg.toml")
    assert res.is_error
    assert "file not found: confg.toml" in res.content and "config.toml" in res.content


async def test_directory_and_empty_file_and_offset_past_end(ws: Path, ctx: ToolContext) -> None:
    (ws / "d").mkdir()
    assert "is a directory" in (await call(READ, ctx, path="d")).content
    (ws / "e.txt").write_text("")
    res = await call(READ, ctx, path="e.txt")
    assert not res.is_error and "empty" in res.content
    (ws / "s.txt").write_text("1\n2\n")
    res = await call(READ, ctx, path="s.txt", offset=5)
    assert res.is_error and "past the end" in res.content and "2 lines" in res.content


def _png(w: int, h: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\x00\x00\x00" * w for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


async def test_images_are_described_not_dumped(ws: Path, ctx: ToolContext) -> None:
    (ws / "logo.png").write_bytes(_png(7, 3))
    res = await call(READ, ctx, path="logo.png")
    assert not res.is_error
    assert "PNG image, 7x3 pixels" in res.content
    assert res.meta["width"] == 7 and res.meta["height"] == 3
    assert "\x89" not in res.content
    gif = b"GIF89a" + struct.pack("<HH", 640, 480) + b"\x00" * 20
    (ws / "a.gif").write_bytes(gif)
    assert "GIF image, 640x480 pixels" in (await call(READ, ctx, path="a.gif")).content
    # An image with a misleading name is still recognised by its magic bytes.
    (ws / "shot.dat").write_bytes(_png(2, 2))
    assert "PNG image, 2x2" in (await call(READ, ctx, path="shot.dat")).content


def test_image_size_headers() -> None:
    sof = b"\xff\xc0\x00\x11\x08" + struct.pack(">HH", 120, 160) + b"\x03" + b"\x00" * 9
    jpeg = b"\xff\xd8" + b"\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 9 + sof + b"\xff\xd9"
    assert image_size(jpeg, "JPEG") == (160, 120)
    vp8x = b"RIFF" + b"\x00" * 4 + b"WEBPVP8X" + b"\x00" * 8 + (99).to_bytes(3, "little") + (49).to_bytes(3, "little")
    assert image_size(vp8x, "WebP") == (100, 50)
    # VP8L: 14-bit width-1 and height-1 packed after the 0x2f signature.
    w1, h1 = 299, 199
    bits = w1 | (h1 << 14)
    vp8l = b"RIFF" + b"\x00" * 4 + b"WEBPVP8L" + b"\x00" * 4 + b"\x2f" + bits.to_bytes(4, "little")
    assert image_size(vp8l, "WebP") == (300, 200)
    assert image_size(b"\x89PNG\r\n\x1a\n", "PNG") is None


async def test_paths_outside_the_workspace_are_refused(ws: Path, ctx: ToolContext, tmp_path: Path) -> None:
    outside = Path(os.path.realpath(tmp_path)) / "secret.txt"
    outside.write_text("top secret\n")
    res = await call(READ, ctx, path="../secret.txt")
    assert res.is_error and "outside the workspace" in res.content
    res = await call(READ, ctx, path=str(outside))
    assert res.is_error and "outside the workspace" in res.content
    (ws / "link").symlink_to(outside)
    res = await call(READ, ctx, path="link")
    assert res.is_error and "top secret" not in res.content
    full = ToolContext(workspace=ws, cwd=ws, sandbox_mode="full-access")
    assert "top secret" in (await call(READ, full, path="../secret.txt")).content


async def test_relative_to_cwd(ws: Path) -> None:
    (ws / "sub").mkdir()
    (ws / "sub" / "f.txt").write_text("in sub\n")
    ctx = ToolContext(workspace=ws, cwd=ws / "sub")
    assert "in sub" in (await call(READ, ctx, path="f.txt")).content
    assert "in sub" in (await call(READ, ctx, path=str(ws / "sub" / "f.txt"))).content


async def test_saved_outputs_beside_the_session_are_readable_but_not_writable(tmp_path):
    from ghostline.tools import ReadTool, WriteTool
    from ghostline.tools.base import ToolContext

    ws = tmp_path / "ws"
    ws.mkdir()
    outputs = tmp_path / "session" / "outputs"
    outputs.mkdir(parents=True)
    (outputs / "call_1.txt").write_text("full output line\n")
    (tmp_path / "session" / "secret.txt").write_text("not an output\n")
    ctx = ToolContext(workspace=ws, cwd=ws, output_dir=outputs)
    ok = await ReadTool().run({"path": str(outputs / "call_1.txt")}, ctx)
    assert not ok.is_error and "full output line" in ok.content
    sibling = await _run_or_error(ReadTool(), {"path": str(tmp_path / "session" / "secret.txt")}, ctx)
    assert sibling.is_error and "outside the workspace" in sibling.content
    write = await _run_or_error(WriteTool(), {"path": str(outputs / "new.txt"), "content": "x"}, ctx)
    assert write.is_error and not (outputs / "new.txt").exists()


async def _run_or_error(tool, args, ctx):
    from ghostline.tools.registry import Call, ToolRegistry

    return (await ToolRegistry([tool]).run([Call("id", tool.name, args)], ctx))[0]
