"""Permission rules: `tool` or `tool: pattern` (also `tool(pattern)`), as written in config and remembered.

The tool part is a name or a glob over names (`mcp__github__*`, `mcp__*`, `*`): tools that come from MCP
servers are named `mcp__<server>__<tool>`, so one rule can cover a whole server.

For shell tools the pattern is a glob over one simple command (`npm run test *`, where a trailing ` *` also
matches no arguments, and `git diff:*` a prefix); for file tools a glob over the path (relative to the
workspace, or absolute); for network tools a glob over the host (`docs.python.org`, `*.python.org`,
`127.0.0.1:8080`; Claude Code's `domain:` prefix is accepted). Shared by the policy (which evaluates rules) and the store (which validates the
rules it remembers).
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from pathlib import Path

_PORT = re.compile(r":\d+$")
# Claude Code's names for tools that Ghostline names otherwise, so its rules (`WebFetch(domain:x)`) work as written.
_CLAUDE_CODE_TOOLS = {"webfetch": "fetch"}
_RULE_RE = re.compile(r"^\s*([A-Za-z0-9_.\-*?\[\]]+)\s*(?:\((.*)\)|:\s*(.*))?\s*$", re.S)


@dataclass
class Rule:
    tool: str
    pattern: str | None
    source: str = ""

    @classmethod
    def parse(cls, text: str) -> Rule:
        m = _RULE_RE.match(text)
        if not m:
            raise ValueError(f"bad permission rule {text!r} (expected 'tool' or 'tool: pattern')")
        pat = m.group(2) if m.group(2) is not None else m.group(3)
        pat = pat.strip() if pat else None
        tool = m.group(1).lower()
        return cls(tool=_CLAUDE_CODE_TOOLS.get(tool, tool), pattern=pat or None, source=text)

    def matches_tool(self, tool: str) -> bool:
        name = tool.lower()
        return self.tool == name or fnmatch.fnmatchcase(name, self.tool)

    def matches_command(self, part_text: str) -> bool:
        if self.pattern is None:
            return True
        pat = self.pattern
        if fnmatch.fnmatchcase(part_text, pat):
            return True
        if pat.endswith(" *") and part_text == pat[:-2]:
            return True
        if pat.endswith(":*") and (part_text == pat[:-2] or part_text.startswith(pat[:-2] + " ")):
            return True
        return False

    def matches_host(self, host: str) -> bool:
        """`host` is a name, with `:port` when the URL gave one; a pattern without a port covers every port."""
        if self.pattern is None:
            return True
        pat = self.pattern.removeprefix("domain:").strip().lower()
        host = host.lower()
        return fnmatch.fnmatchcase(host, pat) or fnmatch.fnmatchcase(_PORT.sub("", host), pat)

    def matches_path(self, path: str, workspace: Path) -> bool:
        if self.pattern is None:
            return True
        cands = [path]
        try:
            cands.append(str(Path(os.path.realpath(path)).relative_to(os.path.realpath(workspace))))
        except ValueError:
            pass
        return any(fnmatch.fnmatchcase(c, self.pattern) for c in cands)
