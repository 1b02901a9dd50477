"""Stage 2, snip (above `snip_at`): results that carry nothing go, oldest first, until under `snip_target`.

Empty results and denied calls are dropped with their call (the pair), or stubbed when the pair cannot go; a read
of a file that a later full read or whole-file write of the same file repeats becomes a one-line stub."""

from __future__ import annotations

from typing import Any

from ghostline.compaction.blocks import (
    Position,
    ToolCallIndex,
    merge_adjacent_assistants,
    stub_kind,
    with_blocks,
)
from ghostline.compaction.run import RunContext
from ghostline.compaction.toolcalls import (
    READ,
    error_line,
    is_denied,
    is_partial_read,
    is_whole_file_write,
    read_path,
    tool_path,
)
from ghostline.compaction.transcript import Message, ToolResultBlock

Candidate = tuple[int, int, ToolResultBlock, str]  # message index, block index, result, why: denied|empty|superseded


def snip(run: RunContext, msgs: list[Message], target_frac: float) -> list[Message]:
    before = run.tokens
    target = run.target_tokens(target_frac)
    idx = run.index(msgs)
    cands = _candidates(idx)
    if not cands:
        return msgs
    edits: dict[Position, Any] = {}
    why_counts: dict[str, int] = {}
    cur = run.tokens
    dropped_pairs = False
    for mi, bi, b, why in cands:
        if cur <= target:
            break
        if why in ("denied", "empty") and _pair_can_go(msgs, idx, mi, b):
            umi, use = idx.uses[b.tool_use_id]
            edits[(mi, bi)] = None
            edits[(umi, msgs[umi].content.index(use))] = None
            cur -= int((run.counter.block_tokens(b) + run.counter.block_tokens(use)) * run.acct.factor)
            dropped_pairs = True
        else:
            if why == "empty":
                continue  # nothing to gain by stubbing an empty result
            new = _stub(b, why, idx)
            gain = run.counter.block_tokens(b) - run.counter.block_tokens(new)
            if gain <= 0:
                continue
            edits[(mi, bi)] = new
            cur -= int(gain * run.acct.factor)
        why_counts[why] = why_counts.get(why, 0) + 1
    if not edits:
        return msgs
    out = with_blocks(msgs, edits)
    if dropped_pairs:
        out = merge_adjacent_assistants(out)
    after = run.measure(out)
    run.emit("snip", before, after, ", ".join(f"{v} {k}" for k, v in sorted(why_counts.items())))
    return out


def _candidates(idx: ToolCallIndex) -> list[Candidate]:
    """What snip may remove, oldest first."""
    last_full = _last_full_content(idx)
    cands: list[Candidate] = []
    for k, (mi, bi, b) in enumerate(idx.results):
        if stub_kind(b):
            continue
        if is_denied(b.content, b.is_error, b.meta):
            cands.append((mi, bi, b, "denied"))
        elif not b.content.strip():
            cands.append((mi, bi, b, "empty"))
        elif idx.kind(b.tool_use_id) == READ and not b.is_error:
            p = read_path(b.meta)
            if p and last_full.get(p, k) > k:
                cands.append((mi, bi, b, "superseded"))
    return cands


def _last_full_content(idx: ToolCallIndex) -> dict[str, int]:
    """For each file, the position (in `idx.results`) of the last result that shows its whole content: a full
    read, or a whole-file write."""
    last: dict[str, int] = {}
    for k, (_mi, _bi, b) in enumerate(idx.results):
        if idx.kind(b.tool_use_id) == READ:
            p = read_path(b.meta)
        elif is_whole_file_write(b.meta):
            p = tool_path(idx.input(b.tool_use_id), b.meta)
        else:
            continue
        if p and not b.is_error and not is_partial_read(idx.input(b.tool_use_id), b.meta):
            last[p] = k
    return last


def _pair_can_go(msgs: list[Message], idx: ToolCallIndex, mi: int, b: ToolResultBlock) -> bool:
    """Whether the result and its call can be dropped together: the call is in the message just before; never in
    the last message (the model is about to read it). A message left empty goes too (and the assistant messages
    around it merge)."""
    umi, _use = idx.uses.get(b.tool_use_id, (None, None))
    return umi is not None and umi == mi - 1 and mi < len(msgs) - 1


def _stub(b: ToolResultBlock, why: str, idx: ToolCallIndex) -> ToolResultBlock:
    if why == "denied":
        text = f"[snipped: denied call — {error_line(b.content, 160)}]"
        return ToolResultBlock(b.tool_use_id, text, b.is_error, {**b.meta, "compaction": "snipped"})
    p = tool_path(idx.input(b.tool_use_id), b.meta)
    text = f"[superseded: an older read of {p}; a later read or write of this file follows]"
    return ToolResultBlock(b.tool_use_id, text, b.is_error, {**b.meta, "compaction": "superseded"})
