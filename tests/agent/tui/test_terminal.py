"""The box under a real Textual driver in a pseudo-terminal: the bytes a terminal sends for Alt+Enter add a
line, and modifyOtherKeys is asked for at start and reset at exit."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

from tests.agent.tui.pty_host import READY

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX terminals only")


def read_until(fd: int, marker: bytes, seen: bytearray, timeout: float = 30.0) -> None:
    while marker not in seen:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            raise AssertionError(f"no {marker!r} from the app; it wrote {bytes(seen[-400:])!r}")
        try:
            seen += os.read(fd, 65536)
        except OSError:  # the app closed the terminal
            raise AssertionError(f"the app ended before {marker!r}; it wrote {bytes(seen[-400:])!r}") from None


def test_alt_enter_from_a_terminal_adds_a_line(tmp_path: Path):
    result = tmp_path / "sent.txt"
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24"}
    env.pop("TEXTUAL_DRIVER", None)
    proc = subprocess.Popen([sys.executable, "-m", "tests.agent.tui.pty_host", str(result)], stdin=slave,
                            stdout=slave, stderr=slave, env=env, cwd=Path(__file__).parents[3], close_fds=True)
    os.close(slave)
    seen = bytearray()
    try:
        read_until(master, READY, seen)
        os.write(master, b"one\x1b\rtwo\r")  # Alt+Enter as terminals send it, then Enter
        read_until(master, b"\x1b[?1049l", seen)  # the app left the alternate screen: it is exiting
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        os.close(master)
    assert result.read_text() == "one\ntwo"
    out = bytes(seen)
    assert out.index(b"\x1b[>4;1m") < out.index(READY)
    assert out.index(b"\x1b[>4m") < out.index(b"\x1b[?1049l")
