"""The typed events the loop yields. Every front end consumes these and nothing else."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


@dataclass
class Event:
    type: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        d = {"type": self.type}
        d.update(asdict(self))
        return d


@dataclass
class SessionStarted(Event):
    type: ClassVar[str] = "session_started"
    session_id: str
    model: str
    cwd: str
    sandbox: str
    approval: str
    sandbox_level: str = "none"
    resumed: bool = False


@dataclass
class UserMessage(Event):
    type: ClassVar[str] = "user_message"
    text: str
    # Images sent with the text (ImageBlock dicts: media_type, path beside the session, name, width, height).
    images: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class TurnStarted(Event):
    type: ClassVar[str] = "turn_started"
    turn: int


@dataclass
class TextDelta(Event):
    type: ClassVar[str] = "text_delta"
    text: str


@dataclass
class AssistantMessage(Event):
    """A complete assistant message as it enters the transcript (the message dict)."""

    type: ClassVar[str] = "assistant_message"
    message: dict[str, Any]


@dataclass
class ToolCall(Event):
    type: ClassVar[str] = "tool_call"
    id: str
    name: str
    input: dict[str, Any]
    kind: str = "other"  # read | edit | shell | other: all a front end may know of the tool
    title: str = ""  # one line for people, from the tool (`bash pytest -q`, `edit src/app.py`)


@dataclass
class ToolOutput(Event):
    """Live output of a running call (a command's output as it arrives). Not logged: the result carries it all."""

    type: ClassVar[str] = "tool_output"
    id: str
    text: str


@dataclass
class ContextNote(Event):
    """Something the model is told that the user did not type as a message (after /undo: which files changed).
    It enters the transcript as user text."""

    type: ClassVar[str] = "context_note"
    text: str
    kind: str = "note"


@dataclass
class ShellRun(Event):
    """A command the user ran with `!command`: shown like a tool call, and its output goes to the model as user
    text (the model did not call a tool, so there is no tool result to pair)."""

    type: ClassVar[str] = "shell_run"
    id: str
    command: str
    exit_code: int
    output: str
    duration_ms: int = 0
    timed_out: bool = False


@dataclass
class ToolResultEvent(Event):
    type: ClassVar[str] = "tool_result"
    id: str
    name: str
    content: str
    is_error: bool = False
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Diff(Event):
    type: ClassVar[str] = "diff"
    path: str
    diff: str
    id: str = ""  # the tool call that made the change


@dataclass
class TodoList(Event):
    """The todo list a call reported (its result's `todos` meta): the whole list, each item {content, status}
    with status pending | in_progress | completed. Front ends show the latest as a checklist."""

    type: ClassVar[str] = "todo_list"
    items: list[dict[str, Any]]
    id: str = ""  # the tool call that wrote it


@dataclass
class SubagentEvent(Event):
    """An event of a subagent's loop, under the parent's tool call that runs it (`parent_tool_use_id`, as Claude
    Code's stream-json names it). The subagent's own context: nothing of it enters the parent's transcript; its
    final text is the parent call's result."""

    type: ClassVar[str] = "subagent_event"
    parent_tool_use_id: str
    event: Event

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "parent_tool_use_id": self.parent_tool_use_id, "event": self.event.to_dict()}


def is_transient(event: Event) -> bool:
    """Shown as it happens, never logged (the complete message or result that follows carries it all)."""
    if isinstance(event, SubagentEvent):
        return is_transient(event.event)
    return isinstance(event, (TextDelta, ToolOutput))


def innermost(event: Event) -> Event:
    """The event itself, or the subagent's event a wrapper carries (however deep)."""
    while isinstance(event, SubagentEvent):
        event = event.event
    return event


@dataclass
class PermissionRequest(Event):
    """The permission gate did not simply allow a call: a person was asked (headless, nobody can be, so it was
    denied and the model told why), or a deny rule, a hook or the message's tool scope refused it. Sessions
    written before this name logged it as `approval_needed` (readers accept both)."""

    type: ClassVar[str] = "permission_request"
    tool: str
    input: dict[str, Any]
    reason: str
    decision: str = "denied"  # allowed | denied
    id: str = ""  # the tool call
    remembered_rule: str | None = None  # "always allow" stored this rule
    decided_by: str = ""  # user | headless | policy | hook | scope ("" in older sessions)


ApprovalNeeded = PermissionRequest  # its earlier name


@dataclass
class HookBlocked(Event):
    """A hook stopped something: a tool call (PreToolUse), the user's prompt (UserPromptSubmit), the end of the
    model's turn (Stop: the model goes on), or objected to a call that ran (PostToolUse: the model is told)."""

    type: ClassVar[str] = "hook_blocked"
    hook_event: str
    reason: str
    command: str = ""  # the hook's command line
    id: str = ""  # the tool call, for tool hooks


@dataclass
class HookWarning(Event):
    """A hook failed (an exit other than 0 and 2, a time-out, JSON that does not parse), printed a
    systemMessage, or asked the run to stop (`"continue": false`, then `stop` is true). The action went on."""

    type: ClassVar[str] = "hook_warning"
    hook_event: str
    message: str
    command: str = ""
    id: str = ""
    stop: bool = False


@dataclass
class Compaction(Event):
    type: ClassVar[str] = "compaction"
    stage: str
    tokens_before: int
    tokens_after: int
    detail: str = ""


@dataclass
class Usage(Event):
    type: ClassVar[str] = "usage"
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cost_usd: float | None = None


@dataclass
class Retry(Event):
    type: ClassVar[str] = "retry"
    attempt: int
    delay_s: float
    error: str


@dataclass
class VerificationStarted(Event):
    """The run's --verify command starts (after the model ended its turn with no tool calls)."""

    type: ClassVar[str] = "verification_started"
    command: str
    attempt: int  # 1-based
    max_attempts: int  # 1 + the extra attempts allowed after a failure


@dataclass
class VerificationResult(Event):
    """How the --verify command ended. output_tail is the bounded tail the model is shown on failure."""

    type: ClassVar[str] = "verification_result"
    command: str
    attempt: int
    exit_code: int
    passed: bool
    duration_ms: int = 0
    output_tail: str = ""
    tail_cut: bool = False  # earlier output was left out of output_tail
    timed_out: bool = False
    full_output_path: str | None = None  # the whole output, kept beside the session when it was long


@dataclass
class OutputSchemaCheck(Event):
    """The final answer checked against --output-schema: valid, or why not (the model is told once and answers
    again; still invalid, the run ends with subtype error_output_schema)."""

    type: ClassVar[str] = "output_schema_check"
    valid: bool
    attempt: int  # 1-based
    error: str = ""


@dataclass
class Done(Event):
    type: ClassVar[str] = "done"
    result: str
    subtype: str = "success"  # success | error_max_turns | error_budget | error_verification | error_output_schema
    num_turns: int = 0


@dataclass
class Failed(Event):
    type: ClassVar[str] = "failed"
    error: str
    subtype: str = "error_during_execution"
    num_turns: int = 0

