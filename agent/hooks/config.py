"""Hook configuration: the `[[hooks.EVENT]]` tables of config.toml, shaped like Claude Code's settings.json.

    [[hooks.PreToolUse]]
    matcher = "bash|edit"            # "" or "*" (or no matcher): every tool
    [[hooks.PreToolUse.hooks]]
    type = "command"
    command = "python3 ~/.config/ghostline/hooks/guard.py"
    timeout = 30                     # seconds (default 60)

A matcher made only of names and `|` matches those names exactly; anything else is a regular expression searched
in the name. Both ignore case, so Claude Code's `Bash|Edit` matches Ghostline's `bash` and `edit`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ghostline.agent.providers.base import ConfigError

HOOK_EVENTS = ("PreToolUse", "PostToolUse", "UserPromptSubmit", "Stop", "SessionStart", "SessionEnd", "PreCompact",
               "Notification")
DEFAULT_TIMEOUT_S = 60.0
_PLAIN_NAMES = re.compile(r"^[A-Za-z0-9_\-]+(\|[A-Za-z0-9_\-]+)*$")


@dataclass(frozen=True)
class HookCommand:
    command: str
    timeout: float = DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class HookGroup:
    """One `[[hooks.EVENT]]` entry: the commands that run when `matcher` matches the event's subject (the tool
    name; SessionStart's source, PreCompact's trigger, Notification's type)."""

    matcher: str
    commands: tuple[HookCommand, ...]

    def matches(self, subject: str | None) -> bool:
        m = self.matcher.strip()
        if m in ("", "*") or subject is None:
            return True
        if _PLAIN_NAMES.match(m):
            return subject.lower() in (name.lower() for name in m.split("|"))
        return re.search(m, subject, re.IGNORECASE) is not None


HookTable = dict[str, list[HookGroup]]


def parse_hooks(table: Any, source: str) -> tuple[HookTable, list[str]]:
    """`hooks` from one config file → groups per event, and warnings (events or hook types Ghostline does not
    run). Raises ConfigError for what cannot be read as hooks (one line naming `source`)."""
    if table is None:
        return {}, []
    if not isinstance(table, dict):
        raise ConfigError(f"[hooks] in {source} must be a table of events, e.g. [[hooks.PreToolUse]]")
    out: HookTable = {}
    warnings: list[str] = []
    for event, entries in table.items():
        if event not in HOOK_EVENTS:
            warnings.append(f"ignoring hooks for {event!r} in {source}: Ghostline runs {', '.join(HOOK_EVENTS)}")
            continue
        if not isinstance(entries, list):
            raise ConfigError(f"hooks.{event} in {source} must be an array of tables ([[hooks.{event}]])")
        for i, entry in enumerate(entries):
            group, skipped = _group(entry, f"hooks.{event}[{i}] in {source}")
            warnings.extend(skipped)
            if group.commands:
                out.setdefault(event, []).append(group)
    return out, warnings


def merge_tables(*tables: HookTable) -> HookTable:
    """User hooks and (trusted) project hooks both run, the user's first."""
    out: HookTable = {}
    for t in tables:
        for event, groups in t.items():
            out.setdefault(event, []).extend(groups)
    return out


def _group(entry: Any, where: str) -> tuple[HookGroup, list[str]]:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a table with `matcher` and `hooks`")
    matcher = entry.get("matcher", "")
    if not isinstance(matcher, str):
        raise ConfigError(f"{where}: matcher must be a string (a tool name, names joined by |, or a regex)")
    if not _PLAIN_NAMES.match(matcher.strip()) and matcher.strip() not in ("", "*"):
        try:
            re.compile(matcher)
        except re.error as e:
            raise ConfigError(f"{where}: matcher {matcher!r} is not a valid regular expression ({e})") from None
    hooks = entry.get("hooks", [])
    if not isinstance(hooks, list):
        raise ConfigError(f"{where}: hooks must be an array of tables ([[...hooks]])")
    commands, warnings = [], []
    for j, h in enumerate(hooks):
        command = _command(h, f"{where}.hooks[{j}]")
        if command is None:
            warnings.append(f"ignoring {where}.hooks[{j}]: only type = \"command\" hooks run in Ghostline")
        else:
            commands.append(command)
    return HookGroup(matcher, tuple(commands)), warnings


def _command(h: Any, where: str) -> HookCommand | None:
    if not isinstance(h, dict):
        raise ConfigError(f"{where} must be a table with type = \"command\" and command = \"...\"")
    if h.get("type", "command") != "command":
        return None
    command = h.get("command")
    if not isinstance(command, str) or not command.strip():
        raise ConfigError(f"{where}: command must be a non-empty string")
    timeout = h.get("timeout", DEFAULT_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ConfigError(f"{where}: timeout must be a positive number of seconds (got {timeout!r})")
    return HookCommand(command, float(timeout))
