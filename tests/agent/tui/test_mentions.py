"""`@path` mentions: attached when they name files in the workspace, refused with a note otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ghostline.agent.mentions import expand_mentions, mentioned_paths


@pytest.fixture
def ws(tmp_path: Path, data_dir: Path) -> Path:
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("def main():\n    return 1\n")
    (root / "notes with space.md").write_text("spaced\n")
    (root / "blob.bin").write_bytes(b"\x00\x01\x02binary")
    (root / "shot.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32)
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    (tmp_path / "secret.txt").write_text("outside\n")
    return root


def test_a_mentioned_file_is_attached_after_the_text(ws: Path):
    out = expand_mentions("explain @src/app.py please", ws, ws)
    assert out.attached == ["src/app.py"] and out.notes == [] and out.images == []
    text, _, block = out.text.partition("\n\n")
    assert text == "explain @src/app.py please"
    assert block == ('<attached_file path="src/app.py" bytes="25">\ndef main():\n    return 1\n\n'
                     "</attached_file>")


def test_paths_relative_to_cwd_trailing_punctuation_quotes_and_repeats(ws: Path):
    out = expand_mentions('see @app.py, then @"../notes with space.md". Again @app.py', ws / "src", ws)
    assert out.attached == ["src/app.py", "notes with space.md"]
    assert out.text.count("<attached_file") == 2


def test_unknown_mentions_stay_text(ws: Path):
    out = expand_mentions("ask @alice about @property and mail bob@example.com", ws, ws)
    assert out.text == "ask @alice about @property and mail bob@example.com"
    assert out.attached == [] and out.notes == []


def test_refusals_outside_the_workspace_protected_and_binary(ws: Path, data_dir: Path):
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "trust.json").write_text("{}")
    os.symlink(ws.parent / "secret.txt", ws / "link.txt")
    text = f"@../secret.txt @link.txt @.git/config @blob.bin @{data_dir / 'trust.json'} @src"
    out = expand_mentions(text, ws, ws)
    assert out.attached == []
    assert out.text == text
    notes = "\n".join(out.notes)
    assert len(out.notes) == 6, notes
    assert notes.count("outside the workspace") == 3  # the symlink and the data dir resolve outside too
    assert "@.git/config not attached: .git internals" in notes
    assert "@blob.bin not attached: binary file" in notes
    assert "@src not attached: not a regular file" in notes


def test_protected_dir_inside_the_workspace_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    ws = tmp_path / "ws"
    data = ws / "state"
    data.mkdir(parents=True)
    (data / "approvals.json").write_text("{}")
    monkeypatch.setenv("GHOSTLINE_DATA_DIR", str(data))
    out = expand_mentions("@state/approvals.json", ws, ws)
    assert out.attached == [] and "Ghostline's own config/data" in out.notes[0]


def test_long_files_are_cut_with_a_note(ws: Path):
    (ws / "big.txt").write_text("x" * 5000)
    out = expand_mentions("@big.txt", ws, ws, max_file_chars=1000)
    assert out.attached == ["big.txt"]
    assert "x" * 1000 + "\n[cut here: the first 1,000 characters of 5,000 bytes" in out.text
    assert "x" * 1001 not in out.text
    assert out.notes == ["@big.txt attached in part: the first 1,000 characters of 5,000 bytes"]


def test_the_total_is_capped(ws: Path):
    for name in ("a.txt", "b.txt", "c.txt"):
        (ws / name).write_text("y" * 800)
    out = expand_mentions("@a.txt @b.txt @c.txt", ws, ws, max_file_chars=1000, max_total_chars=1200)
    assert out.attached == ["a.txt", "b.txt"]
    assert out.notes[-1] == "@c.txt not attached: the attachments already fill the message"


def test_images_come_back_separately(ws: Path):
    out = expand_mentions("what is in @shot.png", ws, ws)
    assert out.images == [(ws / "shot.png").resolve()]
    assert out.attached == [] and out.text == "what is in @shot.png"


def test_mentioned_paths(ws: Path):
    assert mentioned_paths('@a.py x@b.py (@c.py) @"d e.py"\n@f.py.', ws) == ["a.py", "d e.py", "f.py"]
