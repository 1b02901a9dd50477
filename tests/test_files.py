"""ghostline/files.py: a file replaced whole."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ghostline.files import replace_file


def test_a_file_is_replaced_whole_with_its_mode(tmp_path: Path):
    target = tmp_path / "kept.bin"
    target.write_bytes(b"old")
    replace_file(target, [b"new ", b"content"], 0o600)
    assert target.read_bytes() == b"new content"
    assert target.stat().st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path) == ["kept.bin"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path: Path):
    target = tmp_path / "kept.bin"
    target.write_bytes(b"old")
    with pytest.raises(TypeError):
        replace_file(target, [b"new", "not bytes"])  # type: ignore[list-item]
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["kept.bin"]


def test_thousands_of_parts_and_short_writes_all_arrive(tmp_path: Path, monkeypatch):
    """More parts than one writev() takes, and a writev() that writes less than it was given: every byte
    lands, in order."""
    parts = [b"%d," % i for i in range(3000)] + [os.urandom(100_000)]
    real = os.writev

    def short(fd: int, buffers: list[bytes]) -> int:  # at most 1,000 bytes a call, as a full pipe might
        return real(fd, [b"".join(buffers)[:1000]])

    monkeypatch.setattr(os, "writev", short)
    target = tmp_path / "many"
    replace_file(target, parts)
    assert target.read_bytes() == b"".join(parts)
