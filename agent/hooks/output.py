"""Reading what a hook said, the way Claude Code reads it.

Exit 0: stdout may be a JSON object (`decision`, `reason`, `continue`, `stopReason`, `systemMessage`, and
`hookSpecificOutput` with `permissionDecision`, `permissionDecisionReason`, `updatedInput`, `additionalContext`;
the same names are also read at the top level), or plain text. Exit 2: a block, whose reason is stderr. Any
other exit, a time-out or a hook that cannot start: a warning, and the action goes on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ghostline.agent.hooks.process import HookRun
from ghostline.tools.hooks import HookReport

TEXT_LIMIT = 10_000  # characters of a hook's words that reach the model or the screen
BLOCK_EXIT = 2


@dataclass
class HookOutput:
    event: str
    command: str
    blocked: bool = False  # exit 2
    problem: str = ""  # a non-blocking error, for a warning line
    data: dict[str, Any] = field(default_factory=dict)  # the JSON object printed on exit 0
    text: str = ""  # stdout that was not JSON (exit 0)
    stderr: str = ""

    def get(self, name: str) -> Any:
        """A field from hookSpecificOutput, else from the top level."""
        specific = self.data.get("hookSpecificOutput")
        if isinstance(specific, dict) and name in specific:
            return specific[name]
        return self.data.get(name)

    def text_field(self, *names: str) -> str:
        for name in names:
            value = self.get(name)
            if isinstance(value, str) and value.strip():
                return bounded(value)
        return ""

    @property
    def block_reason(self) -> str:
        return bounded(self.stderr) or f"`{self.command}` exited with 2"

    @property
    def context(self) -> str:
        return self.text_field("additionalContext")

    def reports(self) -> list[HookReport]:
        """The warnings and stop requests every event shares (blocks are the event's to report)."""
        out = []
        if self.problem:
            out.append(HookReport(self.event, "warning", self.problem, self.command))
        message = self.text_field("systemMessage")
        if message:
            out.append(HookReport(self.event, "warning", message, self.command))
        if self.data.get("continue") is False:
            why = self.text_field("stopReason") or "a hook asked to stop"
            out.append(HookReport(self.event, "stop", why, self.command))
        return out


def read_output(event: str, run: HookRun) -> HookOutput:
    out = HookOutput(event, run.command, stderr=run.stderr.strip())
    if run.error:
        out.problem = f"{event} hook `{run.command}` {run.error}"
    elif run.timed_out:
        out.problem = f"{event} hook `{run.command}` timed out and was killed"
    elif run.exit_code == BLOCK_EXIT:
        out.blocked = True
    elif run.exit_code != 0:
        detail = f": {_first_lines(out.stderr)}" if out.stderr else ""
        out.problem = f"{event} hook `{run.command}` failed (exit {run.exit_code}){detail}"
    else:
        _read_stdout(out, run.stdout.strip())
    return out


def _read_stdout(out: HookOutput, stdout: str) -> None:
    if not stdout.startswith("{"):
        out.text = bounded(stdout)
        return
    try:
        data = json.loads(stdout)
    except json.JSONDecodeError as e:
        out.problem = f"{out.event} hook `{out.command}` printed JSON that does not parse ({e.msg}); ignored"
        return
    if isinstance(data, dict):
        out.data = data


def bounded(text: str, limit: int = TEXT_LIMIT) -> str:
    text = text.strip()
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[… {len(text) - limit} more characters cut]"


def _first_lines(text: str, lines: int = 3) -> str:
    kept = text.splitlines()[:lines]
    return bounded(" | ".join(line.strip() for line in kept if line.strip()), 500)
