"""`agent run --verify CMD`: end to end through the real console script and the fake model server, plus units."""

from __future__ import annotations

import io
import json
import os
import pty
import signal
import subprocess
from pathlib import Path

import pytest

from ghostline.agent import events as ev
from ghostline.agent.render import EXIT_CODES, TextRenderer, exit_code_for, result_object
from ghostline.agent.session import Session, apply_event
from ghostline.agent.verify import output_tail, verification_feedback
from ghostline.compaction.transcript import Message
from tests.agent.test_e2e import AGENT, MODELS, _session_file, _wait_for, agent_env, make_repo, run_agent
from tests.fakeserver import FakeModelServer, reply

# Fails (exit 1, after 300 lines of noise) until calc.old_name adds again.
CHECK = ("python3 -c \"import calc\nfor i in range(300): print('noise line', i)\n"
         "assert calc.old_name(2, 3) == 5, 'old_name(2, 3) is %r' % calc.old_name(2, 3)\"")


def _user_texts(body: dict) -> list[str]:
    out = []
    for m in body["messages"]:
        if m["role"] != "user":
            continue
        c = m["content"]
        out += [c] if isinstance(c, str) else [b.get("text", "") for b in c if b.get("type") == "text"]
    return out


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_failure_goes_back_to_the_model_which_fixes_it(tmp_path, provider):
    repo = make_repo(tmp_path)
    script = [
        reply("", [("read", {"path": "calc.py"}, "r1")]),
        reply("Changing it.", [("edit", {"path": "calc.py", "old_string": "a + b", "new_string": "a - b"}, "c1")]),
        reply("Done."),
        reply("Oops, fixing.", [("edit", {"path": "calc.py", "old_string": "a - b", "new_string": "a + b"}, "c2")]),
        reply("Fixed now."),
    ]
    with FakeModelServer(script) as srv:
        r = run_agent(["run", "touch calc", "-m", MODELS[provider], "-o", "json", "--verify", CHECK],
                      cwd=repo, env=agent_env(tmp_path, srv, provider))
        bodies = [q.body for q in srv.requests]
        errors = list(srv.errors)
    assert r.returncode == 0, (r.stdout, r.stderr, errors)
    out = json.loads(r.stdout)
    assert out["subtype"] == "success" and out["result"] == "Fixed now."
    assert out["verification"] == {"command": CHECK, "passed": True, "attempts": 2, "max_attempts": 3,
                                   "last_exit_code": 0}
    assert len(bodies) == 5 and not errors
    # The fourth call carried the failure: command, exit code, the cut tail of the output.
    assert not any("verification" in t for b in bodies[:3] for t in _user_texts(b))
    feedback = _user_texts(bodies[3])[-1]
    assert CHECK in feedback and "exit code 1" in feedback and "attempt 1 of 3" in feedback
    assert "AssertionError: old_name(2, 3) is -1" in feedback
    assert "noise line 299" in feedback and "noise line 0\n" not in feedback
    assert "earlier output was cut" in feedback
    assert len(feedback.encode()) < 4096 + 1000
    assert _user_texts(bodies[4]).count(feedback) == 1  # sent once, kept in the transcript
    assert "a + b" in (repo / "calc.py").read_text()


