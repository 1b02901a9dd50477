"""What an editor sends with a session or a prompt, in Ghostline's terms: the prompt's blocks as the user's
message text (embedded context in delimited blocks), and the MCP servers the editor passes as ServerSpecs."""

from __future__ import annotations

from typing import Any

from acp.schema import (
    EmbeddedResourceContentBlock,
    HttpMcpServer,
    McpServerStdio,
    ResourceContentBlock,
    TextContentBlock,
    TextResourceContents,
)
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
        else:
            parts.append(f"[a {getattr(block, 'type', 'non-text')} block was attached; only text is read]")
    return "\n".join(parts).strip()


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
