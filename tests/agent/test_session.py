from ghostline.agent.session import (
    INTERRUPTED,
    Session,
    apply_event,
    close_dangling_tool_uses,
    list_sessions,
    session_totals,
)
from ghostline.compaction.transcript import Message, TextBlock, ToolUseBlock


def _assistant(*uses):
    return {"type": "assistant_message", "message": Message(
        "assistant", [TextBlock("working"), *[ToolUseBlock(i, "read", {"path": p}) for i, p in uses]]).to_dict()}


def test_events_fold_into_alternating_transcript():
    msgs: list[Message] = []
    for e in [
        {"type": "user_message", "text": "fix it"},
        _assistant(("t1", "a.py"), ("t2", "b.py")),
        {"type": "tool_result", "id": "t1", "name": "read", "content": "A"},
        {"type": "tool_result", "id": "t2", "name": "read", "content": "B", "is_error": True},
        {"type": "text_delta", "text": "ignored"},
        {"type": "user_message", "text": "and also this"},
    ]:
        apply_event(msgs, e)
    assert [m.role for m in msgs] == ["user", "assistant", "user"]
    results = msgs[2].tool_results
    assert [(r.tool_use_id, r.content, r.is_error) for r in results] == [("t1", "A", False), ("t2", "B", True)]
    assert msgs[2].content[-1] == TextBlock("and also this")


def test_dangling_tool_uses_get_interrupted_results():
    msgs: list[Message] = []
    apply_event(msgs, {"type": "user_message", "text": "go"})
    apply_event(msgs, _assistant(("t1", "a.py"), ("t2", "b.py")))
    apply_event(msgs, {"type": "tool_result", "id": "t1", "name": "read", "content": "done"})
    assert close_dangling_tool_uses(msgs) == ["t2"]
    ids = [(r.tool_use_id, r.content) for r in msgs[-1].tool_results]
    assert ids == [("t1", "done"), ("t2", INTERRUPTED)]
    assert close_dangling_tool_uses(msgs) == []  # idempotent


def test_session_log_survives_a_torn_last_line(tmp_path):
    s = Session.create(tmp_path, cwd=tmp_path, model="openai:x")
    s.append({"type": "user_message", "text": "hello"})
    s.append(_assistant(("t1", "a.py")))
    s.append({"type": "tool_result", "id": "t1", "name": "read", "content": "kept"})
    s.close()
    with open(s.path, "a") as f:
        f.write('{"type": "tool_result", "id": "t2", "cont')  # killed mid-write
    again = Session.open(tmp_path, s.id)
    t = again.transcript()
    assert t[0].text == "hello"
    assert t[-1].tool_results[0].content == "kept"


def test_list_sessions_newest_first_and_by_directory(tmp_path):
    a = tmp_path / "a"
    b = tmp_path / "b"
    a.mkdir()
    b.mkdir()
    root = tmp_path / "sessions"
    s1 = Session.create(root, cwd=a, model="m")
    s1.append({"type": "user_message", "text": "first task"})
    s1.append({"type": "done", "result": "ok", "subtype": "success", "num_turns": 1})
    s2 = Session.create(root, cwd=b, model="m")
    s3 = Session.create(root, cwd=a, model="m")
    for s in (s2, s3):
        s.append({"type": "session_started"})
    for s in (s1, s2, s3):
        s.close()
    ids = [i.id for i in list_sessions(root, a)]
    assert ids == sorted([s1.id, s3.id], reverse=True) or ids == [s3.id, s1.id]
    info = {i.id: i for i in list_sessions(root)}
    assert info[s1.id].task == "first task" and info[s1.id].status == "success"
    assert info[s2.id].status == "incomplete"


def test_a_session_file_appears_with_its_first_record(tmp_path):
    root = tmp_path / "sessions"
    s = Session.create(root, cwd=tmp_path, model="m")
    assert not s.exists and list_sessions(root) == [] and s.meta()["model"] == "m" and s.transcript() == []
    s.append({"type": "user_message", "text": "hi"})
    s.close()
    assert s.exists and [i.id for i in list_sessions(root)] == [s.id]
    assert [r["type"] for r in s.records()] == ["session_meta", "user_message"]


def test_totals_add_up_over_every_run_of_a_session():
    records = [
        {"type": "session_started"}, {"type": "turn_started"},
        {"type": "usage", "input_tokens": 10, "cache_read_input_tokens": 90, "output_tokens": 5, "cost_usd": 0.5},
        {"type": "turn_started"}, {"type": "usage", "input_tokens": 1, "output_tokens": 1, "cost_usd": 0.75},
        {"type": "session_started"}, {"type": "turn_started"},
        {"type": "usage", "input_tokens": 2, "output_tokens": 2, "cost_usd": 0.25},
    ]
    t = session_totals(iter(records))
    assert (t.turns, t.input_tokens, t.cached_tokens, t.output_tokens) == (3, 103, 90, 8)
    assert abs(t.cost_usd - 1.0) < 1e-9


def test_totals_count_a_subagents_turns_and_tokens():
    def nested(event):
        return {"type": "subagent_event", "parent_tool_use_id": "t1", "event": event}

    records = [
        {"type": "session_started"}, {"type": "turn_started"},
        {"type": "usage", "input_tokens": 10, "output_tokens": 5, "cost_usd": 0.5},
        nested({"type": "turn_started"}), nested({"type": "usage", "input_tokens": 20, "output_tokens": 2,
                                                  "cost_usd": 0.75}),
        {"type": "turn_started"}, {"type": "usage", "input_tokens": 1, "output_tokens": 1, "cost_usd": 1.0},
    ]
    t = session_totals(iter(records))
    assert (t.turns, t.input_tokens, t.output_tokens) == (3, 31, 8)
    assert abs(t.cost_usd - 1.0) < 1e-9  # usage events carry the run's cost so far, the subagent's included
