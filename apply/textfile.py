"""Reading and writing files the way they were: encoding, BOM, line endings, final newline, mode.

Matching works on a *normalised* view of the text (``\\n`` line endings only).  Edits are spliced back into
the original text so that lines outside the edited region keep their exact bytes, and the inserted text uses
the file's dominant line ending.
"""

from __future__ import annotations

import bisect
import codecs
import contextlib
import os
import re
import tempfile
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

_NEWLINE_RE = re.compile(r"\r\n|\r|\n")

# Atomicity comes from the rename (readers see the old or the new file, never a mix; a crash leaves the old
# file).  fsync before the rename adds durability across power loss at a cost of milliseconds per write:
# opt in with GHOSTLINE_FSYNC=1.
FSYNC = os.environ.get("GHOSTLINE_FSYNC", "") not in ("", "0")


class FileFormatError(Exception):
    """The file cannot be edited as text (binary, undecodable)."""


@dataclass
class TextFile:
    """A decoded text file: ``text`` keeps original newlines, ``norm`` has ``\\n`` only."""

    encoding: str  # codec used for the body (without BOM)
    bom: bytes
    text: str
    newline: str  # dominant newline sequence, used for inserted text
    norm: str
    _norm_starts: list[int] | None  # line starts, computed lazily (only files with CR need them)
    _orig_starts: list[int] | None

    @classmethod
    def from_bytes(cls, raw: bytes) -> TextFile:
        """Decode by BOM, else as UTF-8, else as latin-1; NUL bytes without a BOM mean a binary file."""
        bom = b""
        if raw.startswith(codecs.BOM_UTF8):
            bom, encoding = codecs.BOM_UTF8, "utf-8"
        elif raw.startswith(codecs.BOM_UTF16_LE):
            bom, encoding = codecs.BOM_UTF16_LE, "utf-16-le"
        elif raw.startswith(codecs.BOM_UTF16_BE):
            bom, encoding = codecs.BOM_UTF16_BE, "utf-16-be"
        else:
            if b"\x00" in raw[:8192]:
                raise FileFormatError("binary file (contains NUL bytes); refusing to edit it as text")
            encoding = "utf-8"
        body = raw[len(bom) :]
        try:
            text = body.decode(encoding)
        except UnicodeDecodeError:
            if bom:
                raise FileFormatError(f"file has a {encoding} BOM but does not decode as {encoding}") from None
            # latin-1 maps every byte to one character, so undecodable files still round-trip byte for byte.
            encoding = "latin-1"
            text = body.decode(encoding)
        return cls.from_text(text, encoding=encoding, bom=bom)

    @classmethod
    def from_text(cls, text: str, *, encoding: str = "utf-8", bom: bytes = b"") -> TextFile:
        """The dominant newline is the most frequent one (ties go to ``\\n``, then CRLF over CR)."""
        if "\r" not in text:
            return cls(encoding, bom, text, "\n", text, [], [])
        crlf = text.count("\r\n")
        lf = text.count("\n") - crlf
        cr = text.count("\r") - crlf
        if crlf > lf and crlf >= cr:
            newline = "\r\n"
        elif cr > lf and cr > crlf:
            newline = "\r"
        else:
            newline = "\n"
        if crlf or cr:
            norm = _NEWLINE_RE.sub("\n", text)
            return cls(encoding, bom, text, newline, norm, None, None)
        return cls(encoding, bom, text, newline, text, [], [])

    # -- offsets -------------------------------------------------------------------------------------------
    def _starts(self) -> tuple[list[int], list[int]]:
        if self._norm_starts is None or self._orig_starts is None:
            lens = [len(ln) for ln in self.norm.split("\n")]
            seps = [len(m) for m in _NEWLINE_RE.findall(self.text)]
            norm_starts = [0, *accumulate(n + 1 for n in lens[:-1])]
            orig_starts = [0, *accumulate(n + k for n, k in zip(lens[:-1], seps, strict=True))]
            self._norm_starts, self._orig_starts = norm_starts, orig_starts
        return self._norm_starts, self._orig_starts

    def orig_offset(self, norm_offset: int) -> int:
        """Map an offset in ``norm`` to the corresponding offset in ``text``."""
        if self.text is self.norm:
            return norm_offset
        norm_starts, orig_starts = self._starts()
        line = bisect.bisect_right(norm_starts, norm_offset) - 1
        return orig_starts[line] + (norm_offset - norm_starts[line])

    def splice_many(self, spans: list[tuple[int, int, str]]) -> str:
        """Apply several non-overlapping replacements (norm offsets) at once."""
        out: list[str] = []
        pos = 0
        for start, end, repl in sorted(spans, key=lambda s: s[0]):
            o_start = self.orig_offset(start)
            o_end = self.orig_offset(end)
            if o_start < pos:
                raise ValueError("overlapping replacements")
            if self.newline != "\n":
                repl = repl.replace("\n", self.newline)
            out.append(self.text[pos:o_start])
            out.append(repl)
            pos = o_end
        out.append(self.text[pos:])
        return "".join(out)

    def fix_final_newline(self, new_text: str) -> str:
        """Keep the original file's final-newline state."""
        if not self.text or not new_text:
            return new_text
        had = self.text.endswith(("\n", "\r"))
        has = new_text.endswith(("\n", "\r"))
        if had and not has:
            return new_text + self.newline
        if not had and has:
            return new_text[:-2] if new_text.endswith("\r\n") else new_text[:-1]
        return new_text

    def with_text(self, text: str) -> TextFile:
        """The file holding ``text`` instead, in the same encoding and BOM (the file after an edit)."""
        return TextFile.from_text(text, encoding=self.encoding, bom=self.bom)

    def with_replacements(self, spans: list[tuple[int, int, str]]) -> TextFile:
        """The file with ``spans`` (norm offsets) replaced; its final-newline state is kept."""
        return self.with_text(self.fix_final_newline(self.splice_many(spans)))

    def in_file_newlines(self, norm_text: str) -> str:
        """``norm_text`` (``\\n`` newlines) written with this file's dominant newline."""
        return norm_text.replace("\n", self.newline)

    def encode(self, text: str) -> bytes:
        try:
            return self.bom + text.encode(self.encoding)
        except UnicodeEncodeError as exc:
            raise FileFormatError(
                f"the new text has characters that the file's encoding ({self.encoding}) cannot hold: "
                f"{text[exc.start : exc.end]!r}"
            ) from None


def normalize_newlines(s: str) -> str:
    """``s`` with CRLF and CR newlines turned into ``\\n``."""
    if "\r" not in s:
        return s
    return s.replace("\r\n", "\n").replace("\r", "\n")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same directory + rename).

    The file's permission bits are preserved (new files get the umask default); a symlink is followed so the
    link stays a link; parent directories are created.
    """
    target = Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        st = os.stat(target)
        mode = st.st_mode & 0o7777
        owner: tuple[int, int] | None = (st.st_uid, st.st_gid)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
        owner = None
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if FSYNC:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        if owner is not None and hasattr(os, "chown"):
            with contextlib.suppress(OSError):
                os.chown(tmp, *owner)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
