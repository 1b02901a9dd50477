"""Sessions: an append-only JSONL event log per run, flushed per event, from which a transcript is rebuilt.

The loop and `--resume` share `apply_event`, so a resumed transcript is exactly what the loop had built,
and a run killed mid-turn keeps every tool result that finished.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ghostline.compaction.transcript import Message, TextBlock, ToolResultBlock, block_from_dict
from ghostline.tools.images import blocks_from_meta

INTERRUPTED = "interrupted: the run stopped before this tool call finished; nothing is known of its effect"


def apply_event(messages: list[Message], event: dict[str, Any]) -> None:
    """Fold one event into the transcript (only the events that carry transcript content do anything)."""
    kind = event.get("type")
    if kind == "user_message":
        _add_user_text(messages, event["text"])
        for image in event.get("images") or ():
            messages[-1].content.append(block_from_dict({**image, "type": "image"}))
    elif kind == "assistant_message":
        messages.append(Message.from_dict(event["message"]))
    elif kind == "tool_result":
        meta = dict(event.get("meta") or {})
        block = ToolResultBlock(event["id"], event["content"], bool(event.get("is_error")), meta,
                                images=blocks_from_meta(meta))
        if messages and messages[-1].role == "user" and messages[-1].tool_results:
            messages[-1].content.append(block)
        else:
            messages.append(Message(role="user", content=[block]))
    elif kind == "context_note":
        _add_user_text(messages, event["text"])
    elif kind == "shell_run":
        _add_user_text(messages, shell_run_text(event))
    elif kind == "transcript_replaced":
        messages[:] = [Message.from_dict(m) for m in event["messages"]]
    # Every other event (turn_started, usage, verification_started/_result, done, ...) carries no transcript
    # content: what a failed verification tells the model is its own user_message event.


def _add_user_text(messages: list[Message], text: str) -> None:
    if messages and messages[-1].role == "user":
        messages[-1].content.append(TextBlock(text))
    else:
        messages.append(Message.user(text))


def shell_run_text(event: dict[str, Any]) -> str:
    """What the model reads of a `!command` the user ran."""
    how = "timed out and was killed" if event.get("timed_out") else f"exited with code {event['exit_code']}"
    output = str(event.get("output") or "").rstrip() or "(no output)"
    return f"[The user ran `{event['command']}` in the shell; it {how}. Its output:]\n```\n{output}\n```"


def close_dangling_tool_uses(messages: list[Message]) -> list[str]:
    """Give every tool_use without a result an 'interrupted' error result, so the pairs stay valid. Returns ids."""
    if not messages or messages[-1].role != "assistant" and not (
        len(messages) >= 2 and messages[-2].role == "assistant" and messages[-1].tool_results
    ):
        return []
    assistant = messages[-1] if messages[-1].role == "assistant" else messages[-2]
    done = {b.tool_use_id for b in (messages[-1].tool_results if messages[-1].role == "user" else [])}
    missing = [u.id for u in assistant.tool_uses if u.id not in done]
    if not missing:
        return []
    blocks = [ToolResultBlock(i, INTERRUPTED, True, {"interrupted": True}) for i in missing]
    if messages[-1].role == "user":
        messages[-1].content.extend(blocks)
    else:
        messages.append(Message(role="user", content=list(blocks)))
    return missing


def new_session_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


@dataclass
class SessionInfo:
    id: str
    cwd: str
    model: str
    created: float
    task: str
    status: str
    path: Path


class Session:
    def __init__(self, root: Path, session_id: str):
        self.id = session_id
        self.root = root
        self.path = root / f"{session_id}.jsonl"
        self.dir = root / session_id  # large outputs and other files kept beside the log
        self._fh = None
        self._pending_meta: dict[str, Any] | None = None

    @classmethod
    def create(cls, root: Path, *, cwd: Path, model: str) -> Session:
        """A new session. Its file appears with the first record appended after the meta, so a TUI opened and
        closed without a message leaves nothing behind."""
        s = cls(root, new_session_id())
        s._pending_meta = {"type": "session_meta", "id": s.id, "cwd": str(cwd), "model": model,
                           "created": time.time()}
        return s

    @property
    def exists(self) -> bool:
        return self._pending_meta is None and self.path.is_file()

    @classmethod
    def open(cls, root: Path, session_id: str) -> Session:
        s = cls(root, session_id)
        if not s.path.is_file():
            raise FileNotFoundError(session_id)
        return s

    @property
    def output_dir(self) -> Path:
        return self.dir / "outputs"

    def append(self, record: dict[str, Any]) -> None:
        if self._fh is None:
            self.root.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held for the session's life
        if self._pending_meta is not None:
            meta, self._pending_meta = self._pending_meta, None
            self.append(meta)
        self._fh.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._fh.flush()  # one write per event: a SIGKILL loses at most the event being written

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def records(self) -> Iterator[dict[str, Any]]:
        if not self.path.is_file():
            return
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line torn by a kill mid-write

    def meta(self) -> dict[str, Any]:
        if self._pending_meta is not None:
            return dict(self._pending_meta)
        for r in self.records():
            if r.get("type") == "session_meta":
                return r
        return {}

    def current_model(self) -> str | None:
        """The model the session last used (/model may have switched it)."""
        model = None
        for r in self.records():
            if r.get("type") in ("session_meta", "model_changed"):
                model = r.get("model") or model
        return model if model != "(no model)" else None

    def transcript(self) -> list[Message]:
        messages: list[Message] = []
        if self._pending_meta is not None:
            return messages
        for r in self.records():
            apply_event(messages, r)
        close_dangling_tool_uses(messages)
        return messages


@dataclass
class SessionTotals:
    """What a session has cost so far, over every run of it (the TUI shows these; they survive a resume)."""

    turns: int = 0
    input_tokens: int = 0  # all input, cached included
    cached_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None

    def add_usage(self, event: dict[str, Any], run_cost_before: float | None) -> None:
        self.cached_tokens += int(event.get("cache_read_input_tokens") or 0)
        self.input_tokens += (int(event.get("input_tokens") or 0) + int(event.get("cache_read_input_tokens") or 0)
                              + int(event.get("cache_creation_input_tokens") or 0))
        self.output_tokens += int(event.get("output_tokens") or 0)
        run_cost = event.get("cost_usd")
        if run_cost is not None:  # cumulative within a run: add what this turn added
            self.cost_usd = (self.cost_usd or 0.0) + float(run_cost) - (run_cost_before or 0.0)


def session_totals(records: Iterator[dict[str, Any]]) -> SessionTotals:
    """Turns, tokens and cost over every run of a session, subagents' turns and tokens included (a subagent's
    usage events report the run's cost so far, like the main loop's)."""
    totals = SessionTotals()
    run_cost: float | None = None
    for r in records:
        r = innermost_record(r)
        kind = r.get("type")
        if kind == "session_started":
            run_cost = None  # a new run: its usage events count cost from zero again
        elif kind == "turn_started":
            totals.turns += 1
        elif kind == "usage":
            totals.add_usage(r, run_cost)
            run_cost = r.get("cost_usd", run_cost)
    return totals


def innermost_record(record: dict[str, Any]) -> dict[str, Any]:
    """A logged event, or the subagent's event a `subagent_event` record carries (however deep)."""
    while record.get("type") == "subagent_event" and isinstance(record.get("event"), dict):
        record = record["event"]
    return record


