"""Input from a pipe for `agent run`: `git diff | agent run "review this"` attaches what was piped to the task,
and `agent run -` reads the task itself from stdin.

Only a pipe or a redirected file is read: a terminal is the user's, and /dev/null or a socket a CI runner left
open carries nothing meant for the task (reading a socket could wait forever). A pipe that stays silent for
QUIET_S while a task was given is one a CI runner left open: the run goes on without it (one line says so), as
a headless run must never hang on input. Text only, at most STDIN_CAP bytes (the rest is cut, and the model
told so).
"""

from __future__ import annotations

import os
import select
import stat
import sys
from typing import BinaryIO

STDIN_CAP = 256 * 1024
QUIET_S = 3.0  # how long a pipe may stay silent before the run stops waiting for it (or says what it waits for)


class StdinError(ValueError):
    """Stdin cannot be used as asked (binary data, nothing to read for `-`): one line for the user."""


def _source(stream: BinaryIO) -> str | None:
    """"pipe", "file", or None for anything else (a terminal, /dev/null, a socket, no descriptor)."""
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError, AttributeError):  # closed, or replaced by something without a descriptor
        return None
    return "pipe" if stat.S_ISFIFO(mode) else "file" if stat.S_ISREG(mode) else None


def _says_something(stream: BinaryIO) -> bool:
    """Whether the pipe has data (or its end) within QUIET_S seconds."""
    try:
        ready, _, _ = select.select([stream], [], [], QUIET_S)
    except (OSError, ValueError):
        return True
    return bool(ready)


def _note(text: str) -> None:
    sys.stderr.write(f"agent: {text}\n")
    sys.stderr.flush()


def read_stdin(stream: BinaryIO, *, cap: int = STDIN_CAP) -> tuple[str, bool]:
    """Everything up to `cap` bytes as text, and whether more was cut. Raises StdinError on binary data."""
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
        if _source(stream) == "pipe" and not _says_something(stream):
            _note("waiting for the task on stdin (`agent run -` reads it from there)")
        text, cut = read_stdin(stream)
        if not text.strip():
            raise StdinError("`agent run -` reads the task from stdin, and stdin was empty")
        return text + (f"\n[cut: only the first {STDIN_CAP // 1024} KiB were read]" if cut else "")
    source = _source(stream)
    if source is None:
        return task
    if source == "pipe" and not _says_something(stream):
        if task:
            _note(f"nothing arrived on stdin in {QUIET_S:g} s: going on without it (pipe the input in, or run "
                  f"with </dev/null)")
            return task
        _note("waiting for the task on stdin")
    text, cut = read_stdin(stream)
    if not text.strip():
        return task
    note = f"\n[cut: only the first {STDIN_CAP // 1024} KiB were read]" if cut else ""
    attached = f"<stdin>\n{text.rstrip()}{note}\n</stdin>"
    return f"{task}\n\n{attached}" if task else attached
