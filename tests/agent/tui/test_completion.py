"""Completion: tokens, slash commands, fuzzy repository paths (gitignore-aware), and the popup in the box."""

from __future__ import annotations

import asyncio
import subprocess
import threading
from pathlib import Path

import pytest
from textual import events

from ghostline.agent.tui import completion
from ghostline.agent.tui.completion import PathMatcher, RepoFiles, find_token, slash_candidates
from tests.agent.tui.host import COMMANDS, Host


def test_tokens():
    assert find_token("/he", 0, 3).kind == "slash"
    assert find_token("/he", 0, 3).query == "he"
    assert find_token("/help me", 0, 8) is None  # arguments are not completed
    assert find_token("/help", 1, 5) is None  # only at the start of the input
    assert find_token("//etc", 0, 5) is None  # an escaped slash is text
    t = find_token("look at @src/ma please", 0, 15)
    assert (t.kind, t.start, t.end, t.query) == ("path", 8, 15, "src/ma")
    t = find_token("@src/main.py", 0, 4)  # the cursor inside the token: the whole token is replaced
    assert (t.start, t.end, t.query) == (0, 12, "src")
    assert find_token("mail me@example.com", 0, 19) is None
    assert find_token("@a b", 0, 4) is None


def test_slash_candidates_prefix_then_substring_then_fuzzy():
    assert [c.insert for c in slash_candidates(COMMANDS, "c")] == ["/compact ", "/clear "]
    assert [c.insert for c in slash_candidates(COMMANDS, "ea")] == ["/clear "]
    assert [c.insert for c in slash_candidates(COMMANDS, "hepl")] == ["/help "]
    assert slash_candidates(COMMANDS, "zzz") == []
    [compact] = slash_candidates(COMMANDS, "comp")
    assert compact.label == "/compact [focus]" and compact.detail == "summarise now"


PATHS = ["src/app.py", "src/approval.py", "docs/apple.md", "src/index/walker.py", "tests/test_walker.py",
         "src/deep/nested/dir/walk_lkr.py", "README.md", "src/ghostline/agent/tui/app.py"]


def test_path_ranking_prefers_names_then_shorter_paths():
    m = PathMatcher(PATHS)
    assert m.match("app")[:3] == ["src/app.py", "docs/apple.md", "src/approval.py"]
    assert m.match("walker") == ["src/index/walker.py", "tests/test_walker.py"]
    assert m.match("wlkr")[:2] == ["src/index/walker.py", "tests/test_walker.py"]
    assert m.match("tui/app") == ["src/ghostline/agent/tui/app.py"]
    assert m.match("WALKER")[0] == "src/index/walker.py"
    assert m.match("")[0] == "README.md"  # no query: the shallowest paths


def test_scattered_matches_rank_by_alignment_not_length():
    m = PathMatcher(["fe/frontend_widget.py", "src/ui/render_widget.rs", "x/RenderWidget.tsx", "x/rowwise.py"])
    assert m.match("rendwid")[:2] == ["x/RenderWidget.tsx", "src/ui/render_widget.rs"]
    assert m.match("rw")[0] == "x/RenderWidget.tsx"  # camelCase humps are word starts


def test_path_matching_narrows_and_widens_again():
    m = PathMatcher(PATHS)
    assert m.match("w")
    assert m.match("wa")
    assert m.match("walker") == ["src/index/walker.py", "tests/test_walker.py"]
    assert m.match("app")[0] == "src/app.py"  # not a continuation: searches everything again