def latest_todos(records: Iterator[dict[str, Any]]) -> list[dict[str, Any]]:
    """The main agent's todo list as last written (a subagent's own lists are its business): what a resumed
    session shows as its checklist. Empty when there is none."""
    todos: list[dict[str, Any]] = []
    for r in records:
        if r.get("type") == "todo_list" and isinstance(r.get("items"), list):
            todos = r["items"]
    return todos


def sessions_root(data_dir: Path) -> Path:
    return data_dir / "sessions"


def list_sessions(root: Path, cwd: Path | None = None) -> list[SessionInfo]:
    """Newest first; only those started in `cwd` when given."""
    out: list[SessionInfo] = []
    if not root.is_dir():
        return out
    for p in root.glob("*.jsonl"):
        s = Session(root, p.stem)
        meta: dict[str, Any] = {}
        task = ""
        status = "incomplete"
        try:
            for r in s.records():
                t = r.get("type")
                if t == "session_meta":
                    meta = r
                elif t == "user_message" and not task:
                    task = r.get("text", "")
                elif t in ("done", "failed"):
                    status = r.get("subtype", t)
                elif t == "interrupted":
                    status = "interrupted"
        except OSError:
            continue
        if not meta:
            continue
        if cwd is not None and os.path.realpath(meta.get("cwd", "")) != os.path.realpath(cwd):
            continue
        out.append(SessionInfo(s.id, meta.get("cwd", ""), meta.get("model", ""), meta.get("created", 0.0),
                               task, status, p))
    out.sort(key=lambda i: (i.created, i.id), reverse=True)
    return out
