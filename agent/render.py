"""Headless front ends. Each consumes loop events only: text (default), stream-json and json."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TextIO

from ghostline.agent import events as ev
from ghostline.tools.todo import checklist

EXIT_CODES = {"success": 0, "error_during_execution": 1, "error_max_turns": 3, "error_budget": 4,
              "error_verification": 5, "error_output_schema": 6, "stopped_by_hook": 7, "interrupted": 130}


def exit_code_for(subtype: str) -> int:
    return EXIT_CODES.get(subtype, 1)


def result_object(*, final: ev.Event | None, session_id: str, stats: Any, duration_ms: int,
                  sandbox: dict[str, Any] | None = None, interrupted: bool = False,
                  verification: dict[str, Any] | None = None) -> dict[str, Any]:
    if interrupted:
        subtype, text = "interrupted", "interrupted by the user"
    elif isinstance(final, ev.Done):
        subtype, text = final.subtype, final.result
    elif isinstance(final, ev.Failed):
        subtype, text = final.subtype, final.error
    else:
        subtype, text = "error_during_execution", "the run ended without a result"
    out: dict[str, Any] = {
        "type": "result",
        "subtype": subtype,
        "is_error": subtype != "success",
        "result": text,
        "session_id": session_id,
        "num_turns": stats.num_turns,
        "duration_ms": duration_ms,
        "usage": {
            "input_tokens": stats.input_tokens,
            "output_tokens": stats.output_tokens,
            "cache_read_input_tokens": stats.cache_read_input_tokens,
            "cache_creation_input_tokens": stats.cache_creation_input_tokens,
        },
        "cost_usd": None if stats.cost_usd is None else round(stats.cost_usd, 6),
        "files_changed": list(stats.files_changed),
        "commands": list(stats.commands),
    }
    if sandbox is not None:
        out["sandbox"] = sandbox
    if verification is not None:
        out["verification"] = verification
    return out


def _one_line(value: Any, limit: int = 100) -> str:
    s = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    s = " ".join(s.split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def call_title(e: ev.ToolCall) -> str:
    """The tool's own one-line title; events from older sessions have none."""
    return e.title or f"{e.name} {_one_line(e.input)}"


class TextRenderer:
    """Streams assistant text and one line per tool call to stdout; diagnostics go to stderr."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None, verbose: bool = False):
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.verbose = verbose
        self.styled = self.out.isatty()
        self._mid_line = False
        self._titles: dict[str, str] = {}  # call id -> title, for lines about a call after its ToolCall
        self._indent = ""  # a subagent's lines are indented under the call that runs it

    def _style(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.styled else text

    def _line(self, text: str, stream: TextIO | None = None) -> None:
        stream = stream or self.out
        if self._mid_line:
            self.out.write("\n")
            self._mid_line = False
        if self._indent:
            text = "\n".join(self._style(self._indent, "2") + line for line in text.split("\n"))
        stream.write(text + "\n")
        stream.flush()

    def _end_line(self) -> None:
        if self._mid_line:
            self.out.write("\n")
            self.out.flush()
            self._mid_line = False

    def header(self, text: str) -> None:
        self._line(self._style(text, "2"), self.err)

    def handle(self, e: ev.Event) -> None:
        show = _TEXT_HANDLERS.get(type(e))
        if show is not None:
            show(self, e)

    def _text(self, e: ev.TextDelta) -> None:
        self.out.write(e.text)
        self.out.flush()
        self._mid_line = not e.text.endswith("\n")

    def _tool_call(self, e: ev.ToolCall) -> None:
        self._titles[e.id] = call_title(e)
        self._line(self._style(f"→ {self._titles[e.id]}", "36"))

    def _tool_result(self, e: ev.ToolResultEvent) -> None:
        if e.is_error:
            self._line(self._style(f"  ✗ {e.name}: {_one_line(e.content, 160)}", "31"))
        elif "exit_code" in e.meta:
            self._line(self._style(f"  exit {e.meta['exit_code']}", "2"))
        if self.verbose and not e.is_error:
            # An edit's diff (a todo list) was just shown by its own event: only the summary line here.
            text = e.content.split("\n", 1)[0] if e.meta.get("diff") or "todos" in e.meta else e.content[:2000]
            self._line(self._style(text, "2"))

    def _todos(self, e: ev.TodoList) -> None:
        lines = checklist(e.items).splitlines() or ["(todo list cleared)"]
        self._line(self._style("\n".join(f"  {line}" for line in lines), "2"))

    def _verify_started(self, e: ev.VerificationStarted) -> None:
        self._line(self._style(f"→ verify {_one_line(e.command)} (attempt {e.attempt} of {e.max_attempts})", "36"))

    def _verify_result(self, e: ev.VerificationResult) -> None:
        secs = f"{e.duration_ms / 1000:.1f}s"
        if e.passed:
            self._line(self._style(f"  ✓ verification passed ({secs})", "32"))
            return
        how = "timed out" if e.timed_out else f"exit {e.exit_code}"
        self._line(self._style(f"  ✗ verification failed ({how}, {secs})", "31"))
        if self.verbose and e.output_tail:
            self._line(self._style(e.output_tail, "2"))

    def _schema_check(self, e: ev.OutputSchemaCheck) -> None:
        if not e.valid:
            self._line(self._style(f"  ✗ the answer does not satisfy --output-schema: {_one_line(e.error, 200)}",
                                   "31"))

    def _diff(self, e: ev.Diff) -> None:
        if self.verbose:
            self._line(e.diff.rstrip("\n"))

    def _retry(self, e: ev.Retry) -> None:
        self._line(f"[retrying the turn (attempt {e.attempt}) in {e.delay_s:.1f}s: {e.error}]", self.err)

    def _compaction(self, e: ev.Compaction) -> None:
        self._line(self._style(f"[compaction: {e.stage} {e.tokens_before} → {e.tokens_after} tokens]", "2"),
                   self.err)

    def _permission(self, e: ev.PermissionRequest) -> None:
        if e.decision != "denied":
            return
        title = self._titles.get(e.id) or f"{e.tool} {_one_line(e.input)}"
        why = " (needs approval, and a headless run cannot ask)" if e.decided_by == "headless" else ""
        self._line(self._style(f"  ✗ not allowed{why}: {title}", "33"), self.err)

    def _note(self, e: ev.ContextNote) -> None:
        if e.kind == "tools":
            self._line(self._style(e.text, "33"), self.err)

    def _hook_blocked(self, e: ev.HookBlocked) -> None:
        self._line(self._style(f"  ✗ blocked by a {e.hook_event} hook: {_one_line(e.reason, 300)}", "33"), self.err)

    def _hook_warning(self, e: ev.HookWarning) -> None:
        self._line(self._style(f"warning: {e.hook_event} hook: {_one_line(e.message, 300)}", "33"), self.err)

    def _failed(self, e: ev.Failed) -> None:
        self._line(f"error: {e.error}", self.err)

    def _done(self, e: ev.Done) -> None:
        self._end_line()
        if e.subtype == "error_max_turns":
            self._line(f"stopped: reached the turn limit ({e.num_turns} turns)", self.err)
        elif e.subtype == "error_budget":
            self._line("stopped: reached the token or cost budget", self.err)
        elif e.subtype in ("error_verification", "error_output_schema", "stopped_by_hook"):
            self._line(f"stopped: {e.result}", self.err)

    def _subagent_event(self, e: ev.SubagentEvent) -> None:
        self._subagent(e.event)

    def _subagent(self, e: ev.Event) -> None:
        """A subagent's event, indented under its call: its messages whole (not streamed), its tool calls."""
        if isinstance(e, (ev.TextDelta, ev.Usage)) or isinstance(e, ev.Done) and e.subtype == "success":
            return
        outer, self._indent = self._indent, self._indent + "  │ "
        try:
            if isinstance(e, ev.AssistantMessage):
                text = "".join(b.get("text", "") for b in e.message.get("content", []) if b.get("type") == "text")
                if text.strip():
                    self._line(self._style(text.strip(), "2"))
            else:
                self.handle(e)
        finally:
            self._indent = outer

    def finish(self, result: dict[str, Any]) -> None:
        self._end_line()
        u = result["usage"]
        cost = "" if result["cost_usd"] is None else f", ${result['cost_usd']:.4f}"
        sent = u["input_tokens"] + u["cache_read_input_tokens"] + u["cache_creation_input_tokens"]
        turns = result["num_turns"]
        self._line(self._style(
            f"[{result['subtype']}: {turns} turn{'' if turns == 1 else 's'}, {sent} in / {u['output_tokens']} out "
            f"tokens{cost}; session {result['session_id']}]", "2"), self.err)


