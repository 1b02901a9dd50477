"""The translation of loop events into ACP updates (no process: the functions alone)."""

from __future__ import annotations

from pathlib import Path

from acp import text_block
from acp.helpers import embedded_text_resource, resource_block, resource_link_block

from ghostline.agent import events as ev
from ghostline.agent.acp.prompt import prompt_text
from ghostline.agent.acp.updates import Translator, plan, replay, stop_reason


async def test_edit_calls_carry_locations_and_a_whole_file_diff(tmp_path: Path) -> None:
    texts = {str(tmp_path / "a.py"): "x = 1\n"}

    async def read(path: str) -> str | None:
        return texts.get(path)

    t = Translator(tmp_path, read)
    [start] = await t.updates(ev.ToolCall("c1", "edit", {"path": "a.py"}, "edit", "edit a.py"))
    assert (start.kind, start.status, start.locations[0].path) == ("edit", "pending", str(tmp_path / "a.py"))
    texts[str(tmp_path / "a.py")] = "x = 2\n"
    [done] = await t.updates(ev.ToolResultEvent("c1", "edit", "Edited a.py.", False,
                                                {"files_changed": [str(tmp_path / "a.py")]}))
    diff = done.content[0]
    assert (done.status, diff.old_text, diff.new_text) == ("completed", "x = 1\n", "x = 2\n")
    [live] = await t.updates(ev.ToolOutput("c2", "line\n"))
    assert live.status == "in_progress" and live.content[0].content.text == "line\n"
    [shell] = await t.updates(ev.ToolCall("c3", "bash", {"command": "ls"}, "shell", "bash ls"))
    assert shell.kind == "execute" and shell.locations is None


def test_stop_reasons_and_plans() -> None:
    assert stop_reason(ev.Done("", "success")) == "end_turn"
    assert stop_reason(ev.Done("", "error_max_turns")) == "max_turn_requests"
    assert stop_reason(ev.Done("", "error_budget")) == "max_tokens"
    [p] = plan({"todos": [{"content": "write tests", "status": "in_progress"}, {"content": "x", "status": "??"}]})
    assert [(e.content, e.status) for e in p.entries] == [("write tests", "in_progress"), ("x", "pending")]
    assert plan({}) == []


def test_prompt_blocks_become_the_users_text() -> None:
    text = prompt_text([text_block("explain"), resource_block(embedded_text_resource("file:///a.py", "x = 1")),
                        resource_link_block("b.py", "file:///b.py")])
    assert text.startswith("explain") and '<context uri="file:///a.py">\nx = 1\n</context>' in text
    assert "[b.py](file:///b.py)" in text


def test_replay_of_saved_records(tmp_path: Path) -> None:
    records = [{"type": "session_meta"}, {"type": "user_message", "text": "hi"},
               {"type": "assistant_message", "message": {"role": "assistant", "content": [
                   {"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "hello"},
                   {"type": "tool_use", "id": "c1", "name": "read", "input": {"path": "a"}}]}},
               {"type": "tool_call", "id": "c1", "name": "read", "input": {"path": "a"}, "kind": "read",
                "title": "read a"},
               {"type": "tool_result", "id": "c1", "name": "read", "content": "boom", "is_error": True}]
    kinds = [(u.session_update, getattr(u, "status", None)) for u in replay(iter(records), tmp_path)]
    assert kinds == [("user_message_chunk", None), ("agent_thought_chunk", None), ("agent_message_chunk", None),
                     ("tool_call", "pending"), ("tool_call_update", "failed")]
