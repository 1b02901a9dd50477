"""The loop against an in-process scripted provider (the wire protocols are covered with the real SDKs elsewhere)."""

import asyncio
from dataclasses import dataclass

import pytest

from ghostline.agent import events as ev
from ghostline.agent.loop import AgentLoop, Budgets
from ghostline.agent.providers.base import (
    ContextLengthError,
    ProviderError,
    StreamRetry,
    StreamText,
    TurnComplete,
    TurnUsage,
)
from ghostline.agent.session import Session
from ghostline.compaction.transcript import Message, TextBlock, ToolUseBlock
from ghostline.sandbox.policy import Decision
from ghostline.tools.base import BaseTool, ToolContext, ToolResult
from ghostline.tools.registry import ToolRegistry


class ScriptedProvider:
    name = "scripted"
    model = "scripted-1"

    def __init__(self, turns):
        self.turns = list(turns)
        self.seen: list[list[Message]] = []

    async def stream_turn(self, system, messages, tools, max_output_tokens):
        self.seen.append([Message.from_dict(m.to_dict()) for m in messages])
        step = self.turns.pop(0)
        if isinstance(step, Exception):
            raise step
        text, uses = step
        if text:
            yield StreamText(text)
        yield TurnComplete(Message("assistant", ([TextBlock(text)] if text else []) +
                                   [u if isinstance(u, ToolUseBlock) else ToolUseBlock(f"t{len(self.seen)}_{i}", *u)
                                    for i, u in enumerate(uses)]),
                           TurnUsage(input_tokens=100, output_tokens=10), "tool_use" if uses else "end_turn")


@dataclass
class EchoTool(BaseTool):
    name: str = "echo"
    description: str = "echo"
    kind: str = "read"
    input_schema: dict = None
    barrier: asyncio.Barrier | None = None

    def __post_init__(self):
        self.input_schema = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}

    async def run(self, args, ctx):
        if self.barrier is not None:
            await asyncio.wait_for(self.barrier.wait(), 5)  # only passes if the calls overlap
        return ToolResult(args["text"].upper())


@dataclass
class BoomTool(BaseTool):
    name: str = "boom"
    description: str = "always fails"
    kind: str = "other"
    input_schema: dict = None

    def __post_init__(self):
        self.input_schema = {"type": "object", "properties": {}}

    async def run(self, args, ctx):
        raise RuntimeError("disk on fire")


class QuietCompactor:
    """The parts of compaction.Compactor's interface a test compactor does not care about."""

    def observe(self, event):
        pass

    def record_usage(self, input_tokens):
        pass


def _loop(tmp_path, turns, **kw):
    provider = ScriptedProvider(turns)
    ctx = ToolContext(workspace=tmp_path, cwd=tmp_path)
    tools = kw.pop("tools", [EchoTool(), BoomTool()])
    registry = ToolRegistry(tools, policy=kw.pop("policy", None))
    return provider, AgentLoop(provider=provider, registry=registry, ctx=ctx, system="sys", **kw)


async def _collect(loop, text="do it"):
    return [e async for e in loop.run(text)]


async def test_tool_calls_then_done(tmp_path):
    provider, loop = _loop(tmp_path, [("let me look", [("echo", {"text": "hi"})]), ("all done", [])])
    events = await _collect(loop)
    kinds = [e.type for e in events]
    assert kinds[0] == "user_message" and kinds[-1] == "done"
    result = next(e for e in events if isinstance(e, ev.ToolResultEvent))
    assert result.content == "HI" and not result.is_error
    assert events[-1].result == "all done" and events[-1].subtype == "success"
    # the second model call saw the tool result paired with its tool_use
    second = provider.seen[1]
    assert second[-1].tool_results[0].tool_use_id == second[-2].tool_uses[0].id


async def test_tool_error_goes_back_to_the_model(tmp_path):
    provider, loop = _loop(tmp_path, [("", [("boom", {})]), ("recovered", [])])
    events = await _collect(loop)
    err = next(e for e in events if isinstance(e, ev.ToolResultEvent))
    assert err.is_error and "disk on fire" in err.content
    assert events[-1].subtype == "success" and events[-1].result == "recovered"


