"""`agent mcp list`: connect to each configured server (a project's only where it may start) and report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ghostline.agent.mcp_config import load_servers
from ghostline.sandbox.store import approved_servers, is_trusted
from ghostline.tools import ToolRegistry


async def server_report(root: Path) -> list[dict[str, Any]]:
    """One row per configured server: name, scope, transport, connected, tools, error."""
    servers = load_servers(root)
    approved = approved_servers(root)
    trusted = is_trusted(root)
    may_start = [s for s in servers.specs
                 if s.origin != "project" or trusted or approved.get(s.name) == s.fingerprint()]
    status: dict[str, Any] = {}
    if may_start:
        from ghostline.tools.mcp import McpManager

        manager = McpManager(ToolRegistry([]))
        await manager.start(may_start)
        status = {st.name: st for st in manager.status()}
        await manager.stop()
    rows = []
    for spec in servers.specs:
        st = status.get(spec.name)
        if st is None:
            error = "not started: configured by this project, whose directory is not trusted (`agent trust`)"
        else:
            error = st.error
        rows.append({"name": spec.name, "scope": servers.scopes[spec.name], "transport": spec.transport,
                     "connected": bool(st and st.connected), "tools": len(st.tools) if st else 0, "error": error,
                     "source": spec.source})
    rows += [{"name": "", "scope": "", "transport": "", "connected": False, "tools": 0, "error": p, "source": ""}
             for p in servers.problems]
    return rows
