import os
import stat

import pytest

from ghostline.apply import apply_edit, write_file
from ghostline.apply.textfile import FileFormatError, TextFile, atomic_write_bytes


def test_crlf_file_keeps_crlf_and_untouched_lines(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes(b"one\r\ntwo\r\nthree\r\n")
    r = apply_edit(p, "two\n", "TWO\nextra\n")
    assert r.applied and r.rung == "line-endings"
    assert p.read_bytes() == b"one\r\nTWO\r\nextra\r\nthree\r\n"


def test_mixed_line_endings_only_the_edited_region_changes(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes(b"a\r\nb\nc\r\nd\n")
    r = apply_edit(p, "c", "C")
    assert r.applied
    assert p.read_bytes() == b"a\r\nb\nC\r\nd\n"


def test_bom_and_utf16_round_trip(tmp_path):
    p = tmp_path / "bom.py"
    p.write_bytes(b"\xef\xbb\xbfx = 1\r\ny = 2\r\n")
    assert apply_edit(p, "y = 2", "y = 3").applied
    assert p.read_bytes() == b"\xef\xbb\xbfx = 1\r\ny = 3\r\n"
    q = tmp_path / "u16.txt"
    q.write_bytes(b"\xff\xfe" + "héllo\nworld\n".encode("utf-16-le"))
    assert apply_edit(q, "world", "monde").applied
    assert q.read_bytes() == b"\xff\xfe" + "héllo\nmonde\n".encode("utf-16-le")


def test_latin1_file_round_trips_bytes(tmp_path):
    p = tmp_path / "l1.txt"
    p.write_bytes(b"caf\xe9\nbar\n")
    assert apply_edit(p, "bar", "baz").applied
    assert p.read_bytes() == b"caf\xe9\nbaz\n"
    r = apply_edit(p, "baz", "\u2603")  # snowman: not representable in latin-1
    assert not r.applied and "encoding" in r.error
    assert p.read_bytes() == b"caf\xe9\nbaz\n"


def test_binary_file_refused(tmp_path):
    p = tmp_path / "b.bin"
    p.write_bytes(b"\x00\x01abc")
    r = apply_edit(p, "abc", "def")
    assert not r.applied and "binary" in r.error
    with pytest.raises(FileFormatError):
        TextFile.from_bytes(b"\x00x")


@pytest.mark.parametrize("had_newline", [True, False])
def test_final_newline_state_kept(tmp_path, had_newline):
    p = tmp_path / "f.txt"
    body = "a\nb\nc" + ("\n" if had_newline else "")
    p.write_text(body)
    # the edit touches the end of the file and gets the final newline wrong
    old = "c\n" if had_newline else "c"
    new = "C" if had_newline else "C\n"
    assert apply_edit(p, old, new).applied
    assert p.read_text() == "a\nb\nC" + ("\n" if had_newline else "")


def test_atomic_write_preserves_mode_and_follows_symlink(tmp_path):
    p = tmp_path / "script.sh"
    p.write_text("echo hi\n")
    os.chmod(p, 0o751)
    link = tmp_path / "link.sh"
    link.symlink_to(p)
    assert apply_edit(link, "echo hi", "echo bye").applied
    assert link.is_symlink()
    assert p.read_text() == "echo bye\n"
    assert stat.S_IMODE(p.stat().st_mode) == 0o751
    assert [f.name for f in tmp_path.iterdir() if f.name.endswith(".tmp")] == []


def test_write_file_creates_parents_and_keeps_style(tmp_path):
    new = tmp_path / "a" / "b" / "c.txt"
    r = write_file(new, "hello\n")
    assert r.applied and r.action == "create" and new.read_text() == "hello\n"
    old = tmp_path / "w.txt"
    old.write_bytes(b"\xef\xbb\xbfx\r\ny\r\n")
    os.chmod(old, 0o640)
    r = write_file(old, "x\nz\n")
    assert r.applied and r.rung == "write"
    assert old.read_bytes() == b"\xef\xbb\xbfx\r\nz\r\n"
    assert stat.S_IMODE(old.stat().st_mode) == 0o640
    assert "-y" in r.diff and "+z" in r.diff


def test_write_file_dry_run_and_directory(tmp_path):
    p = tmp_path / "d.txt"
    r = write_file(p, "x\n", dry_run=True)
    assert r.applied and not p.exists()
    r = write_file(tmp_path, "x")
    assert not r.applied and "directory" in r.error


def test_atomic_write_failure_leaves_original(tmp_path, monkeypatch):
    p = tmp_path / "k.txt"
    p.write_text("keep\n")

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_bytes(p, b"new\n")
    assert p.read_text() == "keep\n"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["k.txt"]
    r = apply_edit(p, "keep", "gone")
    assert not r.applied and r.rung == "io" and "No space" in r.error
    assert p.read_text() == "keep\n"
