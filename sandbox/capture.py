"""A command's output as the model gets it: head and tail kept around a marker when it is over the limit, the
whole of it (up to FULL_OUTPUT_CAP) spilled to a file the model can read."""

from __future__ import annotations

import codecs
import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

FULL_OUTPUT_CAP = 64 * 1024 * 1024  # bytes kept on disk for a truncated output


class OutputCapture:
    """Fed the output as it comes; finish() gives (text for the model, truncated, path of the full output)."""

    def __init__(self, limit: int, output_dir: Path | None, on_output: Callable[[str], None] | None = None):
        self.limit = max(limit, 200)
        # Live output for front ends (a running command's tail), decoded as it comes (never split a character).
        self.on_output = on_output
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.head_cap = self.limit // 2
        self.tail_cap = self.limit - self.head_cap
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        self.output_dir = output_dir
        self.spill: BinaryIO | None = None
        self.spill_path: str | None = None
        self.spilled = 0

    def feed(self, data: bytes) -> None:
        if self.on_output is not None and data:
            text = self._decoder.decode(data)
            if text:
                self.on_output(text)
        self.total += len(data)
        if self.spill is None and self.total > self.limit:
            self._open_spill()
        if self.spill is not None:
            if self.spilled < FULL_OUTPUT_CAP:
                chunk = data[: FULL_OUTPUT_CAP - self.spilled]
                self.spill.write(chunk)
                self.spilled += len(chunk)
        room = self.head_cap - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > self.tail_cap * 2:
                del self.tail[: len(self.tail) - self.tail_cap]

    def _open_spill(self) -> None:
        d = self.output_dir or Path(tempfile.gettempdir()) / "ghostline-outputs"
        try:
            d.mkdir(parents=True, exist_ok=True)
            fd, path = tempfile.mkstemp(prefix="cmd-", suffix=".log", dir=d)
            self.spill = spill = os.fdopen(fd, "wb")
            self.spill_path = path
            spill.write(bytes(self.head) + bytes(self.tail))
            self.spilled = len(self.head) + len(self.tail)
        except OSError:
            self.spill = None
            self.spill_path = None

    def finish(self) -> tuple[str, bool, str | None]:
        if self.spill is not None:
            with contextlib.suppress(OSError):
                self.spill.close()
        if self.total <= self.limit:
            return (bytes(self.head) + bytes(self.tail)).decode("utf-8", errors="replace"), False, None
        tail = bytes(self.tail[-self.tail_cap:])
        omitted = self.total - len(self.head) - len(tail)
        where = f"; full output in {self.spill_path}" if self.spill_path else ""
        marker = f"\n\n... [{omitted} bytes of output omitted{where}] ...\n\n"
        text = (bytes(self.head).decode("utf-8", errors="replace") + marker
                + tail.decode("utf-8", errors="replace"))
        return text, True, self.spill_path
