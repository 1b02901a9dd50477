"""Input from a pipe for `agent run`: `git diff | agent run "review this"` attaches what was piped to the task,
and `agent run -` reads the task itself from stdin.

Only a pipe or a redirected file is read: a terminal is the user's, and /dev/null or a socket a CI runner left
open carries nothing meant for the task (reading a socket could wait forever). Text only, at most STDIN_CAP
bytes (the rest is cut, and the model told so).
"""

from __future__ import annotations

import os
import select
import stat
import sys
from typing import BinaryIO

STDIN_CAP = 256 * 1024
WAIT_NOTICE_S = 3.0  # a pipe that stays silent this long gets a line on stderr saying what the run waits for


class StdinError(ValueError):
    """Stdin cannot be used as asked (binary data, nothing to read for `-`): one line for the user."""


def _source(stream: BinaryIO) -> str | None:
    """"pipe", "file", or None for anything else (a terminal, /dev/null, a socket, no descriptor)."""
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError, AttributeError):  # closed, or replaced by something without a descriptor
        return None
    return "pipe" if stat.S_ISFIFO(mode) else "file" if stat.S_ISREG(mode) else None


def _announce_wait(stream: BinaryIO) -> None:
    try:
        ready, _, _ = select.select([stream], [], [], WAIT_NOTICE_S)
    except (OSError, ValueError):
        return
    if not ready:
        sys.stderr.write("agent: waiting for the input piped to stdin (run with </dev/null to do without it)\n")
        sys.stderr.flush()


def read_stdin(stream: BinaryIO, *, cap: int = STDIN_CAP) -> tuple[str, bool]:
    """Everything up to `cap` bytes as text, and whether more was cut. Raises StdinError on binary data."""
    if _source(stream) == "pipe":
        _announce_wait(stream)
    chunks: list[bytes] = []
    size = 0
    while size <= cap:
        chunk = stream.read(cap + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    data = b"".join(chunks)
    cut = len(data) > cap
    data = data[:cap]
    if b"\0" in data:
        raise StdinError("stdin holds binary data; pipe text (a log, a diff), or name the file in the task")
    return _decode(data, cut), cut


def _decode(data: bytes, cut: bool) -> str:
    # A cut can split the last character: up to 3 trailing bytes may be an incomplete UTF-8 sequence.
    for trim in range(4 if cut else 1):
        try:
            return data[: len(data) - trim].decode("utf-8")
        except UnicodeDecodeError:
            continue
    raise StdinError("stdin is not UTF-8 text; pipe text (a log, a diff), or name the file in the task")


def task_with_stdin(task: str | None, stream: BinaryIO | None = None) -> str | None:
    """The task as `agent run` gets it: `-` is replaced by stdin; otherwise what is piped is attached after the
    task (or is the task when none was given). Raises StdinError."""
    stream = stream if stream is not None else sys.stdin.buffer
    if task == "-":
        text, cut = read_stdin(stream)
        if not text.strip():
            raise StdinError("`agent run -` reads the task from stdin, and stdin was empty")
        return text + (f"\n[cut: only the first {STDIN_CAP // 1024} KiB were read]" if cut else "")
    if _source(stream) is None:
        return task
    text, cut = read_stdin(stream)
    if not text.strip():
        return task
    note = f"\n[cut: only the first {STDIN_CAP // 1024} KiB were read]" if cut else ""
    attached = f"<stdin>\n{text.rstrip()}{note}\n</stdin>"
    return f"{task}\n\n{attached}" if task else attached
