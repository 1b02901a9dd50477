"""The `agent` console script in a real terminal (tmux), for what Textual's pilot cannot show: the bytes a terminal
sends for Alt+Enter and Esc, keys typed before the first paint, a resize, a stream cut and retried, and that the
frames written as differences leave what a full repaint shows. Waits poll the pane for the expected text."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.agent.tui.drive import MODEL
from tests.fakeserver import cut_stream, reply

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed (CI installs it: see .ci/run)")
AGENT = str(Path(sys.executable).parent / "agent")
PASSED_ENV = ("PATH", "HOME", "PYTHONPATH", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "ANTHROPIC_BASE_URL",
              "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_KEY", "GHOSTLINE_EMBEDDINGS", "LANG", "LC_ALL")


class Tmux:
    """One tmux server of its own (its own socket, no user config) with one window running a command."""

    def __init__(self, width: int = 120, height: int = 36) -> None:
        self.base = ["tmux", "-L", f"ghostline-test-{uuid.uuid4().hex[:10]}", "-f", "/dev/null"]
        self.width, self.height = width, height

    def tmux(self, *args: str) -> str:
        return subprocess.run([*self.base, *args], check=True, capture_output=True, text=True).stdout

    def start(self, argv: list[str], cwd: Path) -> None:
        env = " ".join(f"{k}={shlex.quote(os.environ[k])}" for k in PASSED_ENV if k in os.environ)
        command = f"cd {shlex.quote(str(cwd))} && env {env} {shlex.join(argv)}; echo EXIT=$?; sleep 600"
        self.tmux("new-session", "-d", "-s", "t", "-x", str(self.width), "-y", str(self.height), command)

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "t", *keys)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", "t", "-l", text)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "t")

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        return self.wait_until(lambda screen: text in screen, repr(text), timeout)

    def wait_until(self, pred: Callable[[str], bool], what: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if pred(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} never appeared; the pane shows:\n{screen}")
            time.sleep(0.05)  # the polling interval

    def resize(self, width: int, height: int) -> None:
        self.tmux("resize-window", "-t", "t", "-x", str(width), "-y", str(height))

    def close(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True)


@pytest.fixture
def term(repo):
    t = Tmux()
    yield t
    t.close()


def start_agent(term: Tmux, repo: Path, *extra: str) -> None:
    term.start([AGENT, "--model", MODEL, "--approval", "auto", *extra], repo)


def first_message(server) -> str:
    content = server.requests[0].body["messages"][0]["content"]
    return content if isinstance(content, str) else "".join(b.get("text", "") for b in content)


def quit_agent(term: Tmux) -> str:
    term.wait_for("ready ·")
    term.keys("C-d")
    return term.wait_for("EXIT=")


def test_keys_typed_before_the_first_paint_are_kept_and_sent(term, repo, fake_model_env):
    fake_model_env.enqueue(reply("Hello back."))
    start_agent(term, repo)
    term.type("typed at once")  # before Python has even started
    term.keys("Enter")
    term.wait_for("Hello back.")
    assert first_message(fake_model_env) == "typed at once"
    assert "EXIT=0" in quit_agent(term)


def test_alt_enter_adds_a_line_and_enter_sends(term, repo, fake_model_env):
    fake_model_env.enqueue(reply("Two lines."))
    start_agent(term, repo)
    term.wait_for("ready ·")
    term.type("one")
    term.keys("M-Enter")  # ESC CR, as terminals send Alt+Enter
    term.type("two")
    term.keys("Enter")
    term.wait_for("Two lines.")
    assert first_message(fake_model_env) == "one\ntwo"


def test_esc_interrupts_a_running_command(term, repo, fake_model_env):
    fake_model_env.enqueue(reply("Waiting.", [("bash", {"command": "sleep 30"})]))
    start_agent(term, repo)
    term.wait_for("ready ·")
    term.type("wait")
    term.keys("Enter")
    term.wait_for("⋯ bash sleep 30")  # the command's row, not only the turn's footer: Esc must hit the command
    term.keys("Escape")
    screen = term.wait_for("[interrupted]")
    assert "■ bash sleep 30" in screen


def test_a_cut_stream_is_retried_and_replaces_the_partial_answer(term, repo, fake_model_env):
    fake_model_env.enqueue(cut_stream("Partial words that must not stay " * 4, tool_calls=()),
                           reply("The complete answer."))
    start_agent(term, repo)
    term.wait_for("ready ·")
    term.type("hi")
    term.keys("Enter")
    screen = term.wait_for("The complete answer.")
    assert "Partial words" not in screen and "retrying the turn" in screen


def test_a_resize_redraws_everything_at_the_new_size(term, repo, fake_model_env):
    fake_model_env.enqueue(reply("A short answer to show after the resize."))
    start_agent(term, repo)
    term.wait_for("ready ·")
    term.type("hi")
    term.keys("Enter")
    term.wait_for("A short answer")
    term.resize(80, 24)

    def redrawn(screen: str) -> bool:  # the old frame stays in the pane until the app has painted the new size
        rows = screen.splitlines()
        return (len(rows) == 24 and all(len(r) <= 80 for r in rows) and MODEL in rows[0]
                and rows[-1].startswith(" ready ·") and "▔" in rows[-4] and "▁" in rows[-2])

    screen = term.wait_until(redrawn, "the frame at 80×24", timeout=10)
    assert "A short answer to show after the resize." in screen


def test_frames_written_as_differences_leave_what_a_full_repaint_shows(term, repo, fake_model_env):
    words = " ".join(f"word{i}" for i in range(700))
    text = f"# A heading\n\n{words}\n\n- one\n- two\n\n```python\ndef f(x):\n    return x\n```\n\nThe end."
    fake_model_env.enqueue(reply(text, chunk_size=9, chunk_delay_s=0.002))
    start_agent(term, repo)
    term.wait_for("ready ·")
    term.type("stream")
    term.keys("Enter")
    term.wait_for("The end.")
    term.wait_for("ready ·")
    streamed = term.screen()
    term.resize(100, 30)  # Textual repaints every line after a resize: the reference
    term.wait_for("ready ·")
    term.resize(120, 36)
    term.wait_until(lambda screen: screen == streamed, "the streamed screen, repainted whole", timeout=10)


def test_a_mistake_found_after_the_first_paint_is_one_line_and_exit_code_2(term, repo, tmp_path, fake_model_env):
    (tmp_path / "config" / "ghostline" / "config.toml").write_text("[retry]\nmax_tries = 3\n")
    start_agent(term, repo)
    screen = term.wait_for("EXIT=")
    assert "EXIT=2" in screen and "agent: unknown [retry] setting(s) max_tries" in screen
    assert "Traceback" not in screen
