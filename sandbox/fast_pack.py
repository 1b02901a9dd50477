"""A first snapshot's new files as one pack, without git's per-file costs.

`git add` of an untracked tree pays, for every file, a zlib stream set up and torn down, SHA-1 with collision
detection, and a look-up of the blob that re-reads every pack directory after a miss: ~2 s for 18k files of
code (90 MB) here. This writes their blobs into one pack of stored (not deflated) objects with its index,
hashing with OpenSSL's SHA-1 (the same object names), and says what git's index needs to know of each file:
its mode, object name and stat. `Checkpoints` runs two of these at once over halves of the list, puts the
entries into the store's index (`git_index.py`) and then lets `git add -A` check the result: a file whose stat
still matches is not hashed again, anything else (a file that changed meanwhile, one left out here) is.

    python -P -m ghostline.sandbox.fast_pack PACK_DIR LIMIT < paths
        (NUL-separated paths, relative to the current directory; -P: the work tree must not shadow Ghostline)

prints the index entry of each file packed (version 2, back to back: git_index.read_entries reads them). When the
files add up to more than LIMIT bytes it writes nothing and exits with OVER_LIMIT. Regular files and symbolic
links only; anything else, or a file that went away, is left to git. Objects are held in memory until the pack
is written (LIMIT bounds them); they are stored uncompressed, and the store's `git gc` deflates them later.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import sys
import zlib

from ghostline.files import replace_file
from ghostline.sandbox.git_index import Entry

BLOB = 3  # the pack's object type number for a blob
STORED_BLOCK = 65535  # the most a stored deflate block holds
OVER_LIMIT = 3  # exit status: the files hold more bytes than allowed, nothing was written
FAST_MAX_BYTES = 256 * 2**20  # new files' bytes above this: git's own add (the objects are held in memory)


Packed = tuple[bytes, int, int]  # an object's name, its offset in the pack, the CRC-32 of its packed bytes


def blob_of(path: str, st: os.stat_result) -> tuple[int, bytes, os.stat_result] | None:
    """(git mode, content, stat) of a regular file or symbolic link (`st`: its lstat), as git would store it
    (no conversion: the store's attributes turn every filter off); None for anything else or a file that went
    away."""
    try:
        if stat.S_ISLNK(st.st_mode):
            return 0o120000, os.fsencode(os.readlink(path)), st
        if not stat.S_ISREG(st.st_mode):
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            st = os.fstat(fd)
            data = _read_all(fd, st.st_size)
        finally:
            os.close(fd)
    except OSError:
        return None
    return (0o100755 if st.st_mode & stat.S_IXUSR else 0o100644), data, st


def _read_all(fd: int, size: int) -> bytes:
    first = os.read(fd, size + 1)
    if len(first) <= size:  # short of what was asked: the end of the file (one read for a file that did not grow)
        return first
    chunks = [first]
    while chunks[-1]:
        chunks.append(os.read(fd, 1 << 20))
    return b"".join(chunks)


def object_header(kind: int, size: int) -> bytes:
    """A pack entry's type and size: 4 bits of size in the first byte, 7 in each that follows."""
    out = bytearray([(kind << 4) | (size & 0x0F)])
    size >>= 4
    while size:
        out[-1] |= 0x80
        out.append(size & 0x7F)
        size >>= 7
    return bytes(out)


def stored_parts(data: bytes) -> list[bytes]:
    """`data` as a zlib stream of stored (not deflated) blocks — what `zlib.compress(data, 0)` gives — in
    parts, without copying a small file's bytes or setting up a compressor for each file (~8 µs)."""
    parts = [b"\x78\x01"]
    if len(data) <= STORED_BLOCK:
        parts += (struct.pack("<BHH", 1, len(data), len(data) ^ 0xFFFF), data)
    else:
        for start in range(0, len(data), STORED_BLOCK):
            chunk = data[start:start + STORED_BLOCK]
            parts += (struct.pack("<BHH", start + STORED_BLOCK >= len(data), len(chunk), len(chunk) ^ 0xFFFF),
                      chunk)
    parts.append(struct.pack(">I", zlib.adler32(data)))
    return parts


def pack_files(paths: list[str], stats: list[os.stat_result | None], pack_dir: str
               ) -> list[tuple[int, bytes, os.stat_result, str]]:
    """Write the blobs of `paths` (`stats`: their lstat) as one pack with its .idx into `pack_dir`; (mode, oid,
    stat, path) of each file packed."""
    body: list[bytes] = []
    packed: dict[bytes, Packed] = {}
    entries = []
    offset = 12  # after the pack's header
    for path, st in zip(paths, stats, strict=True):
        found = blob_of(path, st) if st is not None else None
        if found is None:
            continue
        mode, data, st = found
        digest = hashlib.sha1(b"blob %d\0" % len(data))
        digest.update(data)
        oid = digest.digest()
        entries.append((mode, oid, st, path))
        if oid in packed:
            continue
        parts = [object_header(BLOB, len(data)), *stored_parts(data)]
        crc = 0
        for part in parts:
            crc = zlib.crc32(part, crc)
        packed[oid] = (oid, offset, crc)
        body += parts
        offset += sum(map(len, parts))
    if packed:
        _write_pack(pack_dir, body, sorted(packed.values()))
    return entries


def _write_pack(pack_dir: str, body: list[bytes], objects: list[Packed]) -> None:
    """The .pack, then its .idx (git finds a pack by its .idx), each under a temporary name first."""
    digest = hashlib.sha1(b"PACK" + struct.pack(">II", 2, len(objects)))
    for record in body:
        digest.update(record)
    checksum = digest.digest()
    name = os.path.join(pack_dir, f"pack-{checksum.hex()}")
    replace_file(name + ".pack", [b"PACK", struct.pack(">II", 2, len(objects)), *body, checksum], 0o444)
    replace_file(name + ".idx", [idx_v2(objects, checksum)], 0o444)


def idx_v2(objects: list[Packed], pack_checksum: bytes) -> bytes:
    """A version 2 pack index of `objects` (sorted by name)."""
    fanout = [0] * 256
    for oid, _, _ in objects:
        fanout[oid[0]] += 1
    total = 0
    for i in range(256):
        total += fanout[i]
        fanout[i] = total
    large = [offset for _, offset, _ in objects if offset >= 1 << 31]
    small, n_large = [], 0
    for _, offset, _ in objects:
        if offset >= 1 << 31:
            small.append(0x80000000 | n_large)
            n_large += 1
        else:
            small.append(offset)
    parts = [b"\xfftOc", struct.pack(">I", 2), struct.pack(">256I", *fanout), b"".join(o[0] for o in objects),
             struct.pack(f">{len(objects)}I", *(o[2] for o in objects)),
             struct.pack(f">{len(objects)}I", *small), struct.pack(f">{len(large)}Q", *large), pack_checksum]
    data = b"".join(parts)
    return data + hashlib.sha1(data).digest()


def index_entry(mode: int, oid: bytes, st: os.stat_result, path: str) -> bytes:
    """The file's entry as the index holds it (git_index.Entry.encoded), stat fields cut to 32 bits as git does."""
    name = os.fsencode(path)
    fields = (st.st_ctime_ns // 10**9, st.st_ctime_ns % 10**9, st.st_mtime_ns // 10**9, st.st_mtime_ns % 10**9,
              st.st_dev, st.st_ino, mode, st.st_uid, st.st_gid, st.st_size)
    return Entry(name, tuple(v & 0xFFFFFFFF for v in fields), oid, 0).encoded()


def stat_within(paths: list[str], limit: int) -> list[os.stat_result | None] | None:
    """Each file's lstat (None for one that went away); None when their bytes add up to more than `limit`
    (found before anything is read or written)."""
    stats: list[os.stat_result | None] = []
    total = 0
    for path in paths:
        try:
            st = os.lstat(path)
        except OSError:
            stats.append(None)
            continue
        total += st.st_size
        if total > limit:
            return None
        stats.append(st)
    return stats


def main() -> int:
    pack_dir, limit = sys.argv[1], int(sys.argv[2])
    paths = [os.fsdecode(p) for p in sys.stdin.buffer.read().split(b"\0") if p]
    stats = stat_within(paths, limit)
    if stats is None:
        return OVER_LIMIT
    out = sys.stdout.buffer
    for mode, oid, st, path in pack_files(paths, stats, pack_dir):
        out.write(index_entry(mode, oid, st, path))
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
