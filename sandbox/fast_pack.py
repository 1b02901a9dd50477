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
files add up to more than LIMIT bytes it writes nothing and exits with OVER_LIMIT, having read at most LIMIT
bytes (each file's size is known before it is read). Regular files and symbolic links only; anything else, or a
file that went away, is left to git. Each object is written as soon as it is read and hashed (PackWriter), stored
uncompressed; the store's `git gc` deflates them later.
"""

from __future__ import annotations

import _thread
import errno
import hashlib
import os
import stat
import struct
import sys

from ghostline.files import IOV_MAX, replace_file, write_all
from ghostline.sandbox.git_index import entry_bytes

try:  # SIMD CRC-32 and Adler-32: ~5x the stdlib zlib's here, on every byte packed
    from zlib_ng.zlib_ng import adler32, crc32
except ImportError:  # no wheel for this platform: the same sums, slower
    from zlib import adler32, crc32

TREE, BLOB = 2, 3  # the pack's object type numbers
KIND_NAMES = {TREE: b"tree", BLOB: b"blob"}
STORED_BLOCK = 65535  # the most a stored deflate block holds
ZLIB_HEADER = b"\x78\x01"  # a zlib stream, no preset dictionary, "fastest" (what level 0 writes)
WRITE_BATCH = 1 << 20  # bytes of objects gathered before a write
OVER_LIMIT = 3  # exit status: the files hold more bytes than allowed, nothing was written
FAST_MAX_BYTES = 256 * 2**20  # new files' bytes above this: git's own add, which deflates them (stored, they take ~3x the disk)
# Opening a file that turned into a FIFO must not wait for a writer; a symbolic link is read as a link.
OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC

Packed = tuple[bytes, int, int]  # an object's name, its offset in the pack, the CRC-32 of its packed bytes


class OverLimit(Exception):
    pass


def blob_of(path: str, room: int) -> tuple[int, bytes, os.stat_result] | None:
    """(git mode, content, stat) of a regular file or symbolic link, as git would store it (no conversion: the
    store's attributes turn every filter off); None for anything else or a file that went away. OverLimit,
    before reading it, for a file of more than `room` bytes."""
    try:
        fd = os.open(path, OPEN_FLAGS)
    except OSError as e:
        return _link_of(path) if e.errno == errno.ELOOP else None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        if st.st_size > room:
            raise OverLimit
        data = _read_all(fd, st.st_size)
    except OSError:
        return None
    finally:
        os.close(fd)
    return (0o100755 if st.st_mode & stat.S_IXUSR else 0o100644), data, st


def _link_of(path: str) -> tuple[int, bytes, os.stat_result] | None:
    try:
        st = os.lstat(path)
        return (0o120000, os.fsencode(os.readlink(path)), st) if stat.S_ISLNK(st.st_mode) else None
    except OSError:
        return None


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
    parts, without copying a file's bytes or setting up a compressor for each file (~8 µs). The zlib header
    and the first block's header make one part: a file under a stored block's size, nearly all of them, takes
    three."""
    parts: list[bytes] = []
    for start in range(0, max(len(data), 1), STORED_BLOCK):
        chunk = data[start:start + STORED_BLOCK] if len(data) > STORED_BLOCK else data
        parts += (struct.pack("<BHH", start + STORED_BLOCK >= len(data), len(chunk), len(chunk) ^ 0xFFFF), chunk)
    parts[0] = ZLIB_HEADER + parts[0]
    parts.append(adler32(data).to_bytes(4, "big"))
    return parts


def packed_parts(kind: int, data: bytes) -> tuple[list[bytes], int, int]:
    """An object's pack entry (its type and size, then the zlib stream) in parts, their length and their
    CRC-32."""
    parts = stored_parts(data)
    parts[0] = object_header(kind, len(data)) + parts[0]
    crc = 0
    for part in parts:
        crc = crc32(part, crc)
    return parts, sum(map(len, parts)), crc


def object_id(kind: int, data: bytes) -> bytes:
    digest = hashlib.sha1(b"%s %d\0" % (KIND_NAMES[kind], len(data)))
    digest.update(data)
    return digest.digest()


class PackWriter:
    """A pack of a number of objects fixed ahead, streamed to a temporary file in `pack_dir`: each object is
    hashed into the pack's checksum and written while its bytes are still in the CPU's cache (the count in the
    pack's header is the first thing hashed, so it must be known before the first object). Objects are stored,
    not deflated. `finish()` names the pack by its checksum and writes its .idx; `abandon()` removes it."""

    def __init__(self, pack_dir: str, count: int):
        self.pack_dir, self.count = pack_dir, count
        # git's own prefix for a pack being written: a packer stopped half-way (the program ended) leaves one
        # that the store's gc removes
        self.tmp = os.path.join(pack_dir, f"tmp_pack_ghostline_{os.getpid()}_{_thread.get_ident()}")
        self.fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o444)
        head = b"PACK" + struct.pack(">II", 2, count)
        self.digest = hashlib.sha1(head)
        self.objects: dict[bytes, Packed] = {}
        self.size = len(head)
        self.batch: list[bytes] = [head]
        self.batch_bytes = 0

    def __contains__(self, oid: bytes) -> bool:
        return oid in self.objects

    def add(self, kind: int, data: bytes, oid: bytes) -> None:
        """Append an object the pack does not hold yet."""
        parts, length, crc = packed_parts(kind, data)
        update = self.digest.update
        for part in parts:
            update(part)
        self.objects[oid] = (oid, self.size, crc)
        self.size += length
        self.batch += parts
        self.batch_bytes += length
        if self.batch_bytes >= WRITE_BATCH or len(self.batch) >= IOV_MAX - 4:
            self._flush()

    def _flush(self) -> None:
        write_all(self.fd, self.batch)
        self.batch, self.batch_bytes = [], 0

    def finish(self) -> None:
        if len(self.objects) != self.count:
            raise ValueError(f"a pack of {self.count} objects was given {len(self.objects)}")
        checksum = self.digest.digest()
        self.batch.append(checksum)
        self._flush()
        os.close(self.fd)
        self.fd = -1
        name = os.path.join(self.pack_dir, f"pack-{checksum.hex()}")
        os.replace(self.tmp, name + ".pack")
        replace_file(name + ".idx", [idx_v2(sorted(self.objects.values()), checksum)], 0o444)

    def abandon(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass


def pack_files(paths: list[str], pack_dir: str, limit: int) -> list[bytes]:
    """Write the blobs of `paths` as one pack with its .idx into `pack_dir`; the index entry of each file
    packed. OverLimit, with nothing written, when their sizes add up to more than `limit` bytes.

    The pack holds one object per path, so that its count is known from the start: a path that gives no blob
    of its own (a second copy of one already packed, a file gone or not a regular file or link) gives a small
    filler blob instead, unique to this pack and referred to by nothing; the store's gc drops it."""
    writer = PackWriter(pack_dir, len(paths))
    try:
        entries = []
        total = 0
        nonce = os.urandom(8).hex().encode()
        for i, path in enumerate(paths):
            found = blob_of(path, limit - total)
            oid = None
            if found is not None:
                mode, data, st = found
                total += len(data)
                if total > limit:  # a file that grew while it was read, or a link
                    raise OverLimit
                oid = object_id(BLOB, data)
                entries.append(index_entry(mode, oid, st, path))
            if oid is None or oid in writer:
                data = b"ghostline pack filler %s %d\n" % (nonce, i)
                oid = object_id(BLOB, data)
            writer.add(BLOB, data, oid)
        writer.finish()
    except BaseException:
        writer.abandon()
        raise
    return entries


def write_objects(pack_dir: str, kind: int, contents: list[bytes]) -> None:
    """Objects of one kind (a first snapshot's trees) as a pack of their own, each once."""
    unique = {object_id(kind, data): data for data in contents}
    if not unique:
        return
    writer = PackWriter(pack_dir, len(unique))
    try:
        for oid, data in unique.items():
            writer.add(kind, data, oid)
        writer.finish()
    except BaseException:
        writer.abandon()
        raise


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
    """The file's entry as a version 2 index holds it, stat fields cut to 32 bits as git does (stage 0)."""
    ctime, ctime_ns = divmod(st.st_ctime_ns, 10**9)
    mtime, mtime_ns = divmod(st.st_mtime_ns, 10**9)
    m = 0xFFFFFFFF
    fields = (ctime & m, ctime_ns, mtime & m, mtime_ns, st.st_dev & m, st.st_ino & m, mode, st.st_uid & m,
              st.st_gid & m, st.st_size & m)
    return entry_bytes(fields, oid, 0, os.fsencode(path))


def main() -> int:
    pack_dir, limit = sys.argv[1], int(sys.argv[2])
    paths = [os.fsdecode(p) for p in sys.stdin.buffer.read().split(b"\0") if p]
    try:
        entries = pack_files(paths, pack_dir, limit)
    except OverLimit:
        return OVER_LIMIT
    sys.stdout.buffer.write(b"".join(entries))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
