import json

from ghostline.compaction.ledger import Ledger
from ghostline.compaction.testruns import parse_test_output
from ghostline.compaction.toolcalls import error_line

from .helpers import KIND_OF, T

PYTEST_OUT = """....F..
=================================== FAILURES ===================================
E   KeyError: 'tenant_42'
=========================== short test summary info ============================
FAILED tests/test_router.py::test_route - KeyError: 'tenant_42'
FAILED tests/test_router.py::test_other
========================= 2 failed, 5 passed, 1 skipped in 0.42s ==========================
"""
PYTEST_Q = "....\n4 passed in 0.10s\n"
JEST_OUT = """ FAIL  src/sum.test.js
  ● sum › adds numbers

Tests:       1 failed, 3 passed, 4 total
Time:        1.2 s
"""
GO_OUT = """--- FAIL: TestRoute (0.00s)
    router_test.go:12: want 1 got 2
--- PASS: TestOther (0.00s)
FAIL
FAIL\texample.com/router\t0.012s
ok  \texample.com/util\t0.003s
"""


def test_parse_pytest():
    t = parse_test_output(PYTEST_OUT)
    assert t["framework"] == "pytest"
    assert (t["passed"], t["failed"], t["skipped"]) == (5, 2, 1)
    assert t["failing"] == ["tests/test_router.py::test_route", "tests/test_router.py::test_other"]
    q = parse_test_output(PYTEST_Q)
    assert (q["passed"], q["failed"]) == (4, 0)


def test_parse_jest_and_go():
    j = parse_test_output(JEST_OUT)
    assert j["framework"] == "jest" and (j["passed"], j["failed"]) == (3, 1)
    assert j["failing"] == ["sum › adds numbers"]
    g = parse_test_output(GO_OUT)
    assert g["framework"] == "go" and g["failed"] == 1 and g["failing"] == ["TestRoute"]
    assert parse_test_output("just some output\nno tests here") is None


def test_error_line_prefers_the_real_error():
    assert error_line(PYTEST_OUT) == "E   KeyError: 'tenant_42'"
    assert error_line("step 1\nstep 2\nfatal: lock held by pid 12\nmake: *** Error 2") == "fatal: lock held by pid 12"
    assert error_line("all good") == "all good"
    assert error_line("") == ""


def _events_for(t: T) -> list[dict]:
    evs = [{"type": "user_message", "text": t.messages[0].text}]
    for m in t.messages[1:]:
        for b in m.content:
            if b.type == "tool_use":
                evs.append({"type": "tool_call", "id": b.id, "name": b.name, "input": b.input})
            elif b.type == "tool_result":
                evs.append({"type": "tool_result", "id": b.tool_use_id, "name": "?", "content": b.content,
                            "is_error": b.is_error, "meta": b.meta})
            elif b.type == "text" and m.role == "user":
                evs.append({"type": "user_message", "text": b.text})
    return evs


def make_session() -> T:
    t = T("Port the router. Never touch migrations/.")
    t.read("src/router.py")
    t.edit("src/router.py")
    t.edit("src/util.py", ok=False)
    t.bash("pytest -q", PYTEST_OUT, code=1)
    t.bash("make migrate", "running\nfatal: migration lock held by pid 4242", code=2,
           user="Also: keep the public API stable.")
    t.call("write", {"path": "src/new.py", "content": "x = 1\n"}, "Wrote src/new.py", meta={"path": "src/new.py"})
    t.call("bash", {"command": "rm -rf build"}, "the user declined this action (destructive)", is_error=True)
    todos = [{"id": "T-1", "content": "port router", "status": "done"},
             {"id": "T-2", "content": "fix tests", "status": "pending"}]
    t.call("todo", {"todos": todos}, "ok", meta={"todos": todos})
    return t


def test_ledger_from_events():
    led = Ledger(kind_of=KIND_OF)
    for e in _events_for(make_session()):
        led.observe(e)
    assert [m["text"] for m in led.user_messages] == ["Port the router. Never touch migrations/.",
                                                      "Also: keep the public API stable."]
    assert led.files["src/router.py"]["read"] == 1 and led.files["src/router.py"]["written"] == 1
    assert led.files["src/router.py"]["write_sha"] == "cd" * 32
    assert led.files["src/router.py"]["read_sha"] == "ab" * 32
    assert set(led.files_modified) == {"src/router.py", "src/new.py"}
    assert "src/util.py" not in led.files_modified  # the failed edit did not modify it
    whats = [f["what"] for f in led.failures]
    assert any(w.startswith("edit src/util.py") for w in whats)
    assert any("make migrate" in w for w in whats)
    assert not any("pytest" in w for w in whats)  # a test run with failures is test status
    mig = next(f for f in led.failures if "make migrate" in f["what"])
    assert mig["exit_code"] == 2 and mig["error"] == "fatal: migration lock held by pid 4242"
    assert [c["exit_code"] for c in led.commands] == [1, 2]  # the denied one is not a command that ran
    assert led.tests[-1]["failed"] == 2 and led.tests[-1]["command"] == "pytest -q"
    assert len(led.denied) == 1 and "rm -rf build" in led.denied[0]["what"]
    assert led.todos["items"][1]["id"] == "T-2"


def test_transcript_ingest_dedupes_with_events():
    t = make_session()
    led = Ledger(kind_of=KIND_OF)
    for e in _events_for(t):
        led.observe(e)
    snapshot = json.dumps(led.to_dict(), sort_keys=True)
    led.ingest(t.messages)  # the same calls again, from the transcript
    assert json.dumps(led.to_dict(), sort_keys=True) == snapshot
    led2 = Ledger(kind_of=KIND_OF)
    led2.ingest(t.messages)  # the transcript alone gives the same facts
    assert led2.files_modified == led.files_modified
    assert [f["what"] for f in led2.failures] == [f["what"] for f in led.failures]


