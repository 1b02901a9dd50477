"""The deterministic ledger: facts kept from loop events and the transcript, never from a model's memory.

It records every user message verbatim, files read and written (with sha256 when a tool reported one),
commands with exit codes, test results (pytest / jest / go test summaries are parsed), failed approaches
(the edit or command that failed and its error line), approvals denied, and the latest todo list.
Entries are keyed by tool-call id, so feeding the same call from both the event stream and the transcript
records it once. The ledger serialises to plain JSON (`to_dict`/`from_dict`) and renders as a compact text
section within a token budget (`render`), newest and most important facts first.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from ghostline.compaction.transcript import Message, TextBlock, ToolResultBlock, ToolUseBlock

READ_TOOLS = frozenset({"read", "read_file", "view", "cat", "open"})
WRITE_TOOLS = frozenset({"write", "write_file", "create", "create_file"})
EDIT_TOOLS = frozenset({"edit", "multi_edit", "multiedit", "str_replace", "apply_patch", "patch", "edit_file"})
COMMAND_TOOLS = frozenset({"bash", "shell", "run", "exec", "command", "terminal"})
TODO_TOOLS = frozenset({"todo", "todo_write", "todowrite", "todos", "update_todos"})

PATH_KEYS = ("path", "file_path", "filename", "file", "target")


def tool_path(name: str, inp: dict[str, Any] | None, meta: dict[str, Any] | None = None) -> str | None:
    """The file a tool call is about, from the result's meta or the call's input."""
    for src in (meta or {}, inp or {}):
        for k in PATH_KEYS:
            v = src.get(k)
            if isinstance(v, str) and v:
                return v
    return None


def tool_command(inp: dict[str, Any] | None, meta: dict[str, Any] | None = None) -> str | None:
    for src in (meta or {}, inp or {}):
        for k in ("command", "cmd", "script"):
            v = src.get(k)
            if isinstance(v, str) and v:
                return v
            if isinstance(v, list) and v:
                return " ".join(str(x) for x in v)
    return None


def exit_code_of(meta: dict[str, Any] | None) -> int | None:
    if not meta:
        return None
    for k in ("exit_code", "returncode", "exit_status", "status_code"):
        v = meta.get(k)
        if isinstance(v, bool):
            continue
        if isinstance(v, int):
            return v
    return None


# -- test summaries ------------------------------------------------------------------------------------------

_PYTEST_SUMMARY = re.compile(
    r"^=*\s*((?:\d+ (?:failed|passed|errors?|skipped|xfailed|xpassed|warnings?|deselected|rerun)"
    r"(?:, )?)+)\s+in\s+[\d.]+\s*s", re.M)
_PYTEST_COUNT = re.compile(r"(\d+) (failed|passed|errors?|skipped|xfailed|xpassed)")
_PYTEST_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)(?: - (.*))?$", re.M)
_JEST_TESTS = re.compile(r"^Tests:\s+(.*?(\d+) total)", re.M)
_JEST_COUNT = re.compile(r"(\d+) (failed|passed|skipped|todo)")
_JEST_FAILED = re.compile(r"^\s*● (.+?)\s*$", re.M)
_GO_RESULT = re.compile(r"^(ok|FAIL|---\s*FAIL:|---\s*PASS:)\s+(\S+)", re.M)


def parse_test_output(text: str) -> dict[str, Any] | None:
    """Counts and failing test names from a pytest, jest or `go test` run, or None if it is not one."""
    if not text:
        return None
    tail = text[-20000:]
    found = list(_PYTEST_SUMMARY.finditer(tail))
    if found:
        m = found[-1]
        counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
        for n, kind in _PYTEST_COUNT.findall(m.group(1)):
            key = "errors" if kind.startswith("error") else kind
            if key in counts:
                counts[key] += int(n)
        failing = [f.group(1) for f in _PYTEST_FAILED.finditer(tail)][:20]
        return {"framework": "pytest", **counts, "failing": failing, "summary": m.group(0).strip("= ").strip()}
    jfound = list(_JEST_TESTS.finditer(tail))
    if jfound:
        jm = jfound[-1]
        counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
        for n, kind in _JEST_COUNT.findall(jm.group(1)):
            if kind in counts:
                counts[kind] += int(n)
        failing = [f.group(1) for f in _JEST_FAILED.finditer(tail)][:20]
        return {"framework": "jest", **counts, "failing": failing, "summary": "Tests: " + jm.group(1)}
    go = _GO_RESULT.findall(tail)
    if go:
        passed = sum(1 for k, _ in go if k.endswith("PASS:"))
        failing = [n for k, n in go if k.replace(" ", "").endswith("FAIL:")]
        pkg_fail = [n for k, n in go if k == "FAIL"]
        pkg_ok = [n for k, n in go if k == "ok"]
        return {"framework": "go", "passed": passed or len(pkg_ok), "failed": len(failing) or len(pkg_fail),
                "errors": 0, "skipped": 0, "failing": (failing or pkg_fail)[:20],
                "summary": f"go test: {len(pkg_ok)} ok, {len(pkg_fail)} FAIL packages"}
    return None


_EXACT_ERROR = re.compile(
    r"^(?:E\s{2,}\S|error\b|fatal:|panic:|Traceback|[\w.]*(?:Error|Exception|Failure)\b:?)", re.I)
_STRONG_ERROR = re.compile(r"^FAIL\b|(?:Error|Exception)[:(]|error:", re.I)
_ERROR_LINE = re.compile(
    r"(error|exception|traceback|failed|fatal|denied|not found|no such|cannot|can't|invalid|refused|"
    r"mismatch|panic|undefined|unexpected)", re.I)


def error_line(text: str, limit: int = 240) -> str:
    """The most telling line of an error output: the last line that starts like an error (`E   KeyError: ...`,
    `ValueError: ...`, `error: ...`, `fatal: ...`), else the last line that mentions one, else the first line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return ""
    strong = weak = None
    for ln in reversed(lines[-80:]):
        if ln.startswith("[") or "=====" in ln:
            continue
        if _EXACT_ERROR.search(ln):
            return ln[:limit]
        if strong is None and _STRONG_ERROR.search(ln):
            strong = ln
        elif weak is None and _ERROR_LINE.search(ln):
            weak = ln
    picked = strong or weak or lines[0]
    return picked[:limit]


