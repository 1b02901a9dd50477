"""Pictures of the main screens (pytest-textual-snapshot; the SVGs live in __snapshots__/ beside this file).

What would differ from one machine or run to the next is fixed: the session id, the sandbox layer, the clock of
the tool rows and the footer, the context fill (it counts the temporary paths in the system prompt) and the token
usage the fake server reports. Update them with `pytest tests/agent/tui/test_snapshots.py --snapshot-update` and look at them.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.agent.tui.drive import make_app, submit, turn_ends, until
from tests.fakeserver import reply

USAGE = {"input_tokens": 1200, "output_tokens": 80, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}
ANSWER = """## What `calc.py` does

It defines **one** function, `add`, which returns the sum of its two arguments:

```python
def add(a, b):
    return a + b
```

- no input checks
- no tests yet
"""


@pytest.fixture
def steady(monkeypatch: pytest.MonkeyPatch) -> None:
    from ghostline.agent import session
    from ghostline.agent.tui import jobs, rows
    from ghostline.agent.tui.run import TuiRun

    monkeypatch.setattr(session, "new_session_id", lambda: "20260101-120000-snap")
    monkeypatch.setenv("GHOSTLINE_SANDBOX", "none")  # the status line names the layer; machines differ
    clock = SimpleNamespace(monotonic=lambda: 1000.0)
    monkeypatch.setattr(rows, "time", clock)
    monkeypatch.setattr(jobs, "time", clock)

    def context(self, info) -> None:
        info.context_tokens, info.context_window = 12_300, 1_000_000

    monkeypatch.setattr(TuiRun, "refresh_context", context)


async def ready(pilot) -> None:
    app = pilot.app
    await until(pilot, lambda: app.ready, "the run")
    app.prompt.cursor_blink = False


async def approval_dialog(pilot) -> None:
    from ghostline.agent.tui.approval import ApprovalScreen

    app = pilot.app
    await ready(pilot)
    await submit(app, pilot, "put the numbers in numbers.py")
    await until(pilot, lambda: isinstance(app.screen, ApprovalScreen), "the approval dialog")


@pytest.mark.parametrize("size", [(120, 36), (80, 24)])
def test_the_first_screen(snap_compare, repo, fake_model_env, steady, size):
    assert snap_compare(make_app(repo), terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", [(120, 36), (80, 24)])
def test_a_conversation_with_a_tool_row_and_markdown(snap_compare, repo, fake_model_env, steady, size):
    fake_model_env.enqueue(reply("Let me read it.", [("read", {"path": "calc.py"})], usage=USAGE),
                           reply(ANSWER, usage=USAGE))

    async def converse(pilot) -> None:
        await ready(pilot)
        await submit(pilot.app, pilot, "what does calc.py do?")
        await turn_ends(pilot.app, pilot)

    assert snap_compare(make_app(repo), terminal_size=size, run_before=converse)


@pytest.mark.parametrize("size", [(120, 36), (80, 24)])
def test_the_approval_dialog_with_a_long_diff(snap_compare, repo, fake_model_env, steady, size):
    content = "".join(f"VALUE_{i} = {i * i}\n" for i in range(60))
    fake_model_env.enqueue(reply("Writing it.", [("write", {"path": "numbers.py", "content": content})],
                                 usage=USAGE))
    assert snap_compare(make_app(repo, approval="ask"), terminal_size=size, run_before=approval_dialog)


def test_the_help(snap_compare, repo, fake_model_env, steady):
    async def help_shown(pilot) -> None:
        await ready(pilot)
        await submit(pilot.app, pilot, "/help")

    assert snap_compare(make_app(repo), terminal_size=(80, 24), run_before=help_shown)