async def test_read_only_calls_run_concurrently(tmp_path):
    barrier = asyncio.Barrier(2)
    provider, loop = _loop(tmp_path, [("", [("echo", {"text": "a"}), ("echo", {"text": "b"})]), ("ok", [])],
                           tools=[EchoTool(barrier=barrier)])
    events = await _collect(loop)
    assert [e.content for e in events if isinstance(e, ev.ToolResultEvent)] == ["A", "B"]


@pytest.mark.parametrize(
    ("budgets", "subtype", "calls"),
    [
        (Budgets(max_turns=2), "error_max_turns", 2),
        (Budgets(max_tokens=150), "error_budget", 2),
        (Budgets(max_cost=0.6), "error_budget", 3),
    ],
)
async def test_budgets_stop_before_the_next_model_call(tmp_path, budgets, subtype, calls):
    forever = [("", [("echo", {"text": "x"})])] * 10
    provider, loop = _loop(tmp_path, forever, budgets=budgets, cost_of=lambda u: 0.25)
    events = await _collect(loop)
    assert events[-1].type == "done" and events[-1].subtype == subtype
    assert len(provider.seen) == calls


async def test_provider_failure_is_a_failed_event(tmp_path):
    provider, loop = _loop(tmp_path, [ProviderError("overloaded after 5 attempts")])
    events = await _collect(loop)
    assert events[-1].type == "failed" and "overloaded" in events[-1].error


async def test_context_error_compacts_and_retries(tmp_path):
    class Compactor(QuietCompactor):
        calls = 0

        async def prepare(self, system, tools, messages):
            return messages, []

        async def on_context_error(self, system, tools, messages, limit):
            self.calls += 1
            return [Message.user("summary of earlier work")], [
                type("C", (), {"stage": "auto_compact", "tokens_before": 900, "tokens_after": 100, "detail": ""})()]

    comp = Compactor()
    provider, loop = _loop(tmp_path, [ContextLengthError("too long", limit=1000), ("fine now", [])],
                           compactor=comp)
    events = await _collect(loop)
    assert comp.calls == 1
    assert any(isinstance(e, ev.Compaction) and e.stage == "auto_compact" for e in events)
    assert events[-1].subtype == "success"
    assert provider.seen[-1][0].text == "summary of earlier work"


async def test_repeated_context_errors_fail_cleanly(tmp_path):
    class Compactor(QuietCompactor):
        async def prepare(self, system, tools, messages):
            return messages, []

        async def on_context_error(self, system, tools, messages, limit):
            return messages, []

    provider, loop = _loop(tmp_path, [ContextLengthError("too long")] * 5, compactor=Compactor())
    events = await _collect(loop)
    assert events[-1].type == "failed" and "context window" in events[-1].error


async def test_headless_denies_what_needs_approval(tmp_path):
    class AskForBoom:
        def evaluate(self, action, *, mode, approval, workspace, cwd):
            return Decision("ask" if action.tool == "boom" else "allow", "writes outside")

    provider, loop = _loop(tmp_path, [("", [("boom", {}), ("echo", {"text": "y"})]), ("ok", [])],
                           policy=AskForBoom())
    events = await _collect(loop)
    results = [e for e in events if isinstance(e, ev.ToolResultEvent)]
    assert results[0].is_error and "approval" in results[0].content and "disk on fire" not in results[0].content
    assert results[1].content == "Y"
    assert any(isinstance(e, ev.ApprovalNeeded) and e.decision == "denied" for e in events)


async def test_events_are_logged_and_resume_sees_them(tmp_path):
    session = Session.create(tmp_path / "s", cwd=tmp_path, model="scripted")
    provider, loop = _loop(tmp_path, [("", [("echo", {"text": "q"})]), ("first done", [])], session=session)
    await _collect(loop, "task one")
    session.close()
    again = Session.open(tmp_path / "s", session.id)
    transcript = again.transcript()
    provider2, loop2 = _loop(tmp_path, [("second done", [])], session=again, messages=transcript)
    events = await _collect(loop2, "task two")
    assert events[-1].result == "second done"
    sent = provider2.seen[0]
    assert sent[0].text == "task one" and sent[-1].content[-1] == TextBlock("task two")
    assert any(r.content == "Q" for m in sent for r in m.tool_results)


