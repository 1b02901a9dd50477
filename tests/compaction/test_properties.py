"""Properties over random transcripts: valid pairs, determinism, idempotence, untouched user messages."""

import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ghostline.compaction import CompactionConfig, Compactor, validate_pairs
from ghostline.compaction.transcript import Message, TextBlock, ToolResultBlock, ToolUseBlock

from .helpers import KIND_OF, SYSTEM, TOOLS, lines

step = st.tuples(
    st.sampled_from(["read", "bash", "edit", "write", "todo", "grep"]),
    st.integers(0, 4),  # file / command variant
    st.sampled_from([0, 1, 5, 40, 200, 900]),  # output lines
    st.booleans(),  # error
    st.booleans(),  # a user message arrives with the result
    st.integers(1, 2),  # parallel calls in this turn
)


def build(steps) -> list[Message]:
    msgs = [Message.user("Do the task. Constraint: never push.")]
    n = 0
    for name, v, n_lines, err, user, par in steps:
        uses, results = [], []
        for _ in range(par):
            uid = f"c{n}"
            n += 1
            inp = {"path": f"src/f{v}.py"} if name in ("read", "edit", "write") else {"command": f"cmd {v}"}
            if name == "write":
                inp["content"] = lines(n_lines, "w")
            if name == "todo":
                inp = {"todos": [{"id": f"T-{v}", "content": "x"}]}
            uses.append(ToolUseBlock(uid, name, inp))
            out = "" if n_lines == 0 else lines(n_lines, f"{name}{v}")
            meta = {"exit_code": 1 if err else 0} if name == "bash" else {"path": inp.get("path", "")}
            if name == "write":
                meta.update(action="write", files_changed=[inp["path"]])
            if name == "todo":
                meta["todos"] = inp["todos"]
            results.append(ToolResultBlock(uid, out, err and name != "bash", meta))
        msgs.append(Message("assistant", [TextBlock(f"step {n}")] + uses))
        if user:
            results.append(TextBlock(f"user note {n}"))
        msgs.append(Message("user", results))
    return msgs


CONFIGS = [CompactionConfig(), CompactionConfig(keep_tool_turns=15, recent_max_fraction=0.5)]


async def run_prepare(msgs, window, store, counter, cfg=0):
    c = Compactor(CONFIGS[cfg], window=window, reserved_output=window // 8, store_dir=store, counter=counter,
                  kind_of=KIND_OF)
    out, evs = await c.prepare(SYSTEM, TOOLS, msgs)
    return c, out, evs


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=40), st.sampled_from([8_000, 16_000, 32_000]), st.sampled_from([0, 1]))
def test_pipeline_properties(counter, steps, window, cfg):
    msgs = build(steps)
    original = [m.to_dict() for m in msgs]
    with tempfile.TemporaryDirectory() as d:
        c, out, evs = asyncio.run(run_prepare(msgs, window, Path(d) / "a", counter, cfg))
        assert not validate_pairs(out), validate_pairs(out)
        assert [m.to_dict() for m in msgs] == original  # input untouched
        # idempotent: the output is a fixed point
        out2, evs2 = asyncio.run(c.prepare(SYSTEM, TOOLS, out))
        assert evs2 == [] and out2 is out
        # deterministic: a fresh compactor on the same input gives the same output (paths aside)
        _, out3, evs3 = asyncio.run(run_prepare(msgs, window, Path(d) / "b", counter, cfg))
        a = str([m.to_dict() for m in out]).replace(str(Path(d) / "a"), "S")
        b = str([m.to_dict() for m in out3]).replace(str(Path(d) / "b"), "S")
        assert a == b and [e.stage for e in evs] == [e.stage for e in evs3]
        # user messages survive verbatim, in the transcript or in the summary
        text = str([m.to_dict() for m in out])
        for m in msgs:
            for blk in m.content:
                if isinstance(blk, TextBlock) and m.role == "user":
                    assert blk.text in text
        if evs:
            assert c.estimate(SYSTEM, TOOLS, out) <= c.estimate(SYSTEM, TOOLS, msgs)
        # roles alternate and the transcript starts with the user
        assert out[0].role == "user"
        assert all(x.role != y.role for x, y in zip(out, out[1:], strict=False))


def test_package_does_not_import_agent():
    code = ("import sys, ghostline.compaction, ghostline.compaction.pipeline; "
            "print([m for m in sys.modules if m.startswith(('ghostline.agent', 'agent'))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


async def test_observed_events_feed_the_ledger(tmp_path, counter):
    c = Compactor(window=100_000, reserved_output=4_000, store_dir=tmp_path, counter=counter, kind_of=KIND_OF)
    c.observe({"type": "user_message", "text": "Please keep Python 3.11 support."})
    c.observe({"type": "tool_call", "id": "x1", "name": "bash", "input": {"command": "make deploy"}})
    c.observe({"type": "tool_result", "id": "x1", "name": "bash", "content": "error: no credentials",
               "is_error": False, "meta": {"exit_code": 3}})
    c.observe({"type": "approval_needed", "tool": "write", "input": {"path": "/etc/hosts"}, "reason": "outside",
               "decision": "denied"})
    text = c.ledger.render()
    assert "Please keep Python 3.11 support." in text
    assert "make deploy" in text and "error: no credentials" in text and "/etc/hosts" in text
