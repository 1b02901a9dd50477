"""One MCP server as the session knows it: how to reach it, who configured it, and its time limits."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Literal

Origin = Literal["user", "project"]
"""Who configured a server: the user (their own config, `agent mcp add`, an editor's session) or the project
(`.mcp.json`, the project's config.toml) — whose servers start only in a trusted directory or when approved."""

DEFAULT_STARTUP_TIMEOUT_S = 30.0
DEFAULT_TOOL_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class ServerSpec:
    """A stdio server (`command`) or a streamable-HTTP one (`url`)."""

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    origin: Origin = "user"
    source: str = ""  # where it was configured, for messages (`.mcp.json`, `~/.config/ghostline/config.toml`)
    startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S
    tool_timeout_s: float = DEFAULT_TOOL_TIMEOUT_S

    @property
    def transport(self) -> str:
        return "http" if self.url else "stdio"

    def describe(self) -> str:
        """What a person approving the server reads: the command line or the URL."""
        if self.url:
            return self.url
        return " ".join([self.command or "", *self.args]).strip()

    def fingerprint(self) -> str:
        """Changes whenever what the server runs changes (an approval is for one command line, not a name)."""
        what = {k: v for k, v in asdict(self).items() if k in ("command", "args", "env", "cwd", "url", "headers")}
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]