async def test_stream_retry_becomes_an_event(tmp_path):
    class Flaky(ScriptedProvider):
        async def stream_turn(self, system, messages, tools, max_output_tokens):
            yield StreamText("partial")
            yield StreamRetry(1, 0.0, "stream cut")
            async for item in super().stream_turn(system, messages, tools, max_output_tokens):
                yield item

    provider = Flaky([("whole answer", [])])
    loop = AgentLoop(provider=provider, registry=ToolRegistry([]), ctx=ToolContext(workspace=tmp_path, cwd=tmp_path),
                     system="s")
    events = await _collect(loop)
    assert any(isinstance(e, ev.Retry) for e in events)
    assert events[-1].result == "whole answer"
    # the transcript holds the final message once, not the cut one
    assert [m.text for m in loop.messages if m.role == "assistant"] == ["whole answer"]


async def test_malformed_arguments_are_an_error_result_and_nothing_runs(tmp_path):
    ran = []

    @dataclass
    class Recorder(EchoTool):
        async def run(self, args, ctx):
            ran.append(args)
            return ToolResult("ran")

    provider, loop = _loop(tmp_path, [("", [ToolUseBlock("t1", "echo", {}, raw_arguments='{"text": "unterminated')]), ("ok", [])],
                           tools=[Recorder()])
    events = await _collect(loop)
    result = next(e for e in events if isinstance(e, ev.ToolResultEvent))
    assert result.is_error and "not a valid JSON object" in result.content and "unterminated" in result.content
    assert ran == []
    assert events[-1].subtype == "success"


async def test_repeated_edit_failures_ask_for_a_checked_whole_file_rewrite(tmp_path):
    from ghostline.tools import EditTool, ReadTool, WriteTool

    target = tmp_path / "big.py"
    original = "".join(f"def f{i}():\n    return {i}\n\n" for i in range(60))
    target.write_text(original)
    bad_edit = ("edit", {"path": "big.py", "old_string": "def nothing_like_this():\n    pass", "new_string": "x"})
    truncated = "def f0():\n    return 100\n\n# ... rest of the file unchanged ...\n"
    full = original.replace("return 0\n", "return 100\n", 1)
    provider, loop = _loop(tmp_path, [
        ("", [("read", {"path": "big.py"})]),
        ("", [bad_edit]),
        ("", [bad_edit]),
        ("", [("write", {"path": "big.py", "content": truncated})]),
        ("", [("write", {"path": "big.py", "content": full})]),
        ("rewritten", []),
    ], tools=[ReadTool(), EditTool(), WriteTool()])
    events = await _collect(loop)
    results = [e for e in events if isinstance(e, ev.ToolResultEvent)]
    assert results[1].is_error and "complete new content" not in results[1].content
    assert results[2].is_error and "failed 2 times" in results[2].content  # second failure: rewrite requested
    assert results[3].is_error  # the elided rewrite is refused, the file untouched
    assert target.read_text() != truncated
    assert not results[4].is_error and target.read_text() == full
    assert events[-1].subtype == "success"


async def test_a_running_command_streams_its_output_and_the_user_can_run_one_too(tmp_path):
    from ghostline.tools import BashTool

    provider, loop = _loop(tmp_path, [("", [("bash", {"command": "echo one; echo two"})]), ("done", [])],
                           tools=[BashTool()])
    loop.ctx.sandbox_mode = "full-access"
    events = await _collect(loop)
    call_id = next(e.id for e in events if isinstance(e, ev.ToolCall))
    live = "".join(e.text for e in events if isinstance(e, ev.ToolOutput) and e.id == call_id)
    assert live == "one\ntwo\n"
    result = next(e for e in events if isinstance(e, ev.ToolResultEvent))
    assert events.index(result) > max(i for i, e in enumerate(events) if isinstance(e, ev.ToolOutput))
    shell = [e async for e in loop.shell("echo from-user; exit 3", "s1")]
    assert [e.type for e in shell][-1] == "shell_run" and shell[-1].exit_code == 3
    assert "".join(e.text for e in shell if isinstance(e, ev.ToolOutput)) == "from-user\n"
    # the model reads it with the next message
    assert "from-user" in loop.messages[-1].text and "exited with code 3" in loop.messages[-1].text


