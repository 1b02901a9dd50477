"""The deterministic ledger: facts kept from loop events and the transcript, never from a model's memory.

It records every user message verbatim, files read and written (with sha256 when a tool reported one),
commands with exit codes, test results (pytest / jest / go test summaries are parsed), failed approaches
(the edit or command that failed and its error line), approvals denied, and the latest todo list.
Entries are keyed by tool-call id, so feeding the same call from both the event stream and the transcript
records it once. What a call did is read from its kind and its result's meta (see `compaction.toolcalls`).
The ledger serialises to plain JSON (`to_dict`/`from_dict`) and renders as a compact text section within a
token budget (`render`), newest and most important facts first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

from ghostline.compaction.testruns import parse_test_output
from ghostline.compaction.toolcalls import (
    EDIT,
    READ,
    SHELL,
    KindOf,
    command_of,
    describe_call,
    error_line,
    every_tool_other,
    exit_code_of,
    files_changed,
    is_denied,
    read_path,
    short,
    todos_of,
    tool_path,
)
from ghostline.compaction.transcript import Message, TextBlock, ToolResultBlock, ToolUseBlock

HEADER = "## Ledger (recorded from tool events; authoritative: where the summary disagrees, the ledger is right)"


class _Section(NamedTuple):
    title: str
    lines: list[str]  # newest first
    must_keep: bool  # never dropped for the budget: shortened instead


@dataclass
class Ledger:
    turn: int = 0
    user_messages: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    commands: list[dict[str, Any]] = field(default_factory=list)
    tests: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    denied: list[dict[str, Any]] = field(default_factory=list)
    todos: dict[str, Any] | None = None
    seen_results: list[str] = field(default_factory=list)
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    ignore_texts: list[str] = field(default_factory=list)  # texts that are not user messages (re-injected instructions)
    # the caller's tool-name → kind lookup; not part of the record
    kind_of: KindOf = field(default=every_tool_other, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._seen = set(self.seen_results)
        self._user_texts = {m["text"] for m in self.user_messages}

    # -- serialisation ----------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "turn": self.turn, "user_messages": self.user_messages, "files": self.files,
            "commands": self.commands, "tests": self.tests, "failures": self.failures, "denied": self.denied,
            "todos": self.todos, "seen_results": self.seen_results, "pending": self.pending,
            "ignore_texts": self.ignore_texts,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], kind_of: KindOf = every_tool_other) -> Ledger:
        fields = {k: d[k] for k in cls.__dataclass_fields__ if k in d and k != "kind_of"}
        return cls(**fields, kind_of=kind_of)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True, indent=1)

    # -- feeding -----------------------------------------------------------------------------------------

    def observe(self, event: dict[str, Any]) -> None:
        """Feed one loop event dict (agent.events.*.to_dict())."""
        t = event.get("type")
        if t == "turn_started":
            self.turn = max(self.turn, int(event.get("turn") or 0))
        elif t == "user_message":
            self.add_user_message(str(event.get("text") or ""))
        elif t == "assistant_message":
            msg = event.get("message") or {}
            for b in msg.get("content") or []:
                if isinstance(b, dict) and b.get("type") == "tool_use":
                    self.add_tool_call(str(b.get("id")), str(b.get("name")), b.get("input") or {})
        elif t == "tool_call":
            self.add_tool_call(str(event.get("id")), str(event.get("name")), event.get("input") or {})
        elif t == "tool_result":
            self.add_tool_result(str(event.get("id")), str(event.get("content") or ""),
                                 bool(event.get("is_error")), event.get("meta") or {}, name=event.get("name"))
        elif t in ("permission_request", "approval_needed") and event.get("decision") == "denied":
            self._add_denied(str(event.get("tool")), event.get("input") or {}, str(event.get("reason") or ""))

    def ingest(self, messages: list[Message]) -> None:
        """Record what the transcript shows that events have not (a resumed session, a caller without events)."""
        for m in messages:
            for b in m.content:
                if isinstance(b, TextBlock) and m.role == "user":
                    self.add_user_message(b.text)
                elif isinstance(b, ToolUseBlock):
                    if b.id not in self._seen:
                        self.add_tool_call(b.id, b.name, b.input)
                elif isinstance(b, ToolResultBlock):
                    if b.tool_use_id not in self._seen:
                        self.add_tool_result(b.tool_use_id, b.content, b.is_error, b.meta)

    def add_user_message(self, text: str) -> None:
        text = text.strip()
        if not text or text in self._user_texts or any(text == ig for ig in self.ignore_texts):
            return
        if text.startswith("[compaction"):  # our own notes
            return
        self._user_texts.add(text)
        self.user_messages.append({"text": text, "turn": self.turn})

    def add_tool_call(self, call_id: str, name: str, inp: dict[str, Any]) -> None:
        if call_id in self._seen or call_id in self.pending:
            return
        self.pending[call_id] = {"name": name, "input": inp, "turn": self.turn}

    def add_tool_result(self, call_id: str, content: str, is_error: bool, meta: dict[str, Any],
                        name: str | None = None) -> None:
        if call_id in self._seen:
            return
        self._seen.add(call_id)
        self.seen_results.append(call_id)
        call = self.pending.pop(call_id, None) or {"name": name or "?", "input": {}, "turn": self.turn}
        name = call["name"] if call.get("name") not in (None, "?") else (name or "?")
        inp = call.get("input") or {}
        turn = call.get("turn", self.turn)
        meta = meta or {}
        if is_denied(content, is_error, meta):
            self._add_denied(name, inp, error_line(content) or "denied")
            return
        todos = todos_of(meta)
        if todos is not None:
            self.todos = {"turn": turn, "items": todos}
        kind = self.kind_of(name)
        code = exit_code_of(meta)
        failed = is_error or (code is not None and code != 0)
        self._record_files(kind, name.lower(), inp, meta, turn, failed)
        test = self._record_command(call_id, name, inp, content, code, is_error, turn) if kind == SHELL else None
        ran_tests = test is not None and test["failed"] + test["errors"] > 0 and code not in (None, 0)
        if failed and not (ran_tests and _only_test_failure(test)):
            self.failures.append({"id": call_id, "turn": turn, "what": describe_call(name, inp, meta),
                                  "exit_code": code, "error": error_line(content)})

    def _record_files(self, kind: str | None, op: str, inp: dict[str, Any], meta: dict[str, Any], turn: int,
                      failed: bool) -> None:
        """A read of the file a read-kind result names; the files an edit-kind call (or any call reporting
        `files_changed`) wrote."""
        path = tool_path(inp, meta)
        changed = files_changed(meta)
        sha = meta.get("sha256") or meta.get("sha")
        if not failed:
            if kind == READ:
                shown = read_path(meta)
                if shown:
                    self._file_read(shown, turn, sha)
            elif path and (kind == EDIT or changed):
                self._file_written(path, turn, op, sha)
        for p in changed:
            if p != path:
                self._file_written(p, turn, op, None)

    def _file_read(self, path: str, turn: int, sha: str | None) -> None:
        f = self.files.setdefault(path, {"read": 0, "written": 0})
        f["read"] += 1
        f["read_turn"] = turn
        if sha:
            f["read_sha"] = sha

    def _file_written(self, path: str, turn: int, op: str, sha: str | None) -> None:
        f = self.files.setdefault(path, {"read": 0, "written": 0})
        f["written"] += 1
        f["write_turn"] = turn
        f["op"] = op
        if sha:
            f["write_sha"] = sha

    def _record_command(self, call_id: str, name: str, inp: dict[str, Any], content: str, code: int | None,
                        is_error: bool, turn: int) -> dict[str, Any] | None:
        """A shell call's command and exit code, and the test run it was (None when it was not one)."""
        entry = {"id": call_id, "command": command_of(inp) or describe_call(name, inp), "exit_code": code,
                 "turn": turn}
        if code is None and is_error:
            entry["exit_code"] = "error"
        self.commands.append(entry)
        test = parse_test_output(content)
        if test is not None:
            self.tests.append({"command": entry["command"], "turn": turn, "exit_code": code, **test})
        return test

    def _add_denied(self, tool: str, inp: dict[str, Any], reason: str) -> None:
        what = describe_call(tool, inp)
        if any(d["what"] == what and d["turn"] == self.turn for d in self.denied):
            return  # the approval event and the refused result of the same call
        self.denied.append({"turn": self.turn, "what": what, "reason": short(reason, 200)})

    # -- views -------------------------------------------------------------------------------------------

    @property
    def files_modified(self) -> list[str]:
        return [p for p, f in self.files.items() if f.get("written")]

    @property
    def files_read(self) -> list[str]:
        return [p for p, f in self.files.items() if f.get("read") and not f.get("written")]

    def render(self, count: Callable[[str], int] | None = None, max_tokens: int = 4000,
               full_path: str | None = None) -> str:
        """The ledger as a compact text section, within about `max_tokens` (facts that matter most first)."""
        count = count or (lambda s: len(s) // 4 + 1)
        header = HEADER + (f"\nFull ledger (all entries, JSON): {full_path}" if full_path else "")
        sections = [self._user_section(), self._failures_section(), self._modified_section(),
                    self._denied_section(), self._tests_section(), self._todo_section(),
                    self._commands_section(), self._read_section()]
        return _fit(header, [s for s in sections if s is not None], count, max_tokens)

    # -- render: one section each, lines newest first ------------------------------------------------------

    def _user_section(self) -> _Section:
        lines = [f"- [turn {m['turn']}] {m['text']}" for m in reversed(self.user_messages)]
        return _Section("User messages (verbatim, newest first)", lines, True)

    def _failures_section(self) -> _Section:
        lines = []
        for f in reversed(self.failures):
            code = f.get("exit_code")
            lines.append(f"- [turn {f['turn']}] {f['what']}" + (f" → exit {code}" if code not in (None, "error") else "")
                         + (f": {f['error']}" if f.get("error") else ""))
        return _Section("Failed approaches (do not repeat blindly)", lines, True)

    def _modified_section(self) -> _Section:
        lines = []
        for p in sorted(self.files_modified, key=lambda p: (-self.files[p].get("write_turn", 0), p)):
            f = self.files[p]
            sha = f.get("write_sha")
            lines.append(f"- {p} ({f.get('op', 'write')} ×{f['written']}, turn {f.get('write_turn')}"
                         + (f", sha256 {sha[:12]}" if sha else "") + ")")
        return _Section("Files modified", lines, True)

    def _denied_section(self) -> _Section:
        lines = [f"- [turn {d['turn']}] {d['what']}: {d['reason']}" for d in reversed(self.denied)]
        return _Section("Approvals denied", lines, True)

    def _tests_section(self) -> _Section:
        latest: dict[str, dict[str, Any]] = {}
        for t in self.tests:
            latest[t["command"]] = t
        lines = []
        for t in sorted(latest.values(), key=lambda t: -t["turn"]):
            line = (f"- [turn {t['turn']}] `{short(t['command'], 80)}`: {t['passed']} passed, {t['failed']} failed"
                    + (f", {t['errors']} errors" if t.get("errors") else ""))
            if t.get("failing"):
                line += "; failing: " + ", ".join(t["failing"][:8])
            lines.append(line)
        return _Section("Test status (latest run per command)", lines, False)

    def _todo_section(self) -> _Section | None:
        if self.todos is None:
            return None
        items = self.todos.get("items")
        lines = []
        if isinstance(items, list):
            for it in items:
                if isinstance(it, dict):
                    lines.append("- " + " ".join(f"{k}={short(str(v), 80)}" for k, v in it.items()))
                else:
                    lines.append(f"- {short(str(it), 120)}")
        else:
            lines.append(f"- {short(json.dumps(items, default=str), 400)}")
        return _Section(f"Todo (as of turn {self.todos.get('turn')})", lines, True)

    def _commands_section(self) -> _Section:
        lines = [f"- [turn {c['turn']}] `{short(str(c['command']), 100)}` → exit {c['exit_code']}"
                 for c in reversed(self.commands)]
        return _Section("Commands (newest first)", lines, False)

    def _read_section(self) -> _Section:
        read = sorted(self.files_read, key=lambda p: (-self.files[p].get("read_turn", 0), p))
        lines = [", ".join(p + (f"@{self.files[p]['read_sha'][:8]}" if self.files[p].get("read_sha") else "")
                           for p in read)] if read else []
        return _Section("Files read (not modified)", lines, False)


def _fit(header: str, sections: list[_Section], count: Callable[[str], int], max_tokens: int) -> str:
    """The sections in order under the header, within about `max_tokens`: a section that is not must-keep stops
    at the budget (and is left out when none of it fits); a must-keep one shortens its lines instead."""
    out = [header]
    used = count(header)
    for section in sections:
        if not section.lines:
            continue
        chunk, cost = _fit_section(section, count, max_tokens - used)
        if chunk is None:
            continue
        out.append(chunk)
        used += cost
    return "\n\n".join(out)


def _fit_section(section: _Section, count: Callable[[str], int], budget: int) -> tuple[str | None, int]:
    chunk = [f"### {section.title}"]
    cost = count(chunk[0]) + 1
    shown = 0
    for i, ln in enumerate(section.lines):
        c = count(ln) + 1
        if cost + c > budget:
            if not section.must_keep:
                break
            # never drop a must-keep fact: shorten it instead (older entries harder)
            ln = short(ln, 600 if i < 10 else 160)
            c = count(ln) + 1
        chunk.append(ln)
        cost += c
        shown += 1
    if shown < len(section.lines):
        chunk.append(f"- … {len(section.lines) - shown} older entries in the full ledger")
    if shown == 0 and not section.must_keep:
        return None, 0
    return "\n".join(chunk), cost


def _only_test_failure(test: dict[str, Any]) -> bool:
    """A test run that ran and reported failures is test status, not a failed approach."""
    return test["passed"] + test["failed"] + test["errors"] > 0
