"""Collapse summaries: the prompt the model summarises from, the deterministic fallback, and the merge.

The model writes intent (goal, decisions and why, current and next step); the ledger supplies facts. The
merged text always carries the ledger, so a summariser that forgets a user constraint, a modified file or a
failed approach cannot make the agent forget it.
"""

from __future__ import annotations

from typing import Any, Callable

from ghostline.compaction.ledger import Ledger
from ghostline.compaction.toolcalls import describe_call
from ghostline.compaction.transcript import (
    ImageBlock,
    Message,
    SummaryBlock,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
)

SUMMARY_SECTIONS = (
    "Goal",
    "User messages (every one, verbatim, newest first)",
    "Constraints and preferences",
    "Decisions (and why)",
    "Files touched",
    "Errors and fixes",
    "Test status",
    "Todo (keep the ids)",
    "Current step",
    "Next step",
)

SUMMARY_HEADER = "[Compacted history — earlier turns were replaced by this summary; the recent turns follow verbatim.]"

SUMMARY_INSTRUCTIONS = """You are compacting the history of a coding-agent session so that the agent can continue \
the task without the older turns. Write a structured summary with exactly these sections (markdown headings):

{sections}

Rules: quote every user message verbatim (newest first); keep exact identifiers, file paths, error strings, \
todo ids and command lines; say what was tried and failed and why; do not invent anything that is not in the \
transcript; be concise. A previous summary, if present, must be carried forward (merge it, do not drop facts)."""


def item_text(m: Message, b: Any, names: dict[str, str], inputs: dict[str, dict], trunc: Callable[[str, int], str],
              item_tokens: int) -> str:
    if isinstance(b, SummaryBlock):
        return f"[previous summary]\n{b.text}"
    if isinstance(b, TextBlock):
        return f"[{m.role}] {b.text if m.role == 'user' else trunc(b.text, item_tokens)}"
    if isinstance(b, ToolUseBlock):
        return f"[tool call {b.id}] {describe_call(b.name, b.input)}"
    if isinstance(b, ToolResultBlock):
        name = names.get(b.tool_use_id, "tool")
        code = b.meta.get("exit_code")
        head = f"[tool result {b.tool_use_id} {describe_call(name, inputs.get(b.tool_use_id), b.meta)}"
        if code is not None:
            head += f" exit {code}"
        if b.is_error:
            head += " ERROR"
        head += "]"
        return head + "\n" + trunc(b.content, item_tokens) + "".join(f"\n{i.as_text()}" for i in b.images)
    if isinstance(b, ImageBlock):
        return f"[{m.role}] {b.as_text()}"
    return str(b)



def transcript_items(messages: list[Message], trunc: Callable[[str, int], str], item_tokens: int) -> list[str]:
    """The collapsed part as a list of text items, oldest first (tool results cut to head + tail)."""
    names: dict[str, str] = {}
    inputs: dict[str, dict] = {}
    for m in messages:
        for b in m.content:
            if isinstance(b, ToolUseBlock):
                names[b.id] = b.name
                inputs[b.id] = b.input
    out = []
    for m in messages:
        for b in m.content:
            out.append(item_text(m, b, names, inputs, trunc, item_tokens))
    return out


def build_prompt(items: list[str], *, focus: str | None = None, ledger_text: str = "") -> list[Message]:
    """The messages handed to the summariser."""
    sections = "\n".join(f"## {s}" for s in SUMMARY_SECTIONS)
    parts = [SUMMARY_INSTRUCTIONS.format(sections=sections)]
    if focus:
        parts.append(f"The user asked to focus the summary on: {focus}")
    if ledger_text:
        parts.append("Facts recorded deterministically (authoritative; they are appended to your summary "
                     "automatically, so do not copy them, use them to get details right):\n" + ledger_text)
    parts.append("<transcript>\n" + "\n\n".join(items) + "\n</transcript>")
    parts.append("Write the summary now.")
    return [Message.user("\n\n".join(parts))]


