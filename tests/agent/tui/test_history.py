"""The project's prompt history file: persisted on each add, bounded, tolerant of a torn line."""

from __future__ import annotations

import json
from pathlib import Path

from ghostline.agent.tui.history import PromptHistory, history_path


def test_entries_round_trip_multi_line_and_unicode(data_dir: Path, tmp_path: Path):
    h = PromptHistory.for_project(tmp_path / "proj")
    assert h.add("first") and h.add("two\nlines\n  indented") and h.add("émoji 🐍 \ud800")
    again = PromptHistory.for_project(tmp_path / "proj")
    assert again.entries == ["first", "two\nlines\n  indented", "émoji 🐍 \ud800"]
    assert history_path(tmp_path / "proj").parent == data_dir / "history"


def test_each_project_has_its_own_file(data_dir: Path, tmp_path: Path):
    PromptHistory.for_project(tmp_path / "a").add("in a")
    assert PromptHistory.for_project(tmp_path / "b").entries == []
    assert history_path(tmp_path / "a") == history_path(tmp_path / "x" / ".." / "a")


def test_blank_and_repeated_entries_are_not_added(tmp_path: Path):
    h = PromptHistory(tmp_path / "h.jsonl")
    assert not h.add("   \n")
    assert h.add("same") and not h.add("same")
    assert h.add("other") and h.add("same")
    assert PromptHistory(tmp_path / "h.jsonl").entries == ["same", "other", "same"]


def test_a_torn_last_line_is_skipped_and_does_not_swallow_the_next_entry(tmp_path: Path):
    path = tmp_path / "h.jsonl"
    h = PromptHistory(path)
    h.add("kept")
    with open(path, "a") as fh:
        fh.write('{"t": 1, "text": "half wri')  # the process died mid-write
    h2 = PromptHistory(path)
    assert h2.entries == ["kept"]
    h2.add("next")
    assert PromptHistory(path).entries == ["kept", "next"]


def test_the_file_is_bounded_and_keeps_the_newest(tmp_path: Path):
    path = tmp_path / "h.jsonl"
    h = PromptHistory(path, limit=5)
    for i in range(23):
        h.add(f"msg {i}")
    assert h.entries == [f"msg {i}" for i in range(18, 23)]
    assert len(path.read_text().splitlines()) <= 10
    assert PromptHistory(path, limit=5).entries == h.entries
    assert all(json.loads(line)["t"] > 0 for line in path.read_text().splitlines())


def test_two_sessions_append_to_one_file(tmp_path: Path):
    path = tmp_path / "h.jsonl"
    a, b = PromptHistory(path), PromptHistory(path)
    a.add("from a")
    b.add("from b")
    assert PromptHistory(path).entries == ["from a", "from b"]


def test_search_is_newest_first_case_insensitive_and_unique(tmp_path: Path):
    h = PromptHistory(None)
    for text in ("Fix the parser", "run tests", "fix the lexer", "fix the parser", "Fix the parser"):
        h.add(text)
    assert h.search("FIX") == ["Fix the parser", "fix the parser", "fix the lexer"]
    assert h.search("") == ["Fix the parser", "fix the parser", "fix the lexer", "run tests"]


def test_a_write_failure_is_reported_not_raised(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    h = PromptHistory(blocker / "sub" / "h.jsonl")  # a file where a directory should be
    assert h.add("still kept in memory")
    assert h.entries == ["still kept in memory"]
    assert h.write_error and "cannot save the prompt history" in h.write_error
