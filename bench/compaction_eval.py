"""Compaction evaluation: long scripted sessions with planted facts, probed after the session.

    .venv/bin/python bench/compaction_eval.py              # 220 turns, 32k and 16k windows
    .venv/bin/python bench/compaction_eval.py --quick      # 60 turns, one window (smoke)

A scripted session (reads of large files, test runs with long logs, build logs, greps, edits, a todo list, user
constraints arriving mid-session, decisions, failed approaches) is replayed turn by turn against three
strategies, in the same run:

* ghostline — the five-stage `compaction.Compactor` (with a scripted summariser that forgets things, as models
  do; the ledger must save the facts);
* none — no compaction (shows the overflow);
* naive — "summarise everything at 90%" with the same summariser, no ledger, no budget/snip/microcompact.

A simulated provider counts the request with a slightly different tokenizer (×1.07, so calibration has something
to learn) and rejects requests over the real window with a context-length error (the strategy must recover).
After the session each planted fact is probed: present in the final context, or reachable by a path named there
(a saved full output, the outputs index or the ledger file). Reported: retention by fact type and age, tokens
per task, compactions per 100 turns, max context fill, context-length errors, prompt-prefix stability, and the
per-turn time of the deterministic stages (stages 1-3 on a 200-turn transcript).

`--loop` also drives the real agent loop (agent/loop.py) against tests/fakeserver.py when both exist.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ghostline.compaction import (  # noqa: E402
    CompactionConfig,
    Compactor,
    ContextOverflow,
    TokenCounter,
    validate_pairs,
)
from ghostline.compaction.transcript import Message, SummaryBlock, TextBlock, ToolResultBlock, ToolUseBlock  # noqa: E402

SYSTEM = ("You are Ghostline, a coding agent. Use the tools to read, edit and test code in the workspace. "
          "Be precise; verify changes by running the tests.")
AGENT_MD = ("# AGENT.md\nProject rules: run `make test` before finishing; use 4-space indents; never commit; "
            "the public API lives in src/pkg/api.py and must stay backwards compatible. AGENTMD-MARKER-7731")
TOOLS = [
    {"name": "read", "description": "Read a file.", "input_schema": {"type": "object", "properties": {
        "path": {"type": "string"}, "offset": {"type": "integer"}, "limit": {"type": "integer"}}}},
    {"name": "edit", "description": "Replace old_string with new_string in a file.", "input_schema": {
        "type": "object", "properties": {"path": {"type": "string"}, "old_string": {"type": "string"},
                                         "new_string": {"type": "string"}}}},
    {"name": "write", "description": "Write a whole file.", "input_schema": {"type": "object", "properties": {
        "path": {"type": "string"}, "content": {"type": "string"}}}},
    {"name": "bash", "description": "Run a shell command.", "input_schema": {"type": "object", "properties": {
        "command": {"type": "string"}}}},
    {"name": "grep", "description": "Search file contents.", "input_schema": {"type": "object", "properties": {
        "pattern": {"type": "string"}}}},
    {"name": "todo", "description": "Write the todo list.", "input_schema": {"type": "object", "properties": {
        "todos": {"type": "array"}}}},
]


# The kinds the agent's tool registry gives these tools (the agent passes the registry's own lookup).
TOOL_KINDS = {"read": "read", "grep": "read", "glob": "read", "search": "read", "edit": "edit", "write": "edit",
              "bash": "shell"}


class ContextLengthError(ContextOverflow):
    """What a provider raises when the request is too long (a ContextOverflow, like the real one)."""


# -- the scripted session ------------------------------------------------------------------------------------

@dataclass
class Fact:
    kind: str  # constraint | identifier | error | decision | todo | file_modified | failed_approach
    text: str
    turn: int


@dataclass
class Turn:
    assistant: Message
    results: Message | None
    user_text: str | None = None  # a user message that arrives with the results
    events: list[dict[str, Any]] = field(default_factory=list)


def _h(*parts: Any) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


class Script:
    """A deterministic 200+ turn refactoring session with planted facts."""

    def __init__(self, n_turns: int, seed: int = 7, scale: float = 1.0):
        self.n = n_turns
        self.rng = random.Random(seed)
        self.scale = scale
        self.facts: list[Fact] = []
        self.files = [f"src/pkg/mod_{i:02d}.py" for i in range(24)]
        self.turns: list[Turn] = []
        self.task = ("Refactor the payment pipeline in src/pkg/ to use the new Router API, keep all tests green, "
                     "and report what changed.")
        self._todo_n = 0
        for t in range(n_turns):
            self.turns.append(self._turn(t))
        # a todo list replaces the previous one: only the latest list's ids are facts to keep
        last_todo = max((f.turn for f in self.facts if f.kind == "todo"), default=-1)
        self.facts = [f for f in self.facts if f.kind != "todo" or f.turn == last_todo]

    def _lines(self, n: int, tag: str) -> list[str]:
        r = self.rng
        words = ["alpha", "beta", "gamma", "delta", "router", "ledger", "payment", "tenant", "invoice", "cache"]
        return [f"{tag} {i:04d}: " + " ".join(r.choice(words) for _ in range(r.randint(4, 11))) for i in range(n)]

    def _turn(self, t: int) -> Turn:
        r = self.rng
        uid = f"toolu_{t:03d}"
        text = f"Turn {t}: continuing."
        user_text = None
        # planted facts on a schedule
        if t in (0, 35, 80, 130, 175, 205) or (t % 45 == 20):
            k = len([f for f in self.facts if f.kind == "constraint"])
            c = f"Constraint C-{k}: never modify files under legacy_{k}/ and keep the flag --strict-{_h(t)[:6]}"
            self.facts.append(Fact("constraint", c, t))
            user_text = c
        if t % 23 == 11:
            d = f"Decision D-{t}: use {r.choice(['WAL mode', 'a bounded queue', 'lazy imports', 'ULIDs'])} " \
                f"because {_h('why', t)[:8]}"
            self.facts.append(Fact("decision", d.split(' because')[0], t))
            text = d
        kind = t % 10
        if t % 25 == 3:
            self._todo_n += 1
            items = [{"id": f"T-{self._todo_n}{j}", "content": f"migrate caller {j} of batch {self._todo_n}",
                      "status": "pending" if j else "in_progress"} for j in range(4)]
            for it in items:
                self.facts.append(Fact("todo", it["id"], t))
            use = ToolUseBlock(uid, "todo", {"todos": items})
            res = ToolResultBlock(uid, "todo list updated (4 items)", False, {"todos": items})
        elif t % 17 == 9:
            # a failed approach: a command that fails with a distinctive error
            cmd = f"make migrate-{t} ENV=staging"
            err = f"fatal: migration lock held by pid {4000 + t} (lockfile .mig-{_h('lock', t)[:6]})"
            self.facts.append(Fact("failed_approach", cmd, t))
            self.facts.append(Fact("error", err, t))
            out = "\n".join(self._lines(int(40 * self.scale), "mig") + [err, "make: *** [migrate] Error 2"])
            use = ToolUseBlock(uid, "bash", {"command": cmd})
            res = ToolResultBlock(uid, out, False, {"exit_code": 2, "command": cmd})
        elif t % 19 == 7:
            # a failed edit
            path = self.files[t % len(self.files)]
            old = f"def legacy_entry_{t}(x):"
            err = f"Error: old_string not found in {path} (closest match at line {10 + t}: 'def legacy_entry_{t}(y):')"
            self.facts.append(Fact("failed_approach", old, t))
            self.facts.append(Fact("error", err, t))
            use = ToolUseBlock(uid, "edit", {"path": path, "old_string": old, "new_string": "def entry(x):"})
            res = ToolResultBlock(uid, err, True, {"path": path})
        elif kind in (0, 5):
            path = self.files[(t * 7) % len(self.files)]
            lines = self._lines(int(r.randint(120, 380) * self.scale), "L")
            ident = f"PaymentRouter_{_h('id', t)[:8]}"
            lines.insert(r.randint(0, len(lines) - 1), f"class {ident}(BaseRouter):  # planted")
            self.facts.append(Fact("identifier", ident, t))
            use = ToolUseBlock(uid, "read", {"path": path})
            res = ToolResultBlock(uid, "\n".join(lines), False, {"path": path, "sha256": _h("file", path, t)})
        elif kind in (1, 6):
            path = self.files[(t * 7 - 5) % len(self.files)]
            self.facts.append(Fact("file_modified", path, t))
            use = ToolUseBlock(uid, "edit", {"path": path, "old_string": f"router_v1_{t}",
                                             "new_string": f"router_v2_{t}"})
            res = ToolResultBlock(uid, f"Edited {path}: 1 replacement", False,
                                  {"path": path, "sha256": _h("w", path, t)})
        elif kind in (2, 7):
            cmd = "pytest -q tests/"
            lines = self._lines(int(r.randint(200, 700) * self.scale), "tests/test_x.py::case")
            err = f"E   KeyError: 'tenant_{_h('err', t)[:10]}'"
            lines.insert(len(lines) // 2, err)
            self.facts.append(Fact("error", err.strip(), t))
            failed = r.randint(1, 4)
            lines.append(f"FAILED tests/test_router.py::test_route_{t} - KeyError")
            lines.append(f"{failed} failed, {300 - failed} passed in {r.uniform(2, 9):.2f}s")
            use = ToolUseBlock(uid, "bash", {"command": cmd})
            res = ToolResultBlock(uid, "\n".join(lines), False, {"exit_code": 1, "command": cmd})
        elif kind == 3:
            cmd = "make build 2>&1 | tail -n +1"
            lines = self._lines(int(r.randint(300, 1400) * self.scale), "build")
            use = ToolUseBlock(uid, "bash", {"command": cmd})
            res = ToolResultBlock(uid, "\n".join(lines), False, {"exit_code": 0, "command": cmd})
        elif kind == 8 and t % 40 == 8:
            path = f"src/pkg/new_{t}.py"
            self.facts.append(Fact("file_modified", path, t))
            content = "\n".join(self._lines(int(150 * self.scale), "#"))
            use = ToolUseBlock(uid, "write", {"path": path, "content": content})
            res = ToolResultBlock(uid, f"Wrote {path} ({content.count(chr(10)) + 1} lines)", False,
                                  {"path": path, "sha256": _h("w", path, t), "action": "write"})
        else:
            pat = r.choice(["Router(", "legacy_entry", "tenant_id", "def route"])
            lines = [f"{self.files[r.randrange(len(self.files))]}:{r.randint(1, 400)}: {x}"
                     for x in self._lines(int(r.randint(20, 90) * self.scale), "m")]
            use = ToolUseBlock(uid, "grep", {"pattern": pat})
            res = ToolResultBlock(uid, "\n".join(lines), False, {})
        asst = Message("assistant", [TextBlock(text), use])
        content: list[Any] = [res]
        if user_text:
            content.append(TextBlock(user_text))
        events = [
            {"type": "turn_started", "turn": t + 1},
            {"type": "assistant_message", "message": asst.to_dict()},
            {"type": "tool_call", "id": use.id, "name": use.name, "input": use.input},
            {"type": "tool_result", "id": use.id, "name": use.name, "content": res.content,
             "is_error": res.is_error, "meta": res.meta},
        ]
        if user_text:
            events.append({"type": "user_message", "text": user_text})
        return Turn(asst, Message("user", content), user_text, events)


# -- a summariser that behaves like a model: keeps some things, forgets others --------------------------------

class ScriptedSummarizer:
    def __init__(self, window: int, counter: TokenCounter, keep: float = 0.6, max_tokens: int = 900):
        self.window = window
        self.counter = counter
        self.keep = keep
        self.max_tokens = max_tokens
        self.calls = 0
        self.overflows = 0

    async def __call__(self, prompt: list[Message], system: str = "") -> str:
        self.calls += 1
        text = "\n".join(m.text for m in prompt)
        n = self.counter.count(text)
        if n > self.window - self.max_tokens:
            self.overflows += 1
            raise ContextLengthError(f"prompt is too long: {n} tokens > {self.window - self.max_tokens}",
                                     limit=self.window)
        return self.summarise_text(text)

    def summarise_text(self, text: str) -> str:
        """Keep each relevant line with probability `keep` (forgetting the rest), as a model might; it obeys the
        prompt in not copying the ledger (appended by the compactor anyway) and writes each fact once."""
        rng = random.Random(_h(text))
        a, b = text.find("Facts recorded deterministically"), text.find("<transcript>")
        if 0 <= a < b:
            text = text[:a] + text[b:]
        pick = []
        for ln in text.splitlines():
            ln = ln.strip()
            while ln.startswith("- "):
                ln = ln[2:]
            ln = re.sub(r"^\[(?:user|assistant|turn \d+)\] ", "", ln)
            if ln:
                pick.append(ln)
        out = ["## Goal", "Refactor the payment pipeline to the Router API."]
        sections = {
            "Constraints and preferences": [ln for ln in pick if "Constraint C-" in ln],
            "Decisions (and why)": [ln for ln in pick if "Decision D-" in ln],
            "Errors and fixes": [ln for ln in pick if ln.startswith(("E   ", "fatal:", "Error:"))],
            "Files touched": [ln for ln in pick if ln.startswith("[tool call") and (" edit " in ln or " write " in ln)],
            "Todo (keep the ids)": [ln for ln in pick if '"id": "T-' in ln or "id=T-" in ln],
        }
        for title, lines in sections.items():
            out.append(f"## {title}")
            seen = set()
            for ln in lines:
                if ln in seen:
                    continue
                seen.add(ln)
                if rng.random() > self.keep:
                    continue
                out.append("- " + ln[:200])
        out += ["## Current step", "Migrating callers.", "## Next step", "Run the tests again."]
        return self.counter.truncate("\n".join(out), self.max_tokens)


# -- strategies ----------------------------------------------------------------------------------------------

class NaiveCompactor:
    """Summarise everything at 90%: one summary replaces the whole history (the last turn kept for validity)."""

    def __init__(self, window: int, reserved: int, summarize: Any, counter: TokenCounter, at: float = 0.9):
        self.eff = window - reserved
        self.summarize = summarize
        self.counter = counter
        self.at = at
        self.compactions = 0
        self.summary_prompt_tokens = 0

    async def _summarise(self, messages: list[Message], drop: int = 0) -> list[Message]:
        last = len(messages) - 1
        while last > 0 and messages[last].role != "assistant":
            last -= 1
        head, tail = messages[:last], messages[last:]
        items = []
        for m in head:
            for b in m.content:
                if isinstance(b, (TextBlock, SummaryBlock)):
                    items.append(f"[{m.role}] {b.text}")
                elif isinstance(b, ToolUseBlock):
                    items.append(f"[tool call] {b.name} {json.dumps(b.input)[:300]}")
                elif isinstance(b, ToolResultBlock):
                    items.append(f"[tool result] {b.content}")
        for _attempt in range(3):
            prompt = [Message.user("Summarise this session.\n" + "\n".join(items[drop:]))]
            self.summary_prompt_tokens += self.counter.messages_tokens(prompt)
            try:
                s = await self.summarize(prompt)
                break
            except ContextLengthError:
                drop += max(1, (len(items) - drop) // 2)
        else:
            s = "(summary failed)"
        self.compactions += 1
        return [Message("user", [SummaryBlock(s)])] + tail

    async def prepare(self, system: str, tools: list[dict], messages: list[Message]):
        n = self.counter.request_tokens(system, tools, messages)
        if n > self.at * self.eff:
            return await self._summarise(messages), ["naive"]
        return messages, []

    async def on_context_error(self, system: str, tools: list[dict], messages: list[Message], limit: int | None):
        return await self._summarise(messages), ["naive"]

    def observe(self, event: dict) -> None:
        pass

    def record_usage(self, n: int) -> None:
        pass


class NoCompaction(NaiveCompactor):
    async def prepare(self, system, tools, messages):
        return messages, []

    async def on_context_error(self, system, tools, messages, limit):
        return messages, []


# -- the driver ------------------------------------------------------------------------------------------

@dataclass
class RunResult:
    name: str
    window: int
    turns: int
    requests: int = 0
    input_tokens: int = 0
    summary_tokens: int = 0
    max_fill: float = 0.0
    over_85: int = 0
    context_errors: int = 0
    errors_to_user: int = 0
    compactions: int = 0
    stage_events: dict[str, int] = field(default_factory=dict)
    prefix_shared: list[float] = field(default_factory=list)
    prefix_stable: int = 0
    instructions_ok: bool = True
    pairs_ok: bool = True
    turn_ms: list[float] = field(default_factory=list)
    retention: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    failed_at: int | None = None


def context_text(system: str, messages: list[Message]) -> str:
    parts = [system]
    for m in messages:
        for b in m.content:
            if isinstance(b, (TextBlock, SummaryBlock)):
                parts.append(b.text)
            elif isinstance(b, ToolUseBlock):
                parts.append(json.dumps(b.input, ensure_ascii=False))
            elif isinstance(b, ToolResultBlock):
                parts.append(b.content)
    return "\n".join(parts)


_PATH = re.compile(r"(/[^\s\]\)'\"`,;]+)")


def reachable_text(ctx: str, store_root: Path | None, follow_index: bool = True) -> str:
    """Text of files under the store that a path in the context names (and, with follow_index, the files the
    outputs index or the ledger file name: two reads away)."""
    if store_root is None:
        return ""
    root = str(store_root)
    seen: set[str] = set()
    out: list[str] = []
    queue = [p.rstrip(".") for p in _PATH.findall(ctx) if p.startswith(root)]
    while queue:
        p = queue.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            data = Path(p).read_text(encoding="utf-8")
        except OSError:
            continue
        out.append(data)
        if follow_index and (p.endswith("INDEX.md") or p.endswith("ledger.json")):
            queue.extend(q.rstrip(".") for q in _PATH.findall(data) if q.startswith(root))
    return "\n".join(out)


def fresh_dir(prefix: str) -> Path:
    """An empty directory with a predictable name (`<tmp>/<prefix>00`, or the next free number). Its path is in
    the context (saved outputs, the ledger file), so a random temporary name would change the token counts from
    one run to the next; two-digit numbers all count the same."""
    base = Path(tempfile.gettempdir())
    for n in range(100):
        d = base / f"{prefix}{n:02d}"
        try:
            d.mkdir()
            return d
        except FileExistsError:
            continue
    return Path(tempfile.mkdtemp(prefix=prefix))


def age_bucket(age: int) -> str:
    return "last50" if age < 50 else ("50-150" if age < 150 else "150+")


def _common_prefix_tokens(counter: TokenCounter, a: list[Message], b: list[Message]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x is y or x.to_dict() == y.to_dict():
            n += counter.message_tokens(x)
        else:
            break
    return n


async def drive(name: str, script: Script, window: int, reserved: int, strategy: Any, counter: TokenCounter,
                store: Path | None, real_window: int | None = None, instructions_in_messages: bool = True
                ) -> RunResult:
    res = RunResult(name, window, script.n)
    real_window = real_window or window
    first = Message("user", [TextBlock(AGENT_MD), TextBlock(script.task)]) if instructions_in_messages \
        else Message.user(script.task)
    system = SYSTEM if instructions_in_messages else SYSTEM + "\n\n" + AGENT_MD
    messages: list[Message] = [first]
    strategy.observe({"type": "user_message", "text": script.task})
    prev: list[Message] | None = None
    prev_tokens = 0
    eff = window - reserved
    for t, turn in enumerate(script.turns):
        t0 = time.perf_counter()
        sum_before = getattr(getattr(strategy, "summarize", None), "busy_s", 0.0)
        messages, evs = await strategy.prepare(system, TOOLS, messages)
        dt = time.perf_counter() - t0 - (getattr(getattr(strategy, "summarize", None), "busy_s", 0.0) - sum_before)
        if not any(getattr(e, "stage", "") in ("collapse", "auto_compact") for e in evs):
            res.turn_ms.append(dt * 1000)
        for e in evs:
            st = getattr(e, "stage", str(e))
            res.stage_events[st] = res.stage_events.get(st, 0) + 1
        # the provider
        for _attempt in range(4):
            true_n = counter.request_tokens(system, TOOLS, messages)
            reported = int(true_n * 1.07)
            if reported + reserved > real_window:
                res.context_errors += 1
                if isinstance(strategy, NoCompaction) or _attempt == 3:
                    break
                try:
                    messages, evs = await strategy.on_context_error(system, TOOLS, messages, real_window)
                except Exception:  # CompactionFailed
                    break
                for e in evs:
                    st = getattr(e, "stage", str(e))
                    res.stage_events[st] = res.stage_events.get(st, 0) + 1
                continue
            break
        else:
            pass
        true_n = counter.request_tokens(system, TOOLS, messages)
        reported = int(true_n * 1.07)
        if reported + reserved > real_window:
            res.errors_to_user += 1
            if res.failed_at is None:
                res.failed_at = t
        res.requests += 1
        res.input_tokens += reported
        fill = reported / eff
        res.max_fill = max(res.max_fill, fill)
        if fill > 0.85:
            res.over_85 += 1
        strategy.record_usage(reported)
        if instructions_in_messages and "AGENTMD-MARKER-7731" not in context_text(system, messages):
            res.instructions_ok = False
        if validate_pairs(messages):
            res.pairs_ok = False
        if prev is not None:
            shared = counter.count(system) + counter.tools_tokens(TOOLS) + _common_prefix_tokens(counter, prev,
                                                                                                  messages)
            res.prefix_shared.append(min(1.0, shared / max(1, prev_tokens)))
            if messages and prev and messages[0].to_dict() == prev[0].to_dict():
                res.prefix_stable += 1
        prev, prev_tokens = list(messages), true_n
        # the model answers; tools run
        messages = messages + [turn.assistant, turn.results]
        for ev in turn.events:
            strategy.observe(ev)
    # final probe: the context the next request would send
    messages, _ = await strategy.prepare(system, TOOLS, messages)
    ctx = context_text(system, messages)
    reach = reachable_text(ctx, store)
    direct = reachable_text(ctx, store, follow_index=False)
    for f in script.facts:
        age = script.n - f.turn
        cell = res.retention.setdefault(f.kind, {}).setdefault(age_bucket(age), [0, 0, 0, 0])
        cell[2] += 1
        if f.text in ctx:
            cell[0] += 1
            cell[1] += 1
            cell[3] += 1
        elif f.text in reach:
            cell[1] += 1
            if f.text in direct:
                cell[3] += 1
    if isinstance(strategy, Compactor):
        res.compactions = strategy.stage_counts.get("collapse", 0) + strategy.stage_counts.get("auto_compact", 0)
        res.summary_tokens = strategy.summary_prompt_tokens
    elif isinstance(strategy, NaiveCompactor):
        res.compactions = strategy.compactions
        res.summary_tokens = strategy.summary_prompt_tokens
    return res


class TimedSummarizer:
    def __init__(self, inner: ScriptedSummarizer):
        self.inner = inner
        self.busy_s = 0.0

    async def __call__(self, prompt: list[Message], system: str = "") -> str:
        t = time.perf_counter()
        try:
            return await self.inner(prompt)
        finally:
            self.busy_s += time.perf_counter() - t


async def stage_timing(counter: TokenCounter, n_turns: int = 200, reps: int = 15) -> dict[str, float]:
    """Per-turn time of the deterministic stages on a 200-turn transcript: warm token cache (as in a session),
    all of stages 1-3 running (the window is set so the raw transcript sits between micro_at and collapse_at
    after budget, i.e. every stage has work) and a fresh Compactor (no summary cache) each time."""
    script = Script(n_turns, seed=11, scale=0.25)
    msgs: list[Message] = [Message.user(script.task)]
    for t in script.turns:
        msgs += [t.assistant, t.results]
    raw = counter.request_tokens(SYSTEM, TOOLS, msgs)
    # choose the window so the raw transcript is at ~66% fill: budget, snip and microcompact all run
    window = int(raw / 0.66) + 4000
    cfg = CompactionConfig()
    tmp = fresh_dir("gl-ceval-")
    times, steady = [], []
    stages: dict[str, int] = {}
    try:
        for i in range(reps):
            c = Compactor(cfg, window=window, reserved_output=4000, store_dir=tmp / f"r{i}", counter=counter,
                          kind_of=TOOL_KINDS.get)
            t0 = time.perf_counter()
            out, evs = await c.prepare(SYSTEM, TOOLS, msgs)
            times.append((time.perf_counter() - t0) * 1000)
            for e in evs:
                stages[e.stage] = stages.get(e.stage, 0) + 1
            t0 = time.perf_counter()
            await c.prepare(SYSTEM, TOOLS, out)  # steady state: the compacted transcript, nothing to do
            steady.append((time.perf_counter() - t0) * 1000)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"transcript_tokens": raw, "messages": len(msgs), "window": window,
            "stages_run": ",".join(sorted(stages)),
            "all_stages_median_ms": statistics.median(times[1:]), "all_stages_max_ms": max(times[1:]),
            "steady_median_ms": statistics.median(steady), "steady_max_ms": max(steady)}


def pct(a: int, b: int) -> str:
    return f"{100 * a / b:5.1f}%" if b else "   n/a"


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    counter = TokenCounter()
    windows = [int(w) for w in args.windows.split(",")]
    out: dict[str, Any] = {"turns": args.turns, "encoding": counter.encoding_name, "runs": []}
    print(f"token counter: {counter.method}")
    for window in windows:
        reserved = max(2048, window // 8)
        script = Script(args.turns, seed=args.seed, scale=window / 32000)
        results = []
        for name in ("ghostline", "naive", "none"):
            tmp = fresh_dir("gl-ceval-")
            summ = TimedSummarizer(ScriptedSummarizer(window, counter))
            if name == "ghostline":
                strat: Any = Compactor(args.config, window=window, reserved_output=reserved, store_dir=tmp,
                                       summarize=summ, instructions=AGENT_MD, counter=counter,
                                       kind_of=TOOL_KINDS.get)
            elif name == "naive":
                strat = NaiveCompactor(window, reserved, summ, counter)
            else:
                strat = NoCompaction(window, reserved, summ, counter)
            try:
                r = await drive(name, script, window, reserved, strat, counter, tmp if name == "ghostline" else None)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            results.append(r)
        # window mismatch: configured bigger than the server's real window; the compactor must adopt it
        tmp = fresh_dir("gl-ceval-")
        try:
            summ = TimedSummarizer(ScriptedSummarizer(window, counter))
            c = Compactor(args.config, window=int(window * 1.5), reserved_output=reserved, store_dir=tmp,
                          summarize=summ, instructions=AGENT_MD, counter=counter, kind_of=TOOL_KINDS.get)
            r = await drive("ghostline (window 1.5x too big)", script, window, reserved, c, counter, tmp,
                            real_window=window)
            r.stage_events["adopted_window"] = c.window
            results.append(r)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print_table(window, reserved, script, results)
        out["runs"].append({"window": window, "reserved_output": reserved, "facts": len(script.facts),
                            "results": [summarise_result(r) for r in results]})
    if not args.no_timing:
        await print_timing(out, counter)
    if not args.no_loop:
        out["loop"] = await loop_mode(args)
    out["done_when"] = done_when(out)
    return out


async def print_timing(out: dict[str, Any], counter: TokenCounter) -> None:
    timing = await stage_timing(counter, n_turns=200)
    out["stage_timing"] = timing
    print(f"\nDeterministic stages on a 200-turn transcript ({timing['messages']} messages, "
          f"{timing['transcript_tokens']} tokens, window {timing['window']}; stages run: {timing['stages_run']}):")
    print(f"  all of stages 1-3, cold compactor: median {timing['all_stages_median_ms']:.1f} ms, "
          f"max {timing['all_stages_max_ms']:.1f} ms")
    print(f"  steady state (already compacted):  median {timing['steady_median_ms']:.1f} ms, "
          f"max {timing['steady_max_ms']:.1f} ms   (target < 20 ms)")


def done_when(out: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """The issue's acceptance numbers, checked on the ghostline runs of this invocation."""
    runs = [(f"standalone {run['window']}", r) for run in out.get("runs", []) for r in run["results"]
            if r["name"] == "ghostline"]
    loop = out.get("loop") or {}
    loop_runs = [(f"loop {loop.get('window')}", r) for r in loop.get("results", []) if r["name"] == "ghostline"]
    checks: list[tuple[str, bool, str]] = []

    def add(name: str, ok: bool, detail: str) -> None:
        checks.append((name, ok, detail))

    fills = [(n, r["max_fill"]) for n, r in runs + loop_runs]
    add("context never above 85% of the effective window", all(f <= 0.85 for _, f in fills),
        ", ".join(f"{n}: {100 * f:.0f}%" for n, f in fills))
    errs = [(n, r.get("errors_to_user", 1 if r.get("failed") else 0)) for n, r in runs + loop_runs]
    add("no context-length error reaches the user", all(e == 0 for _, e in errs),
        ", ".join(f"{n}: {e}" for n, e in errs))
    for kind in ("constraint", "file_modified", "failed_approach"):
        cells = [(n, r["retention"].get(kind, {})) for n, r in runs + loop_runs]
        add(f"100% retention: {kind}", all(c.get("reachable") == c.get("total") for _, c in cells),
            ", ".join(f"{n}: {c.get('in_context')}/{c.get('reachable')}/{c.get('total')} (ctx/reach/total)"
                      for n, c in cells))
    for kind in ("identifier", "error"):
        parts, ok = [], True
        for n, r in runs:
            c = r["retention"].get(kind, {}).get("by_age", {}).get("last50", {})
            ok = ok and c.get("total", 0) > 0 and c["reachable"] / c["total"] >= 0.95
            parts.append(f"{n}: {c.get('reachable')}/{c.get('total')}")
        for n, r in loop_runs:
            c = r["retention_last50"].get(kind, {})
            ok = ok and c.get("total", 0) > 0 and c["reachable"] / c["total"] >= 0.95
            parts.append(f"{n}: {c.get('reachable')}/{c.get('total')}")
        add(f">= 95% of {kind}s from the last 50 turns (reachable)", ok, ", ".join(parts))
    add("AGENT.md present after every compaction", all(r["instructions_present_always"] for _, r in runs),
        "instructions in the first message, re-injected by collapse")
    t = out.get("stage_timing")
    ms = [(n, r["prepare_ms_mean"], r["prepare_ms_p95"]) for n, r in runs]
    detail = ", ".join(f"{n}: mean {a:.1f} ms, p95 {b:.1f} ms" for n, a, b in ms)
    ok = all(a < 20 and b < 20 for _, a, b in ms)
    if t:
        detail += f"; 200-turn transcript steady {t['steady_median_ms']:.1f} ms"
        ok = ok and t["steady_median_ms"] < 20
    add("deterministic stages < 20 ms per turn (200+ turns)", ok, detail)
    print("\nDone-when checks:")
    for name, ok, detail in checks:
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}: {detail}")
    return checks


