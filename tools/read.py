"""The `read` tool: a file's lines numbered like `cat -n`; images shown to a model that takes them (else described),
binary files refused."""

from __future__ import annotations

import asyncio
import codecs
import difflib
import hashlib
import os
from pathlib import Path
from typing import Any

from ghostline.tools.base import BaseTool, FileSnapshot, ToolContext, ToolError, ToolKind, ToolResult
from ghostline.tools.files import text_snapshot
from ghostline.tools.images import (
    IMAGE_EXTS,
    ImageError,
    check_image,
    header,
    image_entry,
    image_size,
    keep_image,
    size_text,
    sniff_format,
)
from ghostline.tools.paths import display, resolve

DEFAULT_LIMIT = 2000
LINE_CUT = 2000
MAX_OUTPUT_CHARS = 200_000
MAX_FILE_BYTES = 64 * 1024 * 1024
__all__ = ["DEFAULT_LIMIT", "IMAGE_EXTS", "LINE_CUT", "ReadTool", "decode_text", "image_size"]


class ReadTool(BaseTool):
    name = "read"
    kind: ToolKind = "read"
    subject_key = "path"
    path_key = "path"
    description = (
        "Read a text file. Returns its lines numbered like `cat -n` (number, tab, text); the numbers are "
        "not part of the file. `offset`: first line to show (1-based, default 1); `limit`: how many lines "
        f"(default {DEFAULT_LIMIT}). Lines longer than {LINE_CUT} characters are cut. When only part of "
        "the file is shown the result says which lines and how to read on. Binary files are refused; "
        "images (png, jpg, gif, webp) are shown to you when you can see images, else described (format, "
        "dimensions, size). A file must be read before `edit` or `write` may change it."
    )
    input_schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "File path, relative to the working directory or absolute."},
            "offset": {"type": "integer", "minimum": 1, "description": "First line to show (1-based)."},
            "limit": {"type": "integer", "minimum": 1, "description": "Number of lines to show."},
        },
        "required": ["path"],
        "additionalProperties": False,
    }

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        path = resolve(ctx, args["path"], write=False)
        offset = int(args.get("offset") or 1)
        limit = int(args.get("limit") or DEFAULT_LIMIT)
        if offset < 1 or limit < 1:
            raise ToolError("offset and limit must be positive (offset is 1-based)")
        if ctx.files is not None:  # an editor's buffer, when it has the file
            text = await ctx.files.read_text(path)
            if text is not None:
                ctx.file_state.seen[str(path)] = text_snapshot(text)
                return _window(text, path, display(ctx, path), args["path"], offset, limit)
        return await asyncio.to_thread(_read, ctx, path, args["path"], offset, limit)


def _not_found(ctx: ToolContext, path: Path, given: str) -> ToolError:
    msg = f"file not found: {given}"
    parent = path.parent
    try:
        names = [e.name for e in os.scandir(parent)] if parent.is_dir() else []
    except OSError:
        names = []
    close = difflib.get_close_matches(path.name, names, n=3, cutoff=0.6)
    if close:
        msg += "; did you mean " + ", ".join(display(ctx, parent / c) for c in close) + "?"
    return ToolError(msg)


def _read(ctx: ToolContext, path: Path, given: str, offset: int, limit: int) -> ToolResult:
    st = _regular_file(ctx, path, given)
    shown_name = display(ctx, path)
    image = IMAGE_EXTS.get(path.suffix.lower()) or _sniff_image(path)
    if image is not None:
        res = _image(ctx, path, shown_name, image, st.st_size)
        # Seen as far as write's read-before-overwrite rule goes (the model may replace an image).
        try:
            ctx.file_state.record(path)
        except OSError:
            pass
        return res
    if st.st_size > MAX_FILE_BYTES:
        raise ToolError(
            f"{given} is too large to read ({st.st_size / 1048576:.1f} MiB); use `grep` to find the "
            "part you need, or `bash` with head/sed"
        )
    data = path.read_bytes()
    text = decode_text(data)
    if text is None:
        raise ToolError(f"{given} is a binary file ({_size(len(data))}); it cannot be shown as text")
    ctx.file_state.seen[str(path)] = FileSnapshot(hashlib.sha256(data).hexdigest(), st.st_mtime_ns)
    return _window(text, path, shown_name, given, offset, limit)