def _short(s: str, n: int) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1] + "…"


def describe_call(name: str, inp: dict[str, Any] | None, meta: dict[str, Any] | None = None) -> str:
    """A one-line description of a tool call: `bash "pytest -q"`, `edit src/x.py`."""
    inp = inp or {}
    cmd = tool_command(inp, meta)
    if cmd and (name in COMMAND_TOOLS or "command" in inp):
        return f'{name} "{_short(cmd, 120)}"'
    path = tool_path(name, inp, meta)
    if path:
        extra = ""
        if name in EDIT_TOOLS and isinstance(inp.get("old_string"), str):
            extra = f' (old_string "{_short(inp["old_string"], 60)}")'
        return f"{name} {path}{extra}"
    for k in ("pattern", "query", "glob"):
        if isinstance(inp.get(k), str):
            return f'{name} "{_short(inp[k], 80)}"'
    return f"{name} {_short(json.dumps(inp, sort_keys=True, default=str), 100)}" if inp else name


_DENIED = re.compile(r"\b(declined|denied by|not approved|rejected by)\b", re.I)


def is_denied(content: str, is_error: bool, meta: dict[str, Any] | None) -> bool:
    """Whether a tool result says the call was refused (by the user or the sandbox policy)."""
    meta = meta or {}
    if meta.get("denied") or meta.get("rejected"):
        return True
    return bool(is_error and _DENIED.search(content[:300]))


