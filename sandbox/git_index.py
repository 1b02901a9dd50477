"""git's index file, read and written for one job: adding entries whose stat and object name are already known
(a first snapshot's new files, packed by fast_pack.py) to the store's index, so that git does not hash them
again. Versions 2 to 4 are read; version 2 (3 where an entry has extended flags) is written, without the
optional extensions (the cache tree, resolve-undo, the untracked cache): git rebuilds what it needs. An index
split in two (`link`) or sparse (`sdir`) is not read here: IndexFormatError, and the caller lets git add.

`tree_objects` gives the trees `git write-tree` would make of such an index, for the first snapshot to write
them into its pack: git's write-tree then finds each one present instead of writing it as a loose object.
"""

from __future__ import annotations

import hashlib
import struct

from ghostline.files import replace_file

STAT = struct.Struct(">10I")  # ctime s/ns, mtime s/ns, dev, ino, mode, uid, gid, size
ENTRY_HEAD = struct.Struct(">10I20sH")  # the stat fields, the object name, the flags
FLAGS = struct.Struct(">H")
EXTENDED = 0x4000
NAME_MASK = 0x0FFF
UNREADABLE_EXTENSIONS = (b"link", b"sdir")
OID_SIZE = 20  # SHA-1 object names: a SHA-256 store is left to git (first_add.py)


class IndexFormatError(ValueError):
    pass


class Entry:
    """One index entry, kept as the bytes a version 2/3 index holds (what is read is written back as it was);
    its fields are read from them when asked for. A plain class, not a dataclass: fast_pack.py's processes
    import this module, and dataclasses (with inspect, ast...) would add ~10 ms to each."""

    __slots__ = ("path", "flags", "extended_flags", "raw")

    def __init__(self, path: bytes, flags: int, extended_flags: int, raw: bytes):
        self.path = path
        self.flags = flags  # the 16-bit flags (stage, assume-valid, extended) without the name's length
        self.extended_flags = extended_flags
        self.raw = raw

    @property
    def stage(self) -> int:
        return (self.flags >> 12) & 3

    @property
    def stat(self) -> tuple[int, ...]:
        """The ten STAT fields."""
        return STAT.unpack_from(self.raw)

    @property
    def oid(self) -> bytes:
        return self.raw[40:60]

    @property
    def mode(self) -> int:
        return int.from_bytes(self.raw[24:28], "big")


def entry_bytes(stat: tuple[int, ...], oid: bytes, flags: int, path: bytes, extended_flags: int = 0) -> bytes:
    """An entry as version 2 (3 with extended flags) writes it: the ten stat fields, the object name, the flags
    with the name's length, the extended flags if any, the name, and 1 to 8 NULs to a multiple of 8 bytes."""
    head = ENTRY_HEAD.pack(*stat, oid, flags | min(len(path), NAME_MASK))
    if flags & EXTENDED:
        head += FLAGS.pack(extended_flags)
    return head + path + b"\0" * (8 - (len(head) + len(path)) % 8)


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
    entries, pos = (_entries_v4 if version == 4 else _entries)(data, version, count, 12)
    _check_extensions(data, pos, len(data) - OID_SIZE)
    return entries


def read_entries(data: bytes) -> list[Entry]:
    """Version 2 entries back to back, without the file's header or checksum (what fast_pack.py prints)."""
    entries, _ = _entries(data, 2, None, 0)
    return entries


def _entries(data: bytes, version: int, count: int | None, pos: int) -> tuple[list[Entry], int]:
    """Versions 2 and 3. Only the name is sliced out: ~1.5 µs an entry less than unpacking every field (a first
    snapshot reads 18k of them on its way)."""
    entries: list[Entry] = []
    end = len(data)
    flags_at = FLAGS.unpack_from
    while (len(entries) < count) if count is not None else (pos < end):
        (flags,) = flags_at(data, pos + 60)
        head, extended = 62, 0
        if flags & EXTENDED:
            if version < 3:
                raise IndexFormatError("extended flags in a version 2 index")
            (extended,) = flags_at(data, pos + 62)
            head = 64
        n = flags & NAME_MASK
        if n == NAME_MASK:  # a name of 4095 bytes or more: its NUL ends it
            n = data.index(b"\0", pos + head + n) - pos - head
        size = (head + n) // 8 * 8 + 8  # 1 to 8 NULs pad the entry to a multiple of 8
        entries.append(Entry(data[pos + head:pos + head + n], flags & ~NAME_MASK, extended, data[pos:pos + size]))
        pos += size
    return entries, pos


def _entries_v4(data: bytes, version: int, count: int | None, pos: int) -> tuple[list[Entry], int]:
    """Version 4: no padding, each name given as how much of the previous one to drop and what follows."""
    entries: list[Entry] = []
    previous = b""
    while (len(entries) < count) if count is not None else (pos < len(data)):
        fields, oid, (flags,) = STAT.unpack_from(data, pos), data[pos + 40:pos + 60], FLAGS.unpack_from(data, pos + 60)
        pos += 62
        extended = 0
        if flags & EXTENDED:
            (extended,) = FLAGS.unpack_from(data, pos)
            pos += 2
        strip, pos = _varint(data, pos)
        end = data.index(b"\0", pos)
        name = previous[:len(previous) - strip] + data[pos:end]
        pos = end + 1
        flags &= ~NAME_MASK
        entries.append(Entry(name, flags, extended, entry_bytes(fields, oid, flags, name, extended)))
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


def in_index_order(entries: list[Entry]) -> list[Entry]:
    return sorted(entries, key=lambda e: (e.path, e.stage))


def write_index(path: str, ordered: list[Entry]) -> None:
    """Write `ordered` (in_index_order; one per path and stage) as a whole index, replacing `path` atomically."""
    version = 3 if any(e.flags & EXTENDED for e in ordered) else 2
    body = [b"DIRC", struct.pack(">II", version, len(ordered)), *(e.raw for e in ordered)]
    digest = hashlib.sha1()
    for part in body:
        digest.update(part)
    replace_file(path, [*body, digest.digest()])


def tree_objects(ordered: list[Entry]) -> list[bytes]:
    """The trees (their content) that `git write-tree` makes of `ordered` (in_index_order, all at stage 0, none
    intent-to-add): each directory's, then its parent's, the root's last. Index order is tree order: a
    directory's entries are where its name sorts with a '/' after it, so a directory closes where its entry
    goes in its parent."""
    out: list[bytes] = []
    open_dirs: list[bytes] = [b""]  # the directories being filled, outermost first, each with a '/' after it
    contents: list[list[bytes]] = [[]]
    for e in ordered:
        path = e.path
        while not path.startswith(open_dirs[-1]):
            _close_dir(open_dirs, contents, out)
        *dirs, name = path[len(open_dirs[-1]):].split(b"/")
        for d in dirs:
            open_dirs.append(open_dirs[-1] + d + b"/")
            contents.append([])
        contents[-1].append(b"%o %s\0%s" % (e.mode, name, e.oid))
    while len(open_dirs) > 1:
        _close_dir(open_dirs, contents, out)
    out.append(b"".join(contents[0]))
    return out


def _close_dir(open_dirs: list[bytes], contents: list[list[bytes]], out: list[bytes]) -> None:
    tree = b"".join(contents.pop())
    out.append(tree)
    name = open_dirs.pop()[len(open_dirs[-1]):-1]
    contents[-1].append(b"40000 %s\0%s" % (name, hashlib.sha1(b"tree %d\0%s" % (len(tree), tree)).digest()))
