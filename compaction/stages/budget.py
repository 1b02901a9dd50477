"""Stage 1, budget (always): a tool result over the per-result cap, or a turn over the per-turn cap, is saved in
full beside the session and replaced by head + tail + size + exit code + path."""

from __future__ import annotations

from typing import Any

from ghostline.compaction.blocks import Position, ToolCallIndex, with_blocks
from ghostline.compaction.run import RunContext
from ghostline.compaction.toolcalls import describe_call, exit_code_of
from ghostline.compaction.transcript import Message, ToolResultBlock

STUB_OVERHEAD = 90  # tokens a budget stub adds to the head and tail it keeps


def budget(run: RunContext, msgs: list[Message]) -> list[Message]:
    before = run.measure(msgs)
    cap, turn_cap = run.cfg.result_cap(run.eff), run.cfg.turn_cap(run.eff)
    idx: ToolCallIndex | None = None
    edits: dict[Position, Any] = {}
    for mi, m in enumerate(msgs):
        if m.role != "user":
            continue
        results = [(bi, b) for bi, b in enumerate(m.content) if isinstance(b, ToolResultBlock)]
        if not results:
            continue
        sizes = {bi: run.counter.count(b.content) for bi, b in results}
        caps = _result_caps(run, sizes, cap, turn_cap)
        for bi, b in results:
            if bi in caps and sizes[bi] > _stub_size(run, caps[bi]):
                idx = idx or run.index(msgs)
                edits[(mi, bi)] = _stub(run, b, caps[bi], idx)
    if not edits:
        return msgs
    out = with_blocks(msgs, edits)
    after = run.measure(out)
    run.emit("budget", before, after, f"{len(edits)} oversized tool result(s) cut to head + tail "
             f"(cap {cap} tokens/result, {turn_cap}/turn); full outputs saved")
    return out


def _stub_size(run: RunContext, cap: int) -> int:
    """About what a result cut to `cap` costs: its head and tail plus the stub's own text."""
    return int(cap * (run.cfg.head_fraction + run.cfg.tail_fraction)) + STUB_OVERHEAD


def _result_caps(run: RunContext, sizes: dict[int, int], cap: int, turn_cap: int) -> dict[int, int]:
    """The cap of each result of one turn (block index -> tokens) that is cut: every result over the per-result
    cap; then, while the turn is over its cap, the largest results get an equal share of it."""
    caps = {bi: cap for bi, n in sizes.items() if n > cap}

    def after(bi: int) -> int:
        return min(sizes[bi], _stub_size(run, caps[bi])) if bi in caps else sizes[bi]

    total = sum(after(bi) for bi in sizes)
    if total > turn_cap:
        per = max(200, turn_cap // len(sizes))
        for bi in sorted(sizes, key=lambda b: (-sizes[b], b)):
            if total <= turn_cap:
                break
            if after(bi) <= per:
                continue
            old = after(bi)
            caps[bi] = min(caps.get(bi, cap), per)
            total += after(bi) - old
    return caps


def _stub(run: RunContext, b: ToolResultBlock, cap: int, idx: ToolCallIndex) -> ToolResultBlock:
    content = b.content
    n = run.counter.count(content)
    desc = describe_call(idx.name(b.tool_use_id), idx.input(b.tool_use_id), b.meta)
    if b.meta.get("full_output_path"):
        path = run.store.register(b.tool_use_id, b.meta["full_output_path"], desc)
    else:
        path = run.store.save(b.tool_use_id, content, desc)
    lines = b.meta.get("original_lines") or content.count("\n") + 1
    orig_tokens = b.meta.get("original_tokens") or n
    code = exit_code_of(b.meta)
    info = f"[output truncated by compaction: {orig_tokens} tokens, {lines} lines"
    if code is not None:
        info += f", exit code {code}"
    info += (f"; full output: {path} — read it with the read tool (offset/limit) if you need the middle]"
             if path else "; the full output was not kept]")
    head, tail = run.counter.head_tail(content, int(cap * run.cfg.head_fraction), int(cap * run.cfg.tail_fraction))
    if b.meta.get("compaction") == "budget" and head.startswith("[output truncated by compaction"):
        head = head.split("\n", 1)[1] if "\n" in head else ""
    omitted = max(0, n - run.counter.count(head) - run.counter.count(tail))
    text = f"{info}\n{head}\n[… {omitted} tokens omitted …]\n{tail}"
    meta = {**b.meta, "compaction": "budget", "original_tokens": orig_tokens, "original_lines": lines}
    if path:
        meta["full_output_path"] = path
    return ToolResultBlock(b.tool_use_id, text, b.is_error, meta)