# -- the ledger ----------------------------------------------------------------------------------------------

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
    def from_dict(cls, d: dict[str, Any]) -> Ledger:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

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
        elif t == "approval_needed" and event.get("decision") == "denied":
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
        if name.lower() in TODO_TOOLS:
            self.todos = {"turn": self.turn, "items": inp.get("todos", inp.get("items", inp))}

    def add_tool_result(self, call_id: str, content: str, is_error: bool, meta: dict[str, Any],
                        name: str | None = None) -> None:
        if call_id in self._seen:
            return
        self._seen.add(call_id)
        self.seen_results.append(call_id)
        call = self.pending.pop(call_id, None) or {"name": name or "?", "input": {}, "turn": self.turn}
        name = call["name"] if call.get("name") not in (None, "?") else (name or "?")
        lname = name.lower()
        inp = call.get("input") or {}
        turn = call.get("turn", self.turn)
        meta = meta or {}
        if is_denied(content, is_error, meta):
            self._add_denied(name, inp, error_line(content) or "denied")
            return
        path = tool_path(lname, inp, meta)
        sha = meta.get("sha256") or meta.get("sha")
        code = exit_code_of(meta)
        failed = is_error or (code is not None and code != 0)
        if path and not failed:
            f = self.files.setdefault(path, {"read": 0, "written": 0})
            if lname in READ_TOOLS:
                f["read"] += 1
                f["read_turn"] = turn
                if sha:
                    f["read_sha"] = sha
            elif lname in WRITE_TOOLS or lname in EDIT_TOOLS or meta.get("files_changed"):
                f["written"] += 1
                f["write_turn"] = turn
                f["op"] = lname
                if sha:
                    f["write_sha"] = sha
        for changed in meta.get("files_changed") or []:
            if isinstance(changed, str) and changed != path:
                f = self.files.setdefault(changed, {"read": 0, "written": 0})
                f["written"] += 1
                f["write_turn"] = turn
                f["op"] = lname
        cmd = tool_command(inp, meta)
        test = None
        if cmd is not None or lname in COMMAND_TOOLS:
            entry = {"id": call_id, "command": cmd or describe_call(name, inp), "exit_code": code, "turn": turn}
            if code is None and is_error:
                entry["exit_code"] = "error"
            self.commands.append(entry)
            test = parse_test_output(content)
            if test is not None:
                self.tests.append({"command": entry["command"], "turn": turn, "exit_code": code, **test})
        if failed and not (test is not None and test["failed"] + test["errors"] > 0 and code not in (None, 0)
                           and lname in COMMAND_TOOLS and _only_test_failure(test)):
            self.failures.append({"id": call_id, "turn": turn, "what": describe_call(name, inp, meta),
                                  "exit_code": code, "error": error_line(content)})

    def _add_denied(self, tool: str, inp: dict[str, Any], reason: str) -> None:
        what = describe_call(tool, inp)
        if any(d["what"] == what and d["turn"] == self.turn for d in self.denied):
            return  # the approval event and the refused result of the same call
        self.denied.append({"turn": self.turn, "what": what, "reason": _short(reason, 200)})

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
        header = "## Ledger (recorded from tool events; authoritative: where the summary disagrees, the ledger is right)"
        if full_path:
            header += f"\nFull ledger (all entries, JSON): {full_path}"
        sections: list[tuple[str, list[str], bool]] = []  # title, lines newest-first, must-keep

        um = []
        for m in reversed(self.user_messages):
            um.append(f"- [turn {m['turn']}] {m['text']}")
        sections.append(("User messages (verbatim, newest first)", um, True))
        fa = [f"- [turn {f['turn']}] {f['what']}" + (f" → exit {f['exit_code']}" if f.get("exit_code") not in
              (None, "error") else "") + (f": {f['error']}" if f.get("error") else "")
              for f in reversed(self.failures)]
        sections.append(("Failed approaches (do not repeat blindly)", fa, True))
        fm = []
        for p, f in sorted(((p, f) for p, f in self.files.items() if f.get("written")),
                           key=lambda pf: (-pf[1].get("write_turn", 0), pf[0])):
            sha = f.get("write_sha")
            fm.append(f"- {p} ({f.get('op', 'write')} ×{f['written']}, turn {f.get('write_turn')}"
                      + (f", sha256 {sha[:12]}" if sha else "") + ")")
        sections.append(("Files modified", fm, True))
        dn = [f"- [turn {d['turn']}] {d['what']}: {d['reason']}" for d in reversed(self.denied)]
        sections.append(("Approvals denied", dn, True))
        ts = []
        latest: dict[str, dict[str, Any]] = {}
        for t in self.tests:
            latest[t["command"]] = t
        for t in sorted(latest.values(), key=lambda t: -t["turn"]):
            line = (f"- [turn {t['turn']}] `{_short(t['command'], 80)}`: {t['passed']} passed, {t['failed']} failed"
                    + (f", {t['errors']} errors" if t.get("errors") else ""))
            if t.get("failing"):
                line += "; failing: " + ", ".join(t["failing"][:8])
            ts.append(line)
        sections.append(("Test status (latest run per command)", ts, False))
        if self.todos is not None:
            items = self.todos.get("items")
            td = []
            if isinstance(items, list):
                for it in items:
                    if isinstance(it, dict):
                        td.append("- " + " ".join(f"{k}={_short(str(v), 80)}" for k, v in it.items()))
                    else:
                        td.append(f"- {_short(str(it), 120)}")
            else:
                td.append(f"- {_short(json.dumps(items, default=str), 400)}")
            sections.append((f"Todo (as of turn {self.todos.get('turn')})", td, True))
        cm = [f"- [turn {c['turn']}] `{_short(str(c['command']), 100)}` → exit {c['exit_code']}"
              for c in reversed(self.commands)]
        sections.append(("Commands (newest first)", cm, False))
        fr = sorted(self.files_read, key=lambda p: (-self.files[p].get("read_turn", 0), p))
        fr_lines = [", ".join(f"{p}" + (f"@{self.files[p]['read_sha'][:8]}" if self.files[p].get("read_sha") else "")
                              for p in fr)] if fr else []
        sections.append(("Files read (not modified)", fr_lines, False))

        out = [header]
        used = count(header)
        for title, lines, must in sections:
            if not lines:
                continue
            chunk = [f"### {title}"]
            cost = count(chunk[0]) + 1
            shown = 0
            for i, ln in enumerate(lines):
                c = count(ln) + 1
                if used + cost + c > max_tokens:
                    if must:
                        # never drop a must-keep fact: shorten it instead (older entries harder)
                        ln = _short(ln, 600 if i < 10 else 160)
                        c = count(ln) + 1
                    else:
                        break
                chunk.append(ln)
                cost += c
                shown += 1
            if shown < len(lines):
                chunk.append(f"- … {len(lines) - shown} older entries in the full ledger")
            if shown == 0 and not must:
                continue
            out.append("\n".join(chunk))
            used += cost
        return "\n\n".join(out)


def _only_test_failure(test: dict[str, Any]) -> bool:
    """A test run that ran and reported failures is test status, not a failed approach."""
    return test["passed"] + test["failed"] + test["errors"] > 0
