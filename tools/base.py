"""The tool contract: a name, a JSON schema, a kind, and an async `run`; plus what the gate and front ends ask of
a call (its action for the policy, a title, an approval preview)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Protocol

from ghostline.apply.rewrite import RewriteRule
from ghostline.sandbox.policy import Action
from ghostline.tools.images import ImageLimits

if TYPE_CHECKING:
    from ghostline.tools.hooks import HookReport
    from ghostline.tools.scope import ToolScope


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


ToolKind = Literal["read", "edit", "shell", "other"]
"""What a tool does, which is all the rest of Ghostline may know of it: read (no side effects: runs concurrently,
needs no approval), edit (changes files), shell (runs commands), other (anything else, e.g. an MCP tool)."""


@dataclass(frozen=True)
class Preview:
    """What an approval prompt shows of a call before it runs: a unified diff, a command, or text."""

    kind: Literal["diff", "command", "text"]
    text: str


class FileAccess(Protocol):
    """Where file tools read and write text when not the disk (tools/files.py: an editor's buffers)."""

    async def read_text(self, path: Path) -> str | None:
        """The file's current text, or None when this keeper does not have it (the tool reads the disk)."""
        ...

    async def write_text(self, path: Path, text: str) -> None:
        """Replace (or create) the file's text. Raises OSError when it cannot."""
        ...


@dataclass
class ToolContext:
    workspace: Path  # the root the agent may write in (real path)
    cwd: Path  # where relative paths resolve (real path, inside or equal to workspace)
    file_state: FileState = field(default_factory=FileState)
    sandbox_mode: str = "workspace-write"  # read-only | workspace-write | full-access
    approval: str = "auto"  # plan | ask | auto-edit | auto (the gate reads it per call: front ends may switch it)
    network: bool = False
    output_dir: Path | None = None  # where full outputs of large results are kept (beside the session)
    env: dict[str, str] | None = None  # extra environment for commands (already scrubbed)
    # Called with every path a tool changed, so the index and checkpoints can follow.
    on_file_changed: Callable[[Path], None] | None = None
    # The whole-file fallback after repeated failed edits (the edit tool counts, the write tool checks).
    rewrites: RewriteRule = field(default_factory=RewriteRule)
    # Live output of a running call (a command's output as it comes), for front ends. The registry gives each
    # call its own context with `progress` bound to the call; a front end sets `on_progress(call_id, text)`.
    on_progress: Callable[[str, str], None] | None = None
    progress: Callable[[str], None] | None = None
    # Where file tools read and write text (tools.files.FileAccess); None: the disk. An editor hosting the agent
    # sets it so unsaved buffers are the truth.
    files: FileAccess | None = None
    # Runs the shell tool's commands (the signature of sandbox.run_command); None: Ghostline's own sandbox. An
    # editor hosting the agent may set its terminal.
    run_command: Callable[..., Any] | None = None
    # Structured news of a running call that front ends show under it (a subagent's loop events): opaque here.
    # Bound per call like `progress`: a tool calls `report(item)`; the loop sets `on_report(call_id, item)`.
    on_report: Callable[[str, Any], None] | None = None
    report: Callable[[Any], None] | None = None
    call_id: str = ""  # the call this context runs (set by the registry per call)
    # What hooks reported while a call ran (PostToolUse), as `on_hook(call_id, report)`, for front ends.
    on_hook: Callable[[str, HookReport], None] | None = None
    # The tools the current message may use (a custom command's allowed-tools); None: every tool.
    tool_scope: ToolScope | None = None
    # Asks the gate whether the running call may go on with other arguments (a fetch redirected to another host):
    # the checks of a new call (schema, scope, hooks, policy, approval). Returns None when it may, else why not.
    # Bound per call by the registry; None outside it (a tool then refuses what it would have to ask about).
    recheck: Callable[[dict[str, Any]], Awaitable[str | None]] | None = None
    # The images the model takes (from the model table); None: it takes none, so tools describe images in words.
    images: ImageLimits | None = None


class Tool(Protocol):
    """A model-facing tool. Everything outside the tool's own module knows it only through these members."""

    name: str
    description: str
    input_schema: dict[str, Any]
    kind: ToolKind

    def action(self, args: dict[str, Any]) -> Action:
        """What the call would do, for the permission policy (its kind, the paths or the command)."""
        ...

    def title(self, args: dict[str, Any]) -> str:
        """One line for people: `bash pytest -q`, `edit src/app.py`."""
        ...

    def check(self, args: dict[str, Any], ctx: ToolContext) -> str | None:
        """Why the call would fail as it stands, found without changing anything (an edit of a file not read
        yet): the gate refuses it before hooks and approval, so nobody is asked about a call bound to fail.
        None: it may go on (`run` checks again)."""
        ...

    def preview(self, args: dict[str, Any], ctx: ToolContext) -> Preview | None:
        """What an approval prompt shows before the call runs (None: the arguments)."""
        ...

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult: ...


def _string_arg(args: dict[str, Any], key: str | None) -> str | None:
    value = args.get(key) if key else None
    return value if isinstance(value, str) and value else None


def one_line(value: Any, limit: int = 100) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class BaseTool:
    """Defaults for the `Tool` protocol; a tool overrides what its arguments say more precisely.

    `subject_key` names the argument a person recognises a call by (a path, a command, a pattern: the title);
    `path_key` the file or directory a read or edit call touches (what the policy judges)."""

    name: str = ""
    description: str = ""
    input_schema: dict[str, Any] = {}
    kind: ToolKind = "other"
    subject_key: str | None = None
    path_key: str | None = None

    def action(self, args: dict[str, Any]) -> Action:
        path = _string_arg(args, self.path_key)
        return Action(self.name, self.kind, paths=(path,) if path is not None else ())

    def title(self, args: dict[str, Any]) -> str:
        subject = _string_arg(args, self.subject_key)
        if subject is not None:
            return f"{self.name} {one_line(subject)}"
        return f"{self.name} {one_line(args)}" if args else self.name

    def check(self, args: dict[str, Any], ctx: ToolContext) -> str | None:
        return None

    def preview(self, args: dict[str, Any], ctx: ToolContext) -> Preview | None:
        return None

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        raise NotImplementedError
