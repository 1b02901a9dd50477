"""The tools one message may use: a custom command's `allowed-tools`, checked at the gate.

Entries are permission rules as the policy writes them, in Claude Code's spelling or Ghostline's (tool names
compare case-insensitively): `Read`, `grep`, `Bash(git diff:*)`, `bash: pytest *`, `edit: src/*`. A call is in
scope when a rule names its tool and, if the rule has a pattern, covers it: for a shell call every simple command
of the line (so `git status && rm -rf x` is not covered by `Bash(git status:*)`), for a file call every path, for
a network call every host.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ghostline.sandbox.policy import Action, parse_command
from ghostline.sandbox.rules import Rule


class ToolScope:
    def __init__(self, rules: Sequence[str], label: str = "this message") -> None:
        """Raises ValueError naming a rule that does not parse."""
        self.rules = [Rule.parse(r) for r in rules]
        self.label = label

    def describe(self) -> str:
        return ", ".join(r.source.strip() for r in self.rules) or "none"

    def permits(self, action: Action, workspace: Path) -> bool:
        rules = [r for r in self.rules if r.matches_tool(action.tool)]
        if not rules:
            return False
        if any(r.pattern is None for r in rules):
            return True
        if action.kind == "shell":
            return _covers_command(rules, action.command or "")
        if action.kind == "network":
            return all(any(r.matches_host(h) for r in rules) for h in action.hosts)
        return all(any(r.matches_path(p, workspace) for r in rules) for p in action.paths)


def _covers_command(rules: list[Rule], command: str) -> bool:
    parsed = parse_command(command)
    if parsed.error or not parsed.parts:
        return False
    return all(any(r.matches_command(part.text) for r in rules) for part in parsed.parts)
