import io

from ghostline.agent import events as ev
from ghostline.agent.render import TextRenderer, exit_code_for


def render(events, verbose=False):
    out, err = io.StringIO(), io.StringIO()
    r = TextRenderer(out, err, verbose=verbose)
    for e in events:
        r.handle(e)
    return out.getvalue(), err.getvalue()


DIFF = "--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n-a\n+b\n"


def test_text_streams_and_ends_lines_once():
    out, _ = render([ev.TextDelta("Hel"), ev.TextDelta("lo"), ev.ToolCall("1", "bash", {"command": "ls -la"}, "shell", "bash ls -la"),
                     ev.TextDelta("Done."), ev.Done("Done.")])
    assert out == "Hello\n→ bash ls -la\nDone.\n"


def test_verbose_shows_an_edit_diff_once():
    out, _ = render([ev.ToolCall("1", "edit", {"path": "m.py"}), ev.Diff("m.py", DIFF),
                     ev.ToolResultEvent("1", "edit", "Edited m.py.\n" + DIFF, meta={"diff": DIFF})], verbose=True)
    assert out.count("+++ b/m.py") == 1 and "Edited m.py." in out


def test_diagnostics_go_to_stderr():
    out, err = render([ev.Retry(1, 0.5, "529 overloaded"), ev.Failed("boom")])
    assert out == "" and "retrying" in err and "error: boom" in err


def test_exit_codes():
    assert [exit_code_for(s) for s in ("success", "error_during_execution", "error_max_turns", "error_budget",
                                       "interrupted")] == [0, 1, 3, 4, 130]


def test_a_subagents_work_is_indented_under_its_call_and_a_todo_list_shown():
    def nested(e):
        return ev.SubagentEvent("t1", e)

    message = {"role": "assistant", "content": [{"type": "text", "text": "Found it.\nIn calc.py."}]}
    out, err = render([
        ev.ToolCall("t1", "task", {}, "other", "task explorer: look"),
        nested(ev.TextDelta("Found")), nested(ev.ToolCall("c1", "grep", {}, "read", "grep def")),
        nested(ev.ToolResultEvent("c1", "grep", "no such file", is_error=True)),
        nested(ev.AssistantMessage(message)), nested(ev.Done("Found it.")),
        ev.ToolResultEvent("t1", "task", "Found it."),
        ev.TodoList([{"content": "look", "status": "completed"}, {"content": "fix", "status": "pending"}]),
    ])
    assert out.splitlines() == ["→ task explorer: look", "  │ → grep def", "  │   ✗ grep: no such file",
                                "  │ Found it.", "  │ In calc.py.", "  [x] look", "  [ ] fix"]


def test_the_summary_line_counts_every_token_sent_and_says_turn_once():
    out, err = io.StringIO(), io.StringIO()
    usage = {"input_tokens": 3, "output_tokens": 1, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 2906}
    TextRenderer(out, err).finish({"subtype": "success", "num_turns": 1, "usage": usage, "cost_usd": 0.0109,
                                   "session_id": "s1"})
    assert err.getvalue().strip() == "[success: 1 turn, 2909 in / 1 out tokens, $0.0109; session s1]"