async def loop_only(args: argparse.Namespace) -> dict[str, Any]:
    return {"turns": args.turns, "loop": await loop_mode(args)}


def summarise_result(r: RunResult) -> dict[str, Any]:
    ret = {}
    for kind, buckets in r.retention.items():
        tot = [sum(v[i] for v in buckets.values()) for i in range(4)]
        ret[kind] = {"in_context": tot[0], "reachable": tot[1], "reachable_direct": tot[3], "total": tot[2],
                     "by_age": {k: {"in_context": v[0], "reachable": v[1], "reachable_direct": v[3], "total": v[2]}
                                for k, v in buckets.items()}}
    return {
        "name": r.name, "requests": r.requests, "input_tokens": r.input_tokens, "summary_prompt_tokens":
        r.summary_tokens, "tokens_per_task": r.input_tokens + r.summary_tokens, "max_fill": round(r.max_fill, 3),
        "requests_over_85pct": r.over_85, "context_errors": r.context_errors, "errors_to_user": r.errors_to_user,
        "first_failure_turn": r.failed_at, "compactions": r.compactions,
        "compactions_per_100_turns": round(100 * r.compactions / max(1, r.turns), 2),
        "stage_events": r.stage_events,
        "prefix_shared_mean": round(statistics.mean(r.prefix_shared), 3) if r.prefix_shared else None,
        "prefix_stable_fraction": round(r.prefix_stable / max(1, len(r.prefix_shared)), 3),
        "instructions_present_always": r.instructions_ok, "pairs_valid_always": r.pairs_ok,
        "prepare_ms_median": round(statistics.median(r.turn_ms), 3) if r.turn_ms else None,
        "prepare_ms_mean": round(statistics.mean(r.turn_ms), 3) if r.turn_ms else None,
        "prepare_ms_max": round(max(r.turn_ms), 3) if r.turn_ms else None,
        "prepare_ms_p95": round(sorted(r.turn_ms)[int(0.95 * (len(r.turn_ms) - 1))], 3) if r.turn_ms else None,
        "retention": ret,
    }


