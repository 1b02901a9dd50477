"""The tool contract: a name, a JSON schema, a read-only flag and an async `run`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Protocol


class ToolError(Exception):
    """A failure the model can act on; becomes an error tool result, never a crash."""


@dataclass
class ToolResult:
    content: str
    is_error: bool = False
    # Machine-readable facts: exit_code, path, diff, files_changed, full_output_path, ...
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class FileSnapshot:
    sha256: str
    mtime_ns: int


@dataclass
class FileState:
    """What the model has seen this session: read-before-write and stale-file checks use it."""

    seen: dict[str, FileSnapshot] = field(default_factory=dict)

    @staticmethod
    def snapshot(path: Path) -> FileSnapshot:
        data = path.read_bytes()
        return FileSnapshot(hashlib.sha256(data).hexdigest(), path.stat().st_mtime_ns)

    def record(self, path: Path) -> None:
        self.seen[str(path)] = self.snapshot(path)

    def forget(self, path: Path) -> None:
        self.seen.pop(str(path), None)


# ctx.extras key: real paths whose next `write` is a whole-file rewrite the loop requested after failed edits.
REWRITE_PENDING = "rewrite_pending"


# Asked before an action that the policy says needs approval. Returns True to allow.
ApprovalCallback = Callable[[str, dict[str, Any], str], Awaitable[bool]]


@dataclass
class ToolContext:
    workspace: Path  # the root the agent may write in (real path)
    cwd: Path  # where relative paths resolve (real path, inside or equal to workspace)
    file_state: FileState = field(default_factory=FileState)
    sandbox_mode: str = "workspace-write"  # read-only | workspace-write | full-access
    approval: str = "auto"  # ask | auto-edit | auto
    network: bool = False
    approve: ApprovalCallback | None = None  # None: headless, anything needing approval is denied
    output_dir: Path | None = None  # where full outputs of large results are kept (beside the session)
    env: dict[str, str] | None = None  # extra environment for commands (already scrubbed)
    # Called with every path a tool changed, so the index and checkpoints can follow.
    on_file_changed: Callable[[Path], None] | None = None
    extras: dict[str, Any] = field(default_factory=dict)


class Tool(Protocol):
    name: str
    description: str
    input_schema: dict[str, Any]
    read_only: bool

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult: ...
