"""git's index file, read and written for one job: adding entries whose stat and object name are already known
(a first snapshot's new files, packed by fast_pack.py) to the store's index, so that git does not hash them
again. Versions 2 to 4 are read; version 2 (3 where an entry has extended flags) is written, without the
optional extensions (the cache tree, resolve-undo, the untracked cache): git rebuilds what it needs. An index
split in two (`link`) or sparse (`sdir`) is not read here: IndexFormatError, and the caller lets git add.
"""

from __future__ import annotations

import hashlib
import struct

from ghostline.files import replace_file

STAT = struct.Struct(">10I")  # ctime s/ns, mtime s/ns, dev, ino, mode, uid, gid, size
EXTENDED = 0x4000
NAME_MASK = 0x0FFF
UNREADABLE_EXTENSIONS = (b"link", b"sdir")
OID_SIZE = 20  # SHA-1 object names: a SHA-256 store is left to git (first_add.py)


class IndexFormatError(ValueError):
    pass


class Entry:
    """One index entry. A plain class, not a dataclass: fast_pack.py's processes import this module, and
    dataclasses (with inspect, ast...) would add ~10 ms to each."""

    __slots__ = ("path", "stat", "oid", "flags", "extended_flags", "raw")

    def __init__(self, path: bytes, stat: tuple[int, ...], oid: bytes, flags: int, extended_flags: int = 0,
                 raw: bytes | None = None):
        self.path = path
        self.stat = stat  # the ten STAT fields
        self.oid = oid
        self.flags = flags  # the 16-bit flags (stage, assume-valid, extended); the name length is set on write
        self.extended_flags = extended_flags
        self.raw = raw  # the entry as a version 2/3 index holds it, when read from one

    @property
    def stage(self) -> int:
        return (self.flags >> 12) & 3

    def encoded(self) -> bytes:
        """The entry as version 2 (3 with extended flags) writes it: fields, name, 1 to 8 NULs to a multiple
        of 8 bytes."""
        if self.raw is not None:
            return self.raw
        head = STAT.pack(*self.stat) + self.oid + struct.pack(">H", self.flags | min(len(self.path), NAME_MASK))
        if self.flags & EXTENDED:
            head += struct.pack(">H", self.extended_flags)
        length = len(head) + len(self.path)
        return head + self.path + b"\0" * (8 - length % 8)


def read_index(path: str) -> list[Entry]:
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 12 + OID_SIZE or data[:4] != b"DIRC":
        raise IndexFormatError("not an index file")
    version, count = struct.unpack_from(">II", data, 4)
    if version not in (2, 3, 4):
        raise IndexFormatError(f"index version {version}")
    if hashlib.sha1(data[:-OID_SIZE]).digest() != data[-OID_SIZE:]:
        raise IndexFormatError("index checksum mismatch")
    entries, pos = _entries(data, version, count)
    _check_extensions(data, pos, len(data) - OID_SIZE)
    return entries


def read_entries(data: bytes) -> list[Entry]:
    """Version 2 entries back to back, without the file's header or checksum (what fast_pack.py prints)."""
    entries, _ = _entries(data, 2, None, start=0)
    return entries


def _entries(data: bytes, version: int, count: int | None, start: int = 12) -> tuple[list[Entry], int]:
    entries: list[Entry] = []
    pos, previous = start, b""
    while (len(entries) < count) if count is not None else (pos < len(data)):
        begin = pos
        fields = STAT.unpack_from(data, pos)
        pos += STAT.size
        oid = data[pos:pos + OID_SIZE]
        pos += OID_SIZE
        (flags,) = struct.unpack_from(">H", data, pos)
        pos += 2
        extended = 0
        if flags & EXTENDED:
            if version < 3:
                raise IndexFormatError("extended flags in a version 2 index")
            (extended,) = struct.unpack_from(">H", data, pos)
            pos += 2
        if version == 4:
            strip, pos = _varint(data, pos)
            end = data.index(b"\0", pos)
            name = previous[:len(previous) - strip] + data[pos:end]
            pos = end + 1
        else:
            end = data.index(b"\0", pos)
            name = data[pos:end]
            pos = begin + ((end - begin) // 8 + 1) * 8  # 1 to 8 NULs pad the entry to a multiple of 8
        raw = data[begin:pos] if version < 4 else None
        entries.append(Entry(name, fields, oid, flags & ~NAME_MASK, extended, raw))
        previous = name
    return entries, pos


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """git's offset varint (index v4's prefix length): 7 bits a byte, each continuation adding one."""
    byte = data[pos]
    pos += 1
    value = byte & 0x7F
    while byte & 0x80:
        byte = data[pos]
        pos += 1
        value = ((value + 1) << 7) | (byte & 0x7F)
    return value, pos


def _check_extensions(data: bytes, pos: int, end: int) -> None:
    while pos + 8 <= end:
        signature = data[pos:pos + 4]
        (size,) = struct.unpack_from(">I", data, pos + 4)
        if signature in UNREADABLE_EXTENSIONS:
            raise IndexFormatError(f"index extension {signature.decode()}")
        pos += 8 + size


def write_index(path: str, entries: list[Entry]) -> None:
    """Write `entries` (any order; one per path and stage) as a whole index, replacing `path` atomically."""
    ordered = sorted(entries, key=lambda e: (e.path, e.stage))
    version = 3 if any(e.flags & EXTENDED for e in ordered) else 2
    body = b"".join([b"DIRC", struct.pack(">II", version, len(ordered)), *(e.encoded() for e in ordered)])
    replace_file(path, [body, hashlib.sha1(body).digest()])