def test_a_typo_still_finds_the_nearest_names():
    assert PathMatcher(PATHS).match("walekr")[0].endswith("walker.py")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for rel in ("src/walker.py", "src/app.py", "build/walker_out.py", "debug.log", "docs/guide.md"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x\n")
    (root / ".gitignore").write_text("build/\n*.log\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    return root


def test_repo_files_honour_gitignore(repo: Path):
    files = RepoFiles(repo)
    assert files.refresh()
    assert files.wait(timeout=30)
    assert sorted(files.matcher.paths) == [".gitignore", "docs/guide.md", "src/app.py", "src/walker.py"]
    assert not files.refresh()  # fresh
    stale = RepoFiles(repo, max_age_s=0)
    stale.build()
    assert stale.refresh() and stale.wait(timeout=30)


def test_one_listing_at_a_time(repo: Path, monkeypatch: pytest.MonkeyPatch):
    release = threading.Event()

    def slow_listing(root: Path) -> list[str]:
        release.wait(30)
        return ["a.py"]

    monkeypatch.setattr(completion, "list_repo_files", slow_listing)
    files = RepoFiles(repo)
    assert files.refresh()
    assert not files.refresh()  # one is running
    assert files.candidates("a") == []  # nothing yet; the box shows the list when told
    release.set()
    assert files.wait(timeout=30)
    assert [c.label for c in files.candidates("a")] == ["a.py"]


async def wait_for_file_list(app, pilot) -> None:
    assert await asyncio.to_thread(app.box.files.wait, 30)
    await pilot.pause()


async def test_at_popup_fuzzy_matches_repo_files_and_tab_accepts(repo: Path):
    app = Host(root=repo)
    async with app.run_test() as pilot:
        box, popup = app.box, app.box.popup
        await pilot.press(*"see @wlk")
        await wait_for_file_list(app, pilot)
        assert popup.is_open
        assert [c.label for c in popup.candidates] == ["src/walker.py"]  # build/ is ignored
        await pilot.press("tab")
        assert box.text == "see @src/walker.py " and not popup.is_open
        await pilot.press(*"and @")
        assert "debug.log" not in [c.label for c in popup.candidates]
        await pilot.press(*"guide", "enter")
        assert box.text == "see @src/walker.py and @docs/guide.md "
        assert app.sent == []  # Enter accepted, it did not send
        await pilot.press("enter")
        assert app.sent == ["see @src/walker.py and @docs/guide.md "]


async def test_slash_popup_filters_and_enter_accepts_without_sending():
    app = Host(commands=lambda: COMMANDS)
    async with app.run_test() as pilot:
        box, popup = app.box, app.box.popup
        await pilot.press("/")
        assert [c.label for c in popup.candidates] == ["/help", "/compact [focus]", "/clear"]
        await pilot.press("c")
        assert [c.label for c in popup.candidates] == ["/compact [focus]", "/clear"]
        await pilot.press("down", "enter")
        assert box.text == "/clear " and app.sent == [] and not popup.is_open
        await pilot.press("enter")
        assert app.sent == ["/clear "]


async def test_enter_on_a_complete_command_sends_it():
    app = Host(commands=lambda: COMMANDS)
    async with app.run_test() as pilot:
        await pilot.press(*"/help")
        assert app.box.popup.is_open
        await pilot.press("enter")  # accepting would change nothing: Enter sends
        assert app.sent == ["/help"]


async def test_keys_in_a_burst_act_on_what_was_typed_not_on_a_list_left_behind():
    """Keys a terminal delivers at once (a fast typist, tmux send-keys, a macro) come before the list follows the
    text: Enter after `/clear` must send /clear, not accept the `/help` the list showed for `/`."""
    app = Host(commands=lambda: COMMANDS)
    async with app.run_test() as pilot:
        await pilot.press("/")
        assert app.box.popup.current.insert.startswith("/help")
        for key, char in (("c", "c"), ("l", "l"), ("e", "e"), ("a", "a"), ("r", "r"), ("enter", "\r")):
            app._driver.send_message(events.Key(key, char))
        await pilot.pause()
        assert app.sent == ["/clear"]


async def test_keys_typed_after_enter_in_a_burst_are_the_next_message():
    """`/undo`, Enter, `and now go on`, Enter delivered at once (tmux send-keys): two messages, not a command and
    then `/undoand now go on` (the box used to be emptied only when the app got the first message)."""
    app = Host(commands=lambda: COMMANDS)
    async with app.run_test() as pilot:
        for char in "/clear\rgo on\r":
            key = "enter" if char == "\r" else ("space" if char == " " else char)
            app._driver.send_message(events.Key(key, char))
        await pilot.pause()
        assert app.sent == ["/clear", "go on"] and app.box.text == ""


async def test_escape_closes_the_popup_until_the_next_token():
    app = Host(commands=lambda: COMMANDS)
    async with app.run_test() as pilot:
        popup = app.box.popup
        await pilot.press("/", "c")
        await pilot.press("escape")
        assert not popup.is_open
        await pilot.press("o")
        assert not popup.is_open  # still the dismissed token
        await pilot.press("backspace", "backspace", "backspace")
        await pilot.press("/")
        assert popup.is_open


async def test_the_popup_is_drawn_just_above_the_box():
    app = Host(commands=lambda: COMMANDS)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("/")
        await pilot.pause()
        box, popup = app.box.region, app.box.popup.region
        assert popup.bottom == box.y and popup.height >= 3
        assert app.box.has_focus


async def test_a_click_on_a_row_accepts_it():
    app = Host(commands=lambda: COMMANDS)
    async with app.run_test() as pilot:
        await pilot.press("/")
        await pilot.pause()
        assert await pilot.click(app.box.popup, offset=(3, 2))  # inside the border: the second row
        assert app.box.text == "/compact " and app.box.has_focus and app.sent == []
