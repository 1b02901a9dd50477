"""The MCP servers of one run: which may start (trust, the user's approvals), and starting them around it.

`prepare_run` is synchronous and servers need the running event loop, so a front end awaits
`PreparedRun.start()` before its first turn and `PreparedRun.stop()` at the end; both come here. A project's
servers start in a trusted directory, or when approved before (same command line), or when `ask` (the TUI's
approval dialog) allows them now; otherwise they are left out with one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ghostline.agent.mcp_config import McpServers
from ghostline.sandbox.store import approve_server, approved_servers
from ghostline.tools import ApprovalRequest, Approver, Preview, ToolRegistry
from ghostline.tools.mcp import ServerSpec


class McpSession:
    def __init__(self, servers: McpServers, registry: ToolRegistry, root: Path, *, trusted: bool,
                 log_dir: Path | None = None) -> None:
        self.servers = servers
        self.root = root
        self.trusted = trusted
        self.registry = registry
        self.log_dir = log_dir
        self.manager: Any = None  # tools.mcp.McpManager, made when there is a server to start (the SDK is heavy)

    def awaiting_approval(self) -> list[ServerSpec]:
        """The project's servers that may not start without the user's yes (untrusted, not approved as is)."""
        if self.trusted:
            return []
        approved = approved_servers(self.root)
        return [s for s in self.servers.by_origin("project") if approved.get(s.name) != s.fingerprint()]

    async def start(self, ask: Approver | None = None, extra: Sequence[ServerSpec] = ()) -> list[str]:
        """Start what may start; one line per server left out or failed. `extra`: servers an editor passed."""
        lines = list(self.servers.problems)
        waiting = self.awaiting_approval()
        allowed = [s for s in self.servers.specs if s not in waiting] + list(extra)
        if waiting and ask is None:
            names = ", ".join(s.name for s in waiting)
            lines.append(f"not starting {len(waiting)} MCP server(s) configured by this project ({names}): the "
                         f"directory is not trusted (`agent trust` allows them)")
        elif waiting:
            allowed += await self._ask_each(waiting, ask, lines)
        if allowed:
            from ghostline.tools.mcp import McpManager

            self.manager = McpManager(self.registry, log_dir=self.log_dir)
            lines += await self.manager.start(allowed)
        return lines

    async def _ask_each(self, waiting: list[ServerSpec], ask: Approver, lines: list[str]) -> list[ServerSpec]:
        allowed = []
        for spec in waiting:
            answer = await ask(approval_request(spec))
            if not answer.allow:
                lines.append(f"MCP server {spec.name!r} not started (declined)")
                continue
            if answer.always:
                approve_server(self.root, spec.name, spec.fingerprint())
            allowed.append(spec)
        return allowed

    async def stop(self) -> None:
        if self.manager is not None:
            await self.manager.stop()

    def status(self) -> list[Any]:
        """tools.mcp.ServerStatus of each server started or tried."""
        return self.manager.status() if self.manager is not None else []


def approval_request(spec: ServerSpec) -> ApprovalRequest:
    """The question a front end's approval dialog shows for a project's server (yes, always, no)."""
    return ApprovalRequest(
        call_id=f"mcp-server:{spec.name}", tool=f"MCP server {spec.name}", kind="other",
        args={"command": spec.describe(), "source": spec.source}, title=f"start the MCP server {spec.name!r}",
        reason=f"configured by this project in {spec.source}, and the directory is not trusted",
        suggested_rule=f"{spec.name} as configured now, for this project",
        preview=Preview("command", spec.describe()))