def fallback_summary(ledger: Ledger, messages: list[Message], trunc: Callable[[str, int], str]) -> str:
    """A deterministic summary from the ledger and the collapsed turns, used when no summariser is available."""
    lines = ["## Goal"]
    goal = ledger.user_messages[0]["text"] if ledger.user_messages else ""
    lines.append(trunc(goal, 300) if goal else "(see the user messages in the ledger)")
    prev = [b.text for m in messages for b in m.content if isinstance(b, SummaryBlock)]
    if prev:
        lines.append("## Earlier summary (carried forward)")
        lines.append(trunc(_strip_ledger(prev[-1]), 800))
    last_text = ""
    for m in reversed(messages):
        if m.role == "assistant" and m.text.strip():
            last_text = m.text.strip()
            break
    lines.append("## Current step")
    lines.append(trunc(last_text, 200) if last_text else "(unknown)")
    errs = [f for f in ledger.failures][-5:]
    if errs:
        lines.append("## Errors and fixes")
        lines.extend(f"- {f['what']}: {f['error']}" for f in errs)
    lines.append("## Next step")
    lines.append("Continue the task from the recent turns below; check the ledger before repeating work.")
    return "\n".join(lines)


def _strip_ledger(text: str) -> str:
    cut = text.find("## Ledger (")
    body = text[:cut] if cut >= 0 else text
    return body.replace(SUMMARY_HEADER, "").strip()


def merge(summary: str, ledger_text: str, *, outputs_index: str | None = None, truncated: bool = False,
          recent_outputs: list[tuple[str, str]] | None = None) -> str:
    """The collapse summary as the model will see it: header + model summary + ledger + where full outputs are
    (the index of all saved outputs, and the paths of the latest few summarised ones)."""
    parts = [SUMMARY_HEADER, _strip_ledger(summary)]
    if truncated:
        parts.append("(summary shortened to fit the context budget)")
    parts.append(ledger_text)
    if outputs_index:
        parts.append(f"Full outputs of earlier tool results are saved on disk; index: {outputs_index} "
                     f"(use the read tool on a listed path to see one).")
    if recent_outputs:
        parts.append("Latest summarised tool outputs (newest first):\n"
                     + "\n".join(f"- {desc}: {path}" for desc, path in recent_outputs))
    return "\n\n".join(p for p in parts if p)


CARRY_SECTIONS = ("decisions", "constraints", "errors")


def _sections(text: str) -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = [("", [])]
    for line in text.splitlines():
        if line.startswith("## "):
            out.append((line, []))
        else:
            out[-1][1].append(line)
    return out


def _key(title: str) -> str:
    words = title[3:].strip().lower().split()
    return words[0] if words else ""


def carry_forward(previous: str, new: str, keys: tuple[str, ...] = CARRY_SECTIONS, max_carried: int = 12) -> str:
    """Lines of the previous summary's decisions / constraints / errors sections that the new summary dropped are
    appended to the matching new section, so repeated compactions do not erode what the model wrote before."""
    prev = {_key(t): [ln for ln in body if ln.strip()] for t, body in _sections(_strip_ledger(previous)) if t}
    if not prev:
        return new
    secs = _sections(new)
    seen_keys = set()
    out: list[str] = []
    for title, body in secs:
        if title:
            out.append(title)
        out.extend(body)
        k = _key(title) if title else ""
        if k in keys and k in prev:
            seen_keys.add(k)
            have = {ln.strip() for ln in body}
            lost = [ln for ln in prev[k] if ln.strip() not in have][-max_carried:]
            if lost:
                while out and not out[-1].strip():
                    out.pop()
                out.extend(lost)
    for t, body in _sections(_strip_ledger(previous)):
        k = _key(t) if t else ""
        if k in keys and k not in seen_keys and any(ln.strip() for ln in body):
            out.append(t)
            out.extend([ln for ln in body if ln.strip()][-max_carried:])
    return "\n".join(out)
