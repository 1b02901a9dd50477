"""What an editor sends with a session or a prompt, in Ghostline's terms: the prompt's blocks as the user's
message text (embedded context in delimited blocks) and its images (checked, kept beside the session), and the MCP
servers the editor passes as ServerSpecs."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any

from acp.schema import (
    EmbeddedResourceContentBlock,
    HttpMcpServer,
    ImageContentBlock,
    McpServerStdio,
    ResourceContentBlock,
    TextContentBlock,
    TextResourceContents,
)

from ghostline.compaction.transcript import ImageBlock
from ghostline.tools.images import ImageError, ImageLimits, check_image, keep_image
from ghostline.tools.mcp import ServerSpec


def prompt_text(blocks: list[Any]) -> str:
    """Text as typed; a resource the editor embedded (a file, a selection) follows in a delimited block; a link
    is named so the model can read it."""
    parts: list[str] = []
    for block in blocks:
        if isinstance(block, TextContentBlock):
            parts.append(block.text)
        elif isinstance(block, EmbeddedResourceContentBlock):
            res = block.resource
            if isinstance(res, TextResourceContents):
                parts.append(f'\n<context uri="{res.uri}">\n{res.text}\n</context>')
            else:
                parts.append(f"[attached: {res.uri} ({res.mime_type or 'binary'}), not shown]")
        elif isinstance(block, ResourceContentBlock):
            parts.append(f"[{block.name}]({block.uri})")
        elif isinstance(block, ImageContentBlock):
            continue  # prompt_images
        else:
            parts.append(f"[a {getattr(block, 'type', 'non-text')} block was attached; only text is read]")
    return "\n".join(parts).strip()


def prompt_images(blocks: list[Any], limits: ImageLimits | None, keep_in: Path | None,
                  model: str) -> tuple[list[ImageBlock], list[str]]:
    """The prompt's images as blocks for the model, and one line per image it cannot take."""
    images = [b for b in blocks if isinstance(b, ImageContentBlock)]
    if not images:
        return [], []
    if limits is None:
        return [], [f"{len(images)} image(s) not attached: {model} does not take images"]
    out: list[ImageBlock] = []
    problems: list[str] = []
    for n, block in enumerate(images, 1):
        name = block.uri or f"image {n}"
        try:
            data = base64.b64decode(block.data, validate=True)
            out.append(keep_image(check_image(data, name, limits), keep_in, name))
        except (binascii.Error, ValueError) as exc:
            problems.append(f"image not attached: {exc if isinstance(exc, ImageError) else f'{name} is not base64'}")
    return out, problems


def editor_servers(servers: list[Any]) -> list[ServerSpec]:
    """The MCP servers an editor passes with session/new or session/load: the user's own (origin "user").
    Raises ValueError for a transport Ghostline does not speak (SSE)."""
    out = []
    for s in servers:
        if isinstance(s, McpServerStdio):
            out.append(ServerSpec(s.name, s.command, tuple(s.args), env={e.name: e.value for e in s.env},
                                  origin="user", source="the editor"))
        elif isinstance(s, HttpMcpServer):
            out.append(ServerSpec(s.name, url=s.url, headers={x.name: x.value for x in s.headers}, origin="user",
                                  source="the editor"))
        else:
            raise ValueError(f"MCP server {getattr(s, 'name', '?')!r}: only stdio and http servers are supported")
    return out