def test_never_fixed_exits_5_with_every_event_streamed(tmp_path):
    repo = make_repo(tmp_path)
    (repo / "calc.py").write_text("def old_name(a, b):\n    return a * b\n")
    with FakeModelServer([reply("Done."), reply("Really done."), reply("Still done.")]) as srv:
        r = run_agent(["run", "x", "-m", MODELS["anthropic"], "-o", "stream-json", "--verify", CHECK,
                       "--verify-attempts", "2"], cwd=repo, env=agent_env(tmp_path, srv, "anthropic"))
        calls = len(srv.requests)
    assert r.returncode == 5, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    starts = [e for e in lines if e["type"] == "verification_started"]
    results = [e for e in lines if e["type"] == "verification_result"]
    assert [e["attempt"] for e in starts] == [1, 2, 3] and {e["max_attempts"] for e in starts} == {3}
    assert [(e["exit_code"], e["passed"]) for e in results] == [(1, False)] * 3
    assert all("AssertionError" in e["output_tail"] and e["tail_cut"] and e["duration_ms"] >= 0 for e in results)
    done, final = lines[-2], lines[-1]
    assert done["type"] == "done" and done["subtype"] == "error_verification"
    assert final["subtype"] == "error_verification" and final["is_error"] is True
    assert "after 3 attempts" in final["result"]
    assert final["verification"] == {"command": CHECK, "passed": False, "attempts": 3, "max_attempts": 3,
                                     "last_exit_code": 1}
    assert calls == 3
    # The session logged the events and still rebuilds a valid transcript (user feedback between turns).
    session = Session.open(_session_file(tmp_path).parent, _session_file(tmp_path).stem)
    log = list(session.records())
    assert sum(1 for x in log if x["type"] == "verification_result") == 3
    roles = [m.role for m in session.transcript()]
    assert roles == ["user", "assistant", "user", "assistant", "user", "assistant"]


def test_passing_at_once_calls_the_model_exactly_as_without_verify(tmp_path):
    repo = make_repo(tmp_path)

    def script():
        return [reply("", [("read", {"path": "calc.py"}, "r1")]), reply("It adds.")]

    seen = []
    for extra in ([], ["--verify", "python3 -c 'import calc; assert calc.old_name(2, 3) == 5'"]):
        with FakeModelServer(script()) as srv:
            r = run_agent(["run", "what does calc do", "-m", MODELS["anthropic"], *extra], cwd=repo,
                          env=agent_env(tmp_path, srv, "anthropic"))
            seen.append(([q.body for q in srv.requests], r))
    (plain, r0), (verified, r1) = seen
    assert r0.returncode == 0 and r1.returncode == 0, r1.stderr
    assert len(plain) == len(verified) == 2
    for a, b in zip(plain, verified, strict=True):
        assert a["messages"] == b["messages"] and a["system"] == b["system"] and a["tools"] == b["tools"]
    assert "→ verify python3 -c" in r1.stdout and "(attempt 1 of 3)" in r1.stdout
    assert "✓ verification passed" in r1.stdout and "verify" not in r0.stdout


def test_budget_stop_wins_over_another_attempt(tmp_path):
    repo = make_repo(tmp_path)
    with FakeModelServer([reply("Done."), reply("never asked")]) as srv:
        r = run_agent(["run", "x", "-m", MODELS["openai"], "-o", "json", "--max-turns", "1", "--verify", "false"],
                      cwd=repo, env=agent_env(tmp_path, srv, "openai"))
        calls = len(srv.requests)
    assert r.returncode == 3, r.stderr
    out = json.loads(r.stdout)
    assert out["subtype"] == "error_max_turns"
    assert out["verification"]["passed"] is False and out["verification"]["attempts"] == 1
    assert calls == 1


@pytest.mark.parametrize(("flags", "needle"), [
    (["--verify", ""], "--verify needs a command"),
    (["--verify", "   "], "--verify needs a command"),
    (["--verify", "true", "--verify-attempts", "-1"], "--verify-attempts must be 0 or more"),
    (["--verify-attempts", "1"], "--verify-attempts needs --verify"),
    (["--verify", "true", "--verify-timeout", "0"], "--verify-timeout must be a positive"),
])
def test_usage_errors_are_one_line_exit_2(tmp_path, flags, needle):
    repo = make_repo(tmp_path)
    with FakeModelServer([reply("never")]) as srv:
        r = run_agent(["run", "x", "-m", MODELS["anthropic"], *flags], cwd=repo,
                      env=agent_env(tmp_path, srv, "anthropic"))
        calls = len(srv.requests)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and needle in r.stderr and "Traceback" not in r.stderr
    assert calls == 0 and _session_file(tmp_path) is None


