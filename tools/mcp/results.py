"""An MCP `CallToolResult` as a Ghostline `ToolResult`: text for the model, images kept apart for providers.

Text blocks are joined; structured content is shown as JSON when the server sent no text for it (the spec asks
servers to send both) and kept in `meta["structured_content"]`. Images and audio become a one-line placeholder
in the text and an entry in `meta["images"]` (`{"mime_type", "path"}` when the bytes could be kept beside the
session, else `{"mime_type", "data"}` in base64): the seam a provider that takes image blocks reads. Long text
keeps its head and tail, the whole kept beside the session like a command's output.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import mimetypes
from pathlib import Path
from typing import Any

import mcp_types as types

from ghostline.tools.base import ToolResult

OUTPUT_LIMIT = 30000


def to_tool_result(result: types.CallToolResult, *, server: str, output_dir: Path | None) -> ToolResult:
    parts: list[str] = []
    images: list[dict[str, Any]] = []
    for block in result.content:
        parts.append(_block_text(block, images, output_dir))
    structured = result.structured_content
    if structured is not None and not any(isinstance(b, types.TextContent) for b in result.content):
        parts.append(json.dumps(structured, ensure_ascii=False, indent=2))
    text = "\n".join(p for p in parts if p) or "(no output)"
    meta: dict[str, Any] = {"mcp_server": server}
    if structured is not None:
        meta["structured_content"] = structured
    if images:
        meta["images"] = images
    text = _bounded(text, meta, output_dir)
    return ToolResult(text, is_error=bool(result.is_error), meta=meta)


def _block_text(block: Any, images: list[dict[str, Any]], output_dir: Path | None) -> str:
    if isinstance(block, types.TextContent):
        return block.text
    if isinstance(block, (types.ImageContent, types.AudioContent)):
        kind = "image" if isinstance(block, types.ImageContent) else "audio"
        entry = _keep_media(block.data, block.mime_type, output_dir)
        entry["kind"] = kind
        images.append(entry)
        return f"[{kind}: {block.mime_type}, {_size(entry.get('bytes', 0))}]"
    if isinstance(block, types.EmbeddedResource):
        res = block.resource
        if isinstance(res, types.TextResourceContents):
            return f"[resource {res.uri}]\n{res.text}"
        return f"[resource {res.uri}: {res.mime_type or 'binary'} data, not shown]"
    if isinstance(block, types.ResourceLink):
        return f"[resource link: {block.uri}" + (f" ({block.description})]" if block.description else "]")
    return f"[{getattr(block, 'type', 'unknown')} content, not shown]"


def _keep_media(data: str, mime_type: str, output_dir: Path | None) -> dict[str, Any]:
    try:
        raw = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        raw = b""
    entry: dict[str, Any] = {"mime_type": mime_type, "bytes": len(raw)}
    if output_dir is None or not raw:
        entry["data"] = data
        return entry
    ext = mimetypes.guess_extension(mime_type) or ".bin"
    path = output_dir / f"mcp-{hashlib.sha256(raw).hexdigest()[:16]}{ext}"
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
        entry["path"] = str(path)
    except OSError:
        entry["data"] = data
    return entry


def _bounded(text: str, meta: dict[str, Any], output_dir: Path | None) -> str:
    if len(text) <= OUTPUT_LIMIT:
        return text
    where = ""
    if output_dir is not None:
        path = output_dir / f"mcp-{hashlib.sha256(text.encode()).hexdigest()[:16]}.txt"
        try:
            output_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            meta["full_output_path"] = str(path)
            where = f"; full output in {path}"
        except OSError:
            pass
    meta["truncated"] = True
    half = OUTPUT_LIMIT // 2
    return f"{text[:half]}\n[... output was cut, head and tail kept{where} ...]\n{text[-half:]}"


def _size(n: int) -> str:
    return f"{n} bytes" if n < 1024 else f"{n / 1024:.1f} KiB"