def print_table(window: int, reserved: int, script: Script, results: list[RunResult]) -> None:
    eff = window - reserved
    print(f"\n== window {window} (reserved output {reserved}, effective {eff}); {script.n} turns; "
          f"{len(script.facts)} planted facts ==")
    hdr = f"{'strategy':34} {'max fill':>8} {'>85%':>5} {'ctx err':>7} {'to user':>7} {'compact/100t':>12} " \
          f"{'tokens/task (vs naive)':>22} {'prefix':>7} {'AGENT.md':>8} {'pairs':>5} {'prepare ms p50/p95/max':>22}"
    print(hdr)
    base = next((r for r in results if r.name == "naive"), None)
    for r in results:
        tokens = r.input_tokens + r.summary_tokens
        ratio = f"{tokens} ({tokens / (base.input_tokens + base.summary_tokens):.2f}x)" if base else str(tokens)
        ms = sorted(r.turn_ms) or [0.0]
        timing = f"{statistics.median(ms):.1f}/{ms[int(0.95 * (len(ms) - 1))]:.1f}/{ms[-1]:.1f}"
        print(f"{r.name:34} {100 * r.max_fill:7.0f}% {r.over_85:5d} {r.context_errors:7d} {r.errors_to_user:7d} "
              f"{100 * r.compactions / max(1, r.turns):12.1f} {ratio:>22} "
              f"{statistics.mean(r.prefix_shared) if r.prefix_shared else 0:7.2f} "
              f"{'yes' if r.instructions_ok else 'NO':>8} {'ok' if r.pairs_ok else 'BAD':>5} {timing:>22}")
    kinds = ["constraint", "file_modified", "failed_approach", "identifier", "error", "decision", "todo"]
    print("\nRetention: in context / in context or reachable by path (all ages | reachable, last 50 turns):")
    print(f"{'strategy':34} " + " ".join(f"{k:>21}" for k in kinds))
    for r in results:
        cells = []
        for k in kinds:
            b = r.retention.get(k, {})
            tot = [sum(v[i] for v in b.values()) for i in range(3)]
            last = b.get("last50", [0, 0, 0])
            cells.append(f"{pct(tot[0], tot[2]).strip()}/{pct(tot[1], tot[2]).strip()}|"
                         f"{pct(last[1], last[2]).strip()}")
        print(f"{r.name:34} " + " ".join(f"{c:>21}" for c in cells))