def test_policy_deny_rule_refuses_the_verify_command(tmp_path):
    repo = make_repo(tmp_path)
    with FakeModelServer([reply("never")]) as srv:
        env = agent_env(tmp_path, srv, "anthropic")
        cfg = Path(env["XDG_CONFIG_HOME"]) / "ghostline" / "config.toml"
        cfg.write_text(cfg.read_text() + '\n[permissions]\ndeny = ["bash: rm *"]\n')
        r = run_agent(["run", "x", "-m", MODELS["anthropic"], "--verify", "rm -f calc.py"], cwd=repo, env=env)
        calls = len(srv.requests)
    assert r.returncode == 2, r.stderr
    assert "refused by the sandbox policy" in r.stderr and calls == 0
    assert (repo / "calc.py").exists()


def test_ctrl_c_on_a_terminal_kills_the_verification_then_resume_verifies_first(tmp_path):
    repo = make_repo(tmp_path)
    marker = tmp_path / "verify.pid"
    with FakeModelServer([reply("Done.")]) as srv:
        env = {k: v for k, v in agent_env(tmp_path, srv, "anthropic").items() if k != "CI"}
        master, slave = pty.openpty()  # stdin is a terminal: an interactive run
        try:
            p = subprocess.Popen([AGENT, "run", "x", "-m", MODELS["anthropic"], "-o", "json", "--sandbox",
                                  "full-access", "--verify", f"echo $$ > {marker}; sleep 60"], cwd=repo, env=env,
                                 stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            assert _wait_for(lambda: marker.exists() and marker.read_text().strip())
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=30)
        finally:
            os.close(master)
            os.close(slave)
    assert p.returncode == 130, err
    result = json.loads(out)
    assert result["subtype"] == "interrupted" and result["verification"]["attempts"] == 1
    pid = int(marker.read_text())
    assert _wait_for(lambda: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text(), 10)
    session_id = _session_file(tmp_path).stem
    # Resuming with --verify and no new task: the model had finished, so the command runs before any model call.
    with FakeModelServer([reply("unused")]) as srv:
        r = run_agent(["run", "--resume", session_id, "-m", MODELS["anthropic"], "-o", "json", "--verify", "true"],
                      cwd=repo, env=agent_env(tmp_path, srv, "anthropic"))
        calls = len(srv.requests)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["verification"]["passed"] is True and calls == 0
    assert json.loads(r.stdout)["result"] == "Done."


# -- units -----------------------------------------------------------------------------------------------------


def test_output_tail_short_output_is_kept_whole():
    assert output_tail("a\nb\n\n") == ("a\nb", False)
    assert output_tail("") == ("", False) and output_tail("  \n") == ("", False)


def test_output_tail_keeps_the_last_lines():
    text = "\n".join(f"line {i}" for i in range(250))
    tail, cut = output_tail(text, max_bytes=100_000, max_lines=100)
    assert cut and tail.splitlines() == [f"line {i}" for i in range(150, 250)]


def test_output_tail_bounds_bytes_on_a_line_boundary():
    text = "\n".join("x" * 79 + str(i % 10) for i in range(60))  # 60 lines of 80 chars: 4859 bytes
    tail, cut = output_tail(text, max_bytes=1000, max_lines=100)
    assert cut and len(tail.encode()) <= 1000
    lines = tail.split("\n")
    assert all(len(ln) == 80 for ln in lines) and lines[-1].endswith("9")


def test_output_tail_never_splits_a_character_and_keeps_a_long_last_line():
    tail, cut = output_tail("é" * 3000, max_bytes=1001, max_lines=100)  # 6000 bytes, one line
    assert cut and tail == "é" * 500