_TEXT_HANDLERS: dict[type, Callable[[TextRenderer, Any], None]] = {
    ev.SubagentEvent: TextRenderer._subagent_event,
    ev.TextDelta: TextRenderer._text,
    ev.ToolCall: TextRenderer._tool_call,
    ev.ToolResultEvent: TextRenderer._tool_result,
    ev.TodoList: TextRenderer._todos,
    ev.VerificationStarted: TextRenderer._verify_started,
    ev.VerificationResult: TextRenderer._verify_result,
    ev.OutputSchemaCheck: TextRenderer._schema_check,
    ev.Diff: TextRenderer._diff,
    ev.Retry: TextRenderer._retry,
    ev.Compaction: TextRenderer._compaction,
    ev.PermissionRequest: TextRenderer._permission,
    ev.ContextNote: TextRenderer._note,
    ev.HookBlocked: TextRenderer._hook_blocked,
    ev.HookWarning: TextRenderer._hook_warning,
    ev.Failed: TextRenderer._failed,
    ev.Done: TextRenderer._done,
}


class StreamJsonRenderer:
    """One JSON object per line for every event, then the result object."""

    def __init__(self, out: TextIO | None = None):
        self.out = out or sys.stdout

    def header(self, text: str) -> None:
        pass

    def handle(self, e: ev.Event) -> None:
        self.out.write(json.dumps(e.to_dict(), ensure_ascii=False) + "\n")
        self.out.flush()

    def finish(self, result: dict[str, Any]) -> None:
        self.out.write(json.dumps(result, ensure_ascii=False) + "\n")
        self.out.flush()


class JsonRenderer:
    """Nothing while running; one result object at the end."""

    def __init__(self, out: TextIO | None = None):
        self.out = out or sys.stdout

    def header(self, text: str) -> None:
        pass

    def handle(self, e: ev.Event) -> None:
        if isinstance(e, ev.Failed):
            sys.stderr.write(f"error: {e.error}\n")

    def finish(self, result: dict[str, Any]) -> None:
        self.out.write(json.dumps(result, ensure_ascii=False) + "\n")
        self.out.flush()


def make_renderer(fmt: str, verbose: bool = False):
    if fmt == "json":
        return JsonRenderer()
    if fmt == "stream-json":
        return StreamJsonRenderer()
    return TextRenderer(verbose=verbose)