def _regular_file(ctx: ToolContext, path: Path, given: str) -> os.stat_result:
    if not path.exists():
        raise _not_found(ctx, path, given)
    if path.is_dir():
        raise ToolError(f"{given} is a directory; use `glob` to list files")
    if not path.is_file():
        raise ToolError(f"{given} is not a regular file")
    return path.stat()


def _window(text: str, path: Path, shown_name: str, given: str, offset: int, limit: int) -> ToolResult:
    """Lines offset..offset+limit-1, numbered, within the output budget, and where to read on."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    total = len(lines)
    meta: dict[str, Any] = {"path": str(path), "total_lines": total}
    if total == 0:
        meta.update(start_line=0, end_line=0, partial=False)
        return ToolResult(f"[{shown_name} is empty]", meta=meta)
    if offset > total:
        raise ToolError(f"offset {offset} is past the end of {given} ({total} lines)")
    out, end, cut_any = _numbered(lines, offset, limit)
    meta.update(start_line=offset, end_line=end, partial=offset > 1 or end < total)
    body = "\n".join(out)
    if end < total:
        body += f"\n[showing lines {offset}-{end} of {total}; read on with offset={end + 1}]"
    elif offset > 1:
        body += f"\n[showing lines {offset}-{end} of {total}]"
    if cut_any:
        body += "\n[some long lines were cut; use `grep` or `bash` to see them in full]"
    return ToolResult(body, meta=meta)


def _numbered(lines: list[str], offset: int, limit: int) -> tuple[list[str], int, bool]:
    """(numbered rows, the last line number shown, whether a long line was cut)."""
    out: list[str] = []
    chars = 0
    end = offset - 1
    width = max(6, len(str(min(len(lines), offset + limit - 1))))
    cut_any = False
    for i in range(offset - 1, min(len(lines), offset - 1 + limit)):
        line = lines[i][:-1] if lines[i].endswith("\r") else lines[i]
        if len(line) > LINE_CUT:
            line = line[:LINE_CUT] + f"… [line cut, {len(line)} chars]"
            cut_any = True
        row = f"{i + 1:>{width}}\t{line}"
        if out and chars + len(row) + 1 > MAX_OUTPUT_CHARS:
            break
        out.append(row)
        chars += len(row) + 1
        end = i + 1
    return out, end, cut_any


def decode_text(data: bytes) -> str | None:
    """Decode file bytes as text (BOM-aware, UTF-8 with replacement); None for binary data."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    if data.startswith(codecs.BOM_UTF16_LE) or data.startswith(codecs.BOM_UTF16_BE):
        text = data.decode("utf-16", errors="replace")
        return None if "\0" in text else text
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    # Not UTF-8: text in a legacy encoding reads fine with replacements; mostly control bytes is binary.
    sample = data[:8192]
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13, 27))
    if sample and controls / len(sample) > 0.1:
        return None
    return data.decode("utf-8", errors="replace")


def _size(n: int) -> str:
    return size_text(n)


def _sniff_image(path: Path) -> str | None:
    try:
        return sniff_format(header(path)[:16])
    except OSError:
        return None


def _image(ctx: ToolContext, path: Path, shown: str, fmt: str, size: int) -> ToolResult:
    """The image described; shown too (an `images` meta entry the transcript turns into an image block) when the
    model takes images and this one is within its limits, else the description says why it is not."""
    limits = ctx.images
    try:
        data = path.read_bytes() if limits is not None and size <= limits.max_bytes else header(path)
    except OSError as exc:
        raise ToolError(f"cannot read {shown}: {exc.strerror or exc}") from None
    real = sniff_format(data) or fmt
    dims = image_size(data, real)
    desc = f"[{shown}: {real} image" + (f", {dims[0]}x{dims[1]} pixels" if dims else ", dimensions unknown")
    desc += f", {size_text(size)}"
    meta: dict[str, Any] = {"path": str(path), "image": real, "bytes": size}
    if dims:
        meta["width"], meta["height"] = dims
    if limits is None:
        return ToolResult(f"{desc}. Image contents cannot be shown as text.]", meta=meta)
    if size > limits.max_bytes:
        return ToolResult(f"{desc}. Not shown: this model takes images up to {size_text(limits.max_bytes)}.]",
                          meta=meta)
    try:
        image = check_image(data, shown, limits)
    except ImageError as exc:
        return ToolResult(f"{desc}. Not shown: {exc}.]", meta=meta)
    meta["images"] = [image_entry(keep_image(image, ctx.output_dir, shown))]
    return ToolResult(f"{desc}; the image follows.]", meta=meta)