def test_feedback_names_command_exit_code_and_cut():
    r = ev.VerificationResult("make test", 2, 124, False, 5, "boom", True, True, "/s/out.txt")
    text = verification_feedback(r, 3, 60)
    assert "`make test` timed out after 60s" in text and "exit code 124" in text and "attempt 2 of 3" in text
    assert "earlier output was cut; the full output is in /s/out.txt" in text and "```\nboom\n```" in text
    quiet = verification_feedback(ev.VerificationResult("false", 1, 1, False), 1, 600)
    assert "failed with exit code 1" in quiet and "printed nothing" in quiet


def test_events_round_trip_and_leave_the_transcript_alone():
    started = ev.VerificationStarted("pytest -q", 1, 3)
    result = ev.VerificationResult("pytest -q", 1, 1, False, 12, "E assert 1 == 2", False)
    msgs = [Message.user("task")]
    for e in (started, result):
        d = json.loads(json.dumps(e.to_dict()))
        assert type(e)(**{k: v for k, v in d.items() if k != "type"}) == e
        apply_event(msgs, d)
    assert [m.to_dict() for m in msgs] == [Message.user("task").to_dict()]


def test_exit_code_and_result_object():
    assert exit_code_for("error_verification") == 5 == EXIT_CODES["error_verification"]
    assert len(set(EXIT_CODES.values())) == len(EXIT_CODES)

    class Stats:
        num_turns, input_tokens, output_tokens = 1, 0, 0
        cache_read_input_tokens = cache_creation_input_tokens = 0
        cost_usd, files_changed, commands = None, [], []

    v = {"command": "false", "passed": False, "attempts": 1, "max_attempts": 1, "last_exit_code": 1}
    out = result_object(final=ev.Done("x", "error_verification"), session_id="s", stats=Stats(), duration_ms=1,
                        verification=v)
    assert out["subtype"] == "error_verification" and out["is_error"] and out["verification"] == v
    assert "verification" not in result_object(final=ev.Done("x"), session_id="s", stats=Stats(), duration_ms=1)


def test_text_renderer_one_line_each():
    out, err = io.StringIO(), io.StringIO()
    r = TextRenderer(out=out, err=err)
    r.handle(ev.VerificationStarted("pytest -q", 2, 3))
    r.handle(ev.VerificationResult("pytest -q", 2, 1, False, 1500, "E fail"))
    r.handle(ev.VerificationStarted("pytest -q", 3, 3))
    r.handle(ev.VerificationResult("pytest -q", 3, 0, True, 200))
    r.handle(ev.Done("verification still fails", "error_verification"))
    assert out.getvalue().splitlines() == ["→ verify pytest -q (attempt 2 of 3)", "  ✗ verification failed (exit 1, 1.5s)",
                                           "→ verify pytest -q (attempt 3 of 3)", "  ✓ verification passed (0.2s)"]
    assert err.getvalue() == "stopped: verification still fails\n"


async def test_loop_with_no_extra_attempts_verifies_once(tmp_path):
    from ghostline.agent.loop import AgentLoop, Verification
    from ghostline.tools.base import ToolContext
    from ghostline.tools.registry import ToolRegistry
    from tests.agent.test_loop import EchoTool, ScriptedProvider

    provider = ScriptedProvider([("done", []), ("never asked", [])])
    ctx = ToolContext(workspace=tmp_path, cwd=tmp_path, sandbox_mode="full-access")
    loop = AgentLoop(provider=provider, registry=ToolRegistry([EchoTool()]), ctx=ctx, system="sys",
                     verification=Verification("echo oops; exit 7", attempts=0))
    events = [e async for e in loop.run("task")]
    kinds = [e.type for e in events]
    assert kinds[-3:] == ["verification_started", "verification_result", "done"]
    assert events[-2].exit_code == 7 and events[-2].output_tail == "oops" and not events[-2].tail_cut
    assert events[-1].subtype == "error_verification" and len(provider.seen) == 1
    assert loop.verification_report() == {"command": "echo oops; exit 7", "passed": False, "attempts": 1,
                                          "max_attempts": 1, "last_exit_code": 7}