async def test_undo_without_checkpoints_is_one_clear_error(tmp_path):
    from ghostline.agent.loop import UndoError

    _, loop = _loop(tmp_path, [])
    with pytest.raises(UndoError, match="checkpoints are not available"):
        await loop.undo(1)


async def test_a_todo_list_result_becomes_an_event_and_stays_json_objects(tmp_path):
    from ghostline.tools import TodoWriteTool

    todos = [{"content": "a", "status": "completed"}, {"content": "b", "status": "pending"}]
    session = Session.create(tmp_path / "s", cwd=tmp_path, model="scripted")
    provider, loop = _loop(tmp_path, [("", [("todo_write", {"todos": todos})]), ("ok", [])],
                           tools=[TodoWriteTool()], session=session)
    events = await _collect(loop)
    listed = [e for e in events if isinstance(e, ev.TodoList)]
    assert len(listed) == 1 and listed[0].items == todos and listed[0].id == "t1_0"
    result = next(e for e in events if isinstance(e, ev.ToolResultEvent))
    assert result.meta["todos"] == todos  # objects, not their str
    assert provider.seen[1][-1].tool_results[0].meta["todos"] == todos
    from ghostline.agent.session import latest_todos

    session.close()
    assert latest_todos(Session.open(tmp_path / "s", session.id).records()) == todos


async def test_plan_mode_adds_its_section_to_the_system_prompt_only_while_on(tmp_path):
    from ghostline.agent.plan import PLAN_PROMPT

    provider = ScriptedProvider([])
    ctx = ToolContext(workspace=tmp_path, cwd=tmp_path, approval="plan")
    loop = AgentLoop(provider=provider, registry=ToolRegistry([]), ctx=ctx, system="sys")
    assert loop.system == "sys" + PLAN_PROMPT
    loop.set_approval_mode("auto-edit")
    assert loop.system == "sys" and ctx.approval == "auto-edit"
    loop.set_approval_mode("plan")
    assert loop.system.endswith(PLAN_PROMPT)


@dataclass
class NarratorTool(EchoTool):
    """Reports events of its own while it runs, as a subagent's task call does."""

    name: str = "narrate"

    async def run(self, args, ctx):
        ctx.report(ev.TextDelta("thinking…"))
        ctx.report(ev.ToolCall("inner1", "echo", {"text": "x"}, "read", "echo x"))
        return ToolResult("told")


async def test_reports_of_a_running_call_are_nested_events_logged_but_not_in_the_transcript(tmp_path):
    session = Session.create(tmp_path / "s", cwd=tmp_path, model="scripted")
    provider, loop = _loop(tmp_path, [("", [("narrate", {"text": "go"})]), ("ok", [])], tools=[NarratorTool()],
                           session=session)
    events = await _collect(loop)
    nested = [e for e in events if isinstance(e, ev.SubagentEvent)]
    assert [(e.parent_tool_use_id, e.event.type) for e in nested] == [("t1_0", "text_delta"), ("t1_0", "tool_call")]
    assert nested[1].to_dict() == {"type": "subagent_event", "parent_tool_use_id": "t1_0", "event": {
        "type": "tool_call", "id": "inner1", "name": "echo", "input": {"text": "x"}, "kind": "read",
        "title": "echo x"}}
    session.close()
    logged = [r for r in Session.open(tmp_path / "s", session.id).records() if r["type"] == "subagent_event"]
    assert [r["event"]["type"] for r in logged] == ["tool_call"]  # deltas are shown, never logged
    assert all(b.tool_use_id != "inner1" for m in loop.messages for b in m.tool_results)
    assert [u.id for m in loop.messages for u in m.tool_uses] == ["t1_0"]