# -- real loop mode ------------------------------------------------------------------------------------

class LoopScript:
    """A session for the real loop: real files in a workspace, real tools; the fake model replays tool calls.

    Segments end with a text-only reply; each new segment starts with a user message (the constraints)."""

    def __init__(self, n_turns: int, ws: Path, seed: int = 7, scale: float = 1.0):
        self.rng = random.Random(seed)
        self.facts: list[Fact] = []
        self.segments: list[tuple[str, list[dict[str, Any]]]] = []
        (ws / "src" / "pkg").mkdir(parents=True)
        (ws / "logs").mkdir()
        self.ws = ws
        read_files: list[str] = []
        edits: dict[str, int] = {}
        turns: list[dict[str, Any]] = []
        user = ("Refactor the payment pipeline in src/pkg/ to use the new Router API, keep all tests green, "
                "and report what changed.")
        r = self.rng
        for t in range(n_turns):
            if t and (t in (35, 80, 130, 175, 205) or t % 45 == 20):
                self.segments.append((user, turns))
                k = len([f for f in self.facts if f.kind == "constraint"]) + 1
                user = f"Constraint C-{k}: never modify files under legacy_{k}/ and keep the flag --strict-{_h(t)[:6]}"
                self.facts.append(Fact("constraint", user, t))
                turns = []
            text = f"Turn {t}: continuing."
            if t % 23 == 11:
                d = f"Decision D-{t}: use {r.choice(['WAL mode', 'a bounded queue', 'lazy imports'])}"
                self.facts.append(Fact("decision", d, t))
                text = d + f" because {_h('why', t)[:8]}"
            kind = t % 10
            if t % 17 == 9:
                cmd = f"echo 'applying migration {t}'; echo 'fatal: migration lock held by pid {4000 + t}'; exit 2"
                self.facts.append(Fact("failed_approach", cmd, t))
                self.facts.append(Fact("error", f"fatal: migration lock held by pid {4000 + t}", t))
                call = ("bash", {"command": cmd})
            elif t % 19 == 7 and read_files:
                path = read_files[-1]
                old = f"def legacy_entry_{t}(x):"
                self.facts.append(Fact("failed_approach", old, t))
                call = ("edit", {"path": path, "old_string": old, "new_string": "def entry(x):"})
            elif kind in (0, 5) or not read_files:
                path = f"src/pkg/mod_{t:03d}.py"
                ident = f"PaymentRouter_{_h('id', t)[:8]}"
                lines = [f"# module {t}"] + [f"router_v1_{t}_{j} = {j}" for j in range(3)]
                lines += self._filler(int(r.randint(120, 380) * scale), "L")
                lines.insert(r.randint(4, len(lines) - 1), f"class {ident}(BaseRouter):  # planted")
                (ws / path).write_text("\n".join(lines) + "\n")
                self.facts.append(Fact("identifier", ident, t))
                read_files.append(path)
                call = ("read", {"path": path})
            elif kind in (1, 6):
                path = read_files[-1]
                n = int(path[-6:-3])
                j = edits.get(path, 0)
                edits[path] = j + 1
                old = f"router_v1_{n}_{j}"
                if j < 3:
                    self.facts.append(Fact("file_modified", path, t))
                call = ("edit", {"path": path, "old_string": old, "new_string": f"router_v2_{n}_{j}"})
            elif kind in (2, 7):
                log = ws / "logs" / f"run_{t}.txt"
                lines = self._filler(int(r.randint(200, 600) * scale), "tests/test_x.py::case")
                err = f"E   KeyError: 'tenant_{_h('err', t)[:10]}'"
                lines.insert(len(lines) // 2, err)
                lines.append(f"FAILED tests/test_router.py::test_route_{t} - KeyError")
                lines.append(f"2 failed, 298 passed in {r.uniform(2, 9):.2f}s")
                log.write_text("\n".join(lines) + "\n")
                self.facts.append(Fact("error", err.strip(), t))
                call = ("bash", {"command": f"cat logs/run_{t}.txt; exit 1"})
            elif kind == 8 and t % 40 == 8:
                path = f"src/pkg/new_{t}.py"
                self.facts.append(Fact("file_modified", path, t))
                call = ("write", {"path": path, "content": "\n".join(self._filler(int(120 * scale), "#")) + "\n"})
            else:
                log = ws / "logs" / f"build_{t}.txt"
                log.write_text("\n".join(self._filler(int(r.randint(150, 700) * scale), "build")) + "\n")
                call = ("bash", {"command": f"cat logs/build_{t}.txt"})
            turns.append({"turn": t, "text": text, "call": call})
        self.segments.append((user, turns))
        self.n = n_turns

    def _filler(self, n: int, tag: str) -> list[str]:
        r = self.rng
        words = ["alpha", "beta", "gamma", "delta", "router", "ledger", "payment", "tenant", "invoice", "cache"]
        return [f"{tag} {i:04d}: " + " ".join(r.choice(words) for _ in range(r.randint(4, 11))) for i in range(n)]


def _wire_tokens(obj: Any) -> int:
    """The fake server's own count (4 characters a token of the JSON), so limits and usage agree."""
    s = json.dumps(obj, sort_keys=True, ensure_ascii=False)
    return max(1, (len(s) + 3) // 4)


class LoopModel:
    """The fake server's script: main requests get the next scripted turn; summary requests (no tools) get a
    forgetful summary; any request over the window gets the provider's real context-length error."""

    def __init__(self, script: LoopScript, window: int, counter: TokenCounter):
        self.script = script
        self.window = window
        self.segment = 0
        self.pos = 0
        self.summarizer = ScriptedSummarizer(window, counter)
        self.faults = 0
        self.main_sizes: list[int] = []
        self.main_bodies: list[dict[str, Any]] = []
        self.summary_calls = 0

    def __call__(self, body: dict[str, Any], provider: str) -> Any:
        from tests.fakeserver import context_length, reply

        size = _wire_tokens({k: body.get(k) for k in ("system", "tools", "messages")})
        if size + int(body.get("max_tokens") or 0) > self.window:
            self.faults += 1
            return context_length(tokens=size + int(body.get("max_tokens") or 0), limit=self.window)
        if not body.get("tools"):
            self.summary_calls += 1
            text = "\n".join(b.get("text", "") for m in body["messages"] for b in
                             (m["content"] if isinstance(m["content"], list) else [{"text": m["content"]}]))
            return reply(text=self.summarizer.summarise_text(text))
        self.main_sizes.append(size)
        self.main_bodies.append(body)
        turns = self.script.segments[self.segment][1]
        if self.pos >= len(turns):
            return reply(text="Done with this part.")
        spec = turns[self.pos]
        self.pos += 1
        name, inp = spec["call"]
        # a fixed id (the server's would be random): ids are in the context, so they must count the same every run
        return reply(text=spec["text"], tool_calls=[(name, inp, f"toolu_{self.segment:02d}{self.pos:04d}")])

    def next_segment(self) -> None:
        self.segment += 1
        self.pos = 0


def _strip_cache_control(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip_cache_control(v) for k, v in obj.items() if k != "cache_control"}
    if isinstance(obj, list):
        return [_strip_cache_control(v) for v in obj]
    return obj


class LoopNaive:
    """The naive baseline for the loop: summarise everything at 90% through the same model."""

    def __init__(self, window: int, reserved: int, summarize: Any):
        self.eff = window - reserved
        self.summarize = summarize
        self.counter = TokenCounter()
        self.compactions = 0
        self.factor = 1.0
        self.last = 0

    async def _collapse(self, messages: list[Message]) -> list[Message]:
        from ghostline.compaction import CompactionEvent

        last = len(messages) - 1
        while last > 0 and messages[last].role != "assistant":
            last -= 1
        head, tail = messages[:last], messages[last:]
        text = "\n".join(json.dumps(m.to_dict())[:4000] for m in head)
        n_items = len(text)
        s = "(summary failed)"
        for _ in range(3):
            try:
                s = await self.summarize([Message.user("Summarise this session.\n" + text[-n_items:])])
                break
            except Exception as exc:  # noqa: BLE001
                if not isinstance(exc, ContextOverflow):
                    break
                n_items //= 2
        self.compactions += 1
        before = self.counter.messages_tokens(messages)
        out = [Message("user", [SummaryBlock(s)])] + tail
        return out, [CompactionEvent("naive", before, self.counter.messages_tokens(out), "summarised everything")]

    async def prepare(self, system, tools, messages):
        self.last = self.counter.request_tokens(system, tools, messages)
        if self.last * self.factor > 0.9 * self.eff:
            return await self._collapse(messages)
        return messages, []

    async def on_context_error(self, system, tools, messages, limit):
        return await self._collapse(messages)

    def record_usage(self, n: int, estimated: int | None = None) -> None:
        if self.last:
            self.factor = n / self.last


async def loop_mode(args: argparse.Namespace) -> dict[str, Any]:
    """Drive agent/loop.py against tests/fakeserver.py (Anthropic wire protocol, real SDK, real tools)."""
    try:
        from ghostline.agent import events as ev
        from ghostline.agent.loop import AgentLoop
        from ghostline.agent.providers.anthropic import AnthropicProvider
        from ghostline.agent.providers.base import TurnComplete
        from ghostline.tools.base import ToolContext
        from ghostline.tools.registry import ToolRegistry, default_tools
        from tests.fakeserver import FakeModelServer
    except Exception as exc:  # noqa: BLE001
        print(f"\n--loop: skipped ({type(exc).__name__}: {exc})")
        return {"skipped": str(exc)}
    counter = TokenCounter()
    window = args.loop_window
    max_out = max(1024, window // 8)
    system = SYSTEM + "\n\n" + AGENT_MD
    results = []
    for name in args.loop_strategies.split(","):
        tmp = fresh_dir("gl-cloop-")
        ws = tmp / "ws"
        ws.mkdir()
        script = LoopScript(args.turns, ws, seed=args.seed, scale=window / 32000)
        model = LoopModel(script, window, counter)
        srv = FakeModelServer(model).start()
        provider = AnthropicProvider("claude-sonnet-4-5", api_key="k", base_url=srv.anthropic_base_url)

        async def summarize(messages: list[Message], system: str = "", provider: Any = provider) -> str:
            text = ""
            async for item in provider.stream_turn(system or "You summarise coding sessions precisely.", messages,
                                                   [], 1024):
                if isinstance(item, TurnComplete):
                    text = item.message.text
            return text

        registry = ToolRegistry(default_tools())
        if name == "ghostline":
            comp: Any = Compactor(args.config, window=window, reserved_output=max_out, store_dir=tmp / "session",
                                  summarize=summarize, instructions=AGENT_MD, provider="anthropic",
                                  kind_of=registry.kind_of)
        elif name == "naive":
            comp = LoopNaive(window, max_out, summarize)
        else:
            comp = None
        prep_ms: list[float] = []
        if comp is not None:
            inner = comp.prepare

            async def timed(system: str, tools: Any, messages: Any, inner: Any = inner, prep_ms: Any = prep_ms) -> Any:
                t0 = time.perf_counter()
                out = await inner(system, tools, messages)
                if not any(getattr(e, "stage", "") in ("collapse", "auto_compact", "naive") for e in out[1]):
                    prep_ms.append((time.perf_counter() - t0) * 1000)
                return out

            comp.prepare = timed
        ctx = ToolContext(workspace=ws, cwd=ws, sandbox_mode="workspace-write", approval="auto",
                          output_dir=tmp / "session" / "tool-outputs")
        loop = AgentLoop(provider=provider, registry=registry, ctx=ctx, system=system, compactor=comp,
                         max_output_tokens=max_out)
        stats = {"compactions": 0, "stages": {}, "failed": None, "cache_read": 0, "input_total": 0, "done": 0}
        t_start = time.perf_counter()
        try:
            for i, (user_text, _turns) in enumerate(script.segments):
                if i:
                    model.next_segment()
                async for e in loop.run(user_text):
                    if isinstance(e, ev.Compaction):
                        stats.setdefault("trace", []).append((e.stage, e.tokens_before, e.tokens_after))
                        stats["stages"][e.stage] = stats["stages"].get(e.stage, 0) + 1
                        if e.stage in ("collapse", "auto_compact", "naive"):
                            stats["compactions"] += 1
                    elif isinstance(e, ev.Usage):
                        stats["cache_read"] += e.cache_read_input_tokens
                        stats["input_total"] += (e.input_tokens + e.cache_read_input_tokens
                                                 + e.cache_creation_input_tokens)
                    elif isinstance(e, ev.Failed):
                        stats["failed"] = e.error[:160]
                    elif isinstance(e, ev.Done):
                        stats["done"] += 1
                if stats["failed"]:
                    break
        finally:
            await provider.aclose()
            srv.stop()
        wall = time.perf_counter() - t_start
        ctx_text = context_text(system, loop.messages)
        reach = reachable_text(ctx_text, tmp / "session")
        ret: dict[str, list[int]] = {}
        last50: dict[str, list[int]] = {}
        missing: list[str] = []
        turns_done = sum(1 for b in model.main_bodies)
        for f in script.facts:
            if f.turn >= turns_done:
                continue  # never reached (the run failed before)
            for table in (ret, last50) if turns_done - f.turn < 50 else (ret,):
                cell = table.setdefault(f.kind, [0, 0, 0])
                cell[2] += 1
                if f.text in ctx_text:
                    cell[0] += 1
                    cell[1] += 1
                elif f.text in reach:
                    cell[1] += 1
                elif table is ret:
                    missing.append(f"{f.kind}@{f.turn}: {f.text[:80]}")
        shared = []
        prev = None
        for b in model.main_bodies:
            msgs = [_strip_cache_control(m) for m in b["messages"]]
            if prev is not None:
                k = 0
                tok = 0
                while k < min(len(prev), len(msgs)) and prev[k] == msgs[k]:
                    tok += _wire_tokens(msgs[k])
                    k += 1
                shared.append(tok / max(1, sum(_wire_tokens(m) for m in prev)))
            prev = msgs
        eff = window - max_out
        res = {
            "name": name, "requests": len(model.main_bodies), "summary_calls": model.summary_calls,
            "context_errors": model.faults, "failed": stats["failed"],
            "max_fill": round(max(model.main_sizes) / eff, 3) if model.main_sizes else None,
            "over_85": sum(1 for x in model.main_sizes if x > 0.85 * eff),
            "tokens_per_task": sum(model.main_sizes), "compactions": stats["compactions"],
            "compactions_per_100_turns": round(100 * stats["compactions"] / max(1, len(model.main_bodies)), 2),
            "stages": stats["stages"], "prefix_shared_mean": round(statistics.mean(shared), 3) if shared else None,
            "cache_read_fraction": round(stats["cache_read"] / max(1, stats["input_total"]), 3),
            "prepare_ms_median": round(statistics.median(prep_ms), 2) if prep_ms else None,
            "prepare_ms_p95": round(sorted(prep_ms)[int(0.95 * (len(prep_ms) - 1))], 2) if prep_ms else None,
            "retention": {k: {"in_context": v[0], "reachable": v[1], "total": v[2]} for k, v in ret.items()},
            "retention_last50": {k: {"in_context": v[0], "reachable": v[1], "total": v[2]} for k, v in last50.items()},
            "server_errors": srv.errors[:3], "wall_s": round(wall, 1), "missing_facts": missing[:40],
            "compaction_trace": stats.get("trace", [])[:400],
            "final_summary": next((b.text for m in loop.messages[:1] for b in m.content
                                   if isinstance(b, SummaryBlock)), None),
        }
        results.append(res)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n== real loop (agent/loop.py + Anthropic SDK + tests/fakeserver.py, real tools), window {window}, "
          f"max output {max_out}, {args.turns} scripted turns ==")
    print(f"{'strategy':10} {'requests':>8} {'max fill':>8} {'>85%':>5} {'ctx err':>7} {'failed':>6} "
          f"{'compact/100t':>12} {'tokens/task':>12} {'prefix':>6} {'cache rd':>8} {'prep ms p50/p95':>16}")
    for r in results:
        print(f"{r['name']:10} {r['requests']:8d} {100 * (r['max_fill'] or 0):7.0f}% {r['over_85']:5d} "
              f"{r['context_errors']:7d} {'yes' if r['failed'] else 'no':>6} {r['compactions_per_100_turns']:12.1f} "
              f"{r['tokens_per_task']:12d} {r['prefix_shared_mean'] or 0:6.2f} {r['cache_read_fraction']:8.2f} "
              f"{(r['prepare_ms_median'] or 0):7.1f}/{(r['prepare_ms_p95'] or 0):<7.1f}")
        if r["failed"]:
            print(f"           failed: {r['failed']}")
    kinds = ["constraint", "file_modified", "failed_approach", "identifier", "error", "decision"]
    print("Retention, in context / reachable (facts planted before the run ended | last 50 turns reachable):")
    for r in results:
        cells = []
        for k in kinds:
            a = r["retention"].get(k, {"in_context": 0, "reachable": 0, "total": 0})
            b = r["retention_last50"].get(k, {"reachable": 0, "total": 0})
            cells.append(f"{k}={a['in_context']}/{a['reachable']}/{a['total']}|{b['reachable']}/{b['total']}")
        print(f"{r['name']:10} " + "  ".join(cells))
    return {"window": window, "max_output_tokens": max_out, "results": results}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--turns", type=int, default=220)
    ap.add_argument("--windows", default="32000,16000")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="60 turns, one 24k window")
    ap.add_argument("--no-loop", action="store_true", help="skip the real-loop mode")
    ap.add_argument("--no-timing", action="store_true", help="skip the 200-turn stage timing")
    ap.add_argument("--loop-only", action="store_true", help="only the real-loop mode")
    ap.add_argument("--loop-window", type=int, default=24000)
    ap.add_argument("--loop-strategies", default="ghostline,naive,none")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a CompactionConfig field for the ghostline strategy (repeatable)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "compaction_eval.json"))
    args = ap.parse_args()
    overrides: dict[str, Any] = {}
    for kv in args.set:
        k, _, v = kv.partition("=")
        overrides[k] = json.loads(v)
    args.config = CompactionConfig.from_dict(overrides)
    if args.quick:
        args.turns, args.windows, args.no_loop = 60, "24000", True
    t = time.perf_counter()
    out = asyncio.run(loop_only(args) if args.loop_only else main_async(args))
    out["wall_s"] = round(time.perf_counter() - t, 2)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"\nwrote {args.out} ({out['wall_s']} s)")


if __name__ == "__main__":
    main()