def test_denied_call_from_event_and_result_is_recorded_once():
    led = Ledger(kind_of=KIND_OF)
    led.observe({"type": "turn_started", "turn": 3})
    led.observe({"type": "tool_call", "id": "d1", "name": "bash", "input": {"command": "rm -rf build"}})
    led.observe({"type": "approval_needed", "tool": "bash", "input": {"command": "rm -rf build"},
                 "reason": "the user declined this action (destructive)", "decision": "denied"})
    led.observe({"type": "tool_result", "id": "d1", "name": "bash", "is_error": True, "meta": {"denied": True},
                 "content": "the user declined this action (destructive)"})
    assert len(led.denied) == 1 and led.commands == [] and led.failures == []


def test_approval_denied_event():
    led = Ledger(kind_of=KIND_OF)
    led.observe({"type": "approval_needed", "tool": "bash", "input": {"command": "curl x | sh"},
                 "reason": "network", "decision": "denied"})
    led.observe({"type": "approval_needed", "tool": "bash", "input": {"command": "ls"}, "reason": "x",
                 "decision": "allowed"})
    assert len(led.denied) == 1 and 'curl x | sh' in led.denied[0]["what"]


def test_serialisation_roundtrip():
    led = Ledger(kind_of=KIND_OF)
    led.ingest(make_session().messages)
    again = Ledger.from_dict(json.loads(led.to_json()), kind_of=KIND_OF)
    assert again.to_dict() == led.to_dict()
    again.ingest(make_session().messages)  # seen ids survive the round trip
    assert again.to_dict() == led.to_dict()


def test_render_has_the_facts_and_respects_the_budget(counter):
    led = Ledger(kind_of=KIND_OF)
    led.ingest(make_session().messages)
    for i in range(300):
        led.commands.append({"id": f"x{i}", "command": f"echo {i} " + "pad " * 20, "exit_code": 0, "turn": i})
    c = counter
    text = led.render(c.count, 600, full_path="/tmp/s/ledger.json")
    assert "Never touch migrations/." in text and "keep the public API stable" in text
    assert "src/new.py" in text and "src/router.py" in text
    assert "fatal: migration lock held by pid 4242" in text
    assert "rm -rf build" in text and "T-2" in text
    assert "/tmp/s/ledger.json" in text
    assert "older entries in the full ledger" in text
    assert c.count(text) <= 700
    big = led.render(c.count, 100_000)
    assert "echo 0 " in big


def test_must_keep_facts_survive_a_tiny_budget(counter):
    led = Ledger(kind_of=KIND_OF)
    led.ingest(make_session().messages)
    text = led.render(counter.count, 50)
    assert "Never touch migrations/." in text and "src/new.py" in text and "make migrate" in text


def test_carry_forward_keeps_what_the_new_summary_dropped():
    from ghostline.compaction.summary import carry_forward

    prev = ("[Compacted history]\n## Goal\nX\n## Decisions (and why)\n- D-1: WAL\n- D-2: queue\n"
            "## Constraints and preferences\n- never sudo\n## Next step\nold\n\n## Ledger (recorded)\n- ledger line")
    new = "## Goal\nX\n## Decisions (and why)\n- D-3: ulid\n- D-2: queue\n## Next step\nrun tests"
    out = carry_forward(prev, new)
    assert out.index("D-3") < out.index("D-1") < out.index("## Next step")
    assert out.count("D-2: queue") == 1
    assert "- never sudo" in out and "run tests" in out
    assert "old" not in out.split("## Next step")[1]  # only decisions / constraints / errors are carried
    assert "ledger line" not in out
    assert carry_forward("", new) == new


def test_without_kinds_no_tool_is_a_read_or_a_command():
    led = Ledger()  # no kind_of: every tool is "other", whatever its name
    led.ingest(make_session().messages)
    assert led.files_read == [] and led.commands == [] and led.tests == []
    assert led.files_modified == []  # the session's edits report no files_changed
    t = T()
    t.n = 100  # new call ids
    t.call("apply_patch", {"patch": "..."}, "Applied", meta={"files_changed": ["a.py", "b.py"]})
    led.ingest(t.messages)
    assert led.files_modified == ["a.py", "b.py"]  # what a result says it changed counts for any kind


def test_kinds_not_names_decide():
    kinds = {"view_file": "read", "patch_file": "edit", "run_it": "shell"}.get
    t = T()
    t.call("view_file", {"file": "src/a.py"}, "x = 1", meta={"path": "src/a.py"})
    t.call("patch_file", {"file": "src/b.py"}, "patched", meta={"files_changed": ["src/b.py"]})
    t.call("run_it", {"command": "pytest -q"}, PYTEST_Q, meta={"exit_code": 0})
    t.call("grep", {"path": "src", "pattern": "x"}, "src/a.py:1: x = 1")  # a search names no file it read
    led = Ledger(kind_of=kinds)
    led.ingest(t.messages)
    assert led.files_read == ["src/a.py"] and led.files_modified == ["src/b.py"]
    assert [c["command"] for c in led.commands] == ["pytest -q"] and led.tests[0]["passed"] == 4
    assert "src" not in led.files


def test_todo_list_comes_from_result_meta():
    t = T()
    t.call("plan", {"steps": ["a"]}, "ok", meta={"todos": [{"content": "write tests", "status": "pending"}]})
    t.call("todo", {"todos": [{"content": "ignored: not reported by the result"}]}, "ok")
    led = Ledger(kind_of=KIND_OF)
    led.ingest(t.messages)
    assert led.todos == {"turn": 0, "items": [{"content": "write tests", "status": "pending"}]}
    assert "content=write tests status=pending" in led.render()
