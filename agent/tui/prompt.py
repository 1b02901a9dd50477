"""The input box: a TextArea where Enter sends and modified Enters add a line, with the project's history
(Up/Down at the first/last line, Ctrl+R to search it) and completion of `/commands` and `@paths`.

Keys, first match wins:
* while a history search is open: typing edits the query, Up/Ctrl+R go older, Down newer, Enter/Tab picks,
  Left/Right/Home/End pick and go on editing, Esc cancels;
* while the completion list is open: Up/Down move, Tab accepts, Enter accepts (when accepting would change
  nothing it sends instead, never both), Esc closes it until the next token;
* Enter sends (`PromptInput.Submitted`), after recording the text in the history and emptying the box;
* Alt+Enter, Shift+Enter, Ctrl+Enter, Ctrl+J add a line (see agent/tui/keyboard.py for what terminals send);
* Ctrl+R opens the history search; Up on the first line / Down on the last walk the history, keeping a draft.

A paste (bracketed, as Textual always asks the terminal for) is inserted whole, line ends as `\\n`: it never
sends. The completion list is a sibling overlay mounted just before the box, so it draws above it.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import events
from textual.binding import Binding
from textual.content import Content
from textual.message import Message
from textual.widgets import TextArea

from ghostline.agent.tui.completion import (
    Candidate,
    CommandSource,
    CompletionPopup,
    RepoFiles,
    Token,
    find_token,
    slash_candidates,
)
from ghostline.agent.tui.history import PromptHistory
from ghostline.agent.tui.keyboard import install_alt_enter, is_newline_key

DEFAULT_PLACEHOLDER = "Enter sends · Alt+Enter new line · / commands · @ files · ↑ / Ctrl+R history"
SEARCH_PICK_AND_MOVE = ("left", "right", "home", "end")


@dataclass
class _Search:
    query: str = ""


class PromptInput(TextArea):
    """The input box. `history`: the project's PromptHistory (None: kept in memory only); `commands`: returns
    the slash commands as (name, argument hint, description); `root`: the repository whose files `@`
    completes (None: no file completion)."""

    DEFAULT_CSS = """
    PromptInput { height: auto; min-height: 3; max-height: 12; border: round $accent; padding: 0 1; }
    """

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class FilesListed(Message):
        """The repository's file list was (re)built in the background (handled by the box itself)."""

    class PageRequested(Message):
        """PageUp/PageDown: the box is a few lines high, so they page through what is above it."""

        def __init__(self, pages: int) -> None:
            super().__init__()
            self.pages = pages

    BINDINGS = [Binding("pageup", "page(-1)", show=False), Binding("pagedown", "page(1)", show=False)]

    def __init__(self, *, history: PromptHistory | None = None, commands: CommandSource | None = None,
                 root: Path | None = None, placeholder: str = DEFAULT_PLACEHOLDER, **kw: Any) -> None:
        super().__init__(soft_wrap=True, show_line_numbers=False, tab_behavior="focus",
                         highlight_cursor_line=False, placeholder=placeholder, **kw)
        install_alt_enter()
        self.prompt_history = history if history is not None else PromptHistory(None)
        self.commands = commands
        self.files = RepoFiles(root) if root is not None else None
        self.popup = CompletionPopup(self._pick)
        self._browse: int | None = None  # index into the history while Up/Down walk it
        self._draft = ""
        self._armed = False  # the last change came from the user's keys: completion follows it
        self._dismissed: tuple[int, int] | None = None  # (row, start) of a token whose list Esc closed
        self._listed_for: tuple[int, int, str] | None = None  # the token (row, start, text) the list was made for
        self._search: _Search | None = None
        self._hint = ""

    # -- the app's side -----------------------------------------------------------------------------------

    def remember(self, text: str) -> None:
        """Record a sent text in the history (a repeat of the last entry is not added twice)."""
        self.prompt_history.add(text)
        self._browse = None

    def use_project(self, root: Path) -> None:
        """Another project (the run moved to a worktree): its history, and its files for `@`."""
        self.prompt_history = PromptHistory.for_project(root)
        self.files = RepoFiles(root)
        self.files.refresh(self._files_listed)

    def action_page(self, pages: int) -> None:
        self.post_message(self.PageRequested(pages))

    def set_hint(self, text: str) -> None:
        """A short note on the box's lower border (e.g. "1 message queued"); "" removes it."""
        if text != self._hint:  # callers repeat it every second: repaint only a change
            self._hint = text
            self.border_subtitle = Content(text) if text else None

    # -- lifecycle ------------------------------------------------------------------------------------------

    def on_mount(self) -> None:
        if self.parent is not None:
            self.parent.mount(self.popup, before=self)
        if self.files is not None:  # after the first paint, so that the first `@` finds the list ready
            self.call_after_refresh(self.files.refresh, self._files_listed)

    def on_unmount(self) -> None:
        if self.popup.is_mounted:
            self.popup.remove()

    def on_blur(self) -> None:
        self._close_popup()
        self._search = None

    # -- keys -------------------------------------------------------------------------------------------------

    async def _on_key(self, event: events.Key) -> None:
        # Textual runs the TextArea's own key handler after this one unless the default is prevented.
        if self._handle_key(event):
            event.stop()
            event.prevent_default()
        else:
            self._armed = True  # typing, deleting, moving: the completion list follows

    def _handle_key(self, event: events.Key) -> bool:
        """Keys the box itself acts on; False leaves the key to the TextArea (and its bindings)."""
        key = event.key
        if self._search is not None:
            return self._search_key(event)
        if self.popup.is_open:
            self._catch_up()
        if self.popup.is_open and self._popup_key(key):
            return True
        if key == "enter":
            self._submit()
        elif is_newline_key(key):
            self._armed = False
            self._close_popup()
            self.insert("\n")
        elif key == "ctrl+r":
            self._open_search()
        elif key in ("up", "down"):
            return self._walk_history(key)
        else:
            return False
        return True

    def _submit(self) -> None:
        text = self.text
        self._armed = False
        self._close_popup()
        self.remember(text)  # written now: nothing sent is lost, whatever the app does next
        if self.prompt_history.write_error and self.is_attached:
            self.notify(self.prompt_history.write_error, severity="warning")
            self.prompt_history.write_error = None
        if text.strip():
            # Emptied now, not when the app gets the message: keys that arrive with this Enter (a paste, a macro,
            # tmux) and are typed after it belong to the next message, not to the end of this one.
            self.clear()
        self.post_message(self.Submitted(text))

    def _on_paste(self, event: events.Paste) -> None:
        # Terminals paste line ends as CR; the TextArea's own handler (run next) inserts the text.
        event.text = event.text.replace("\r\n", "\n").replace("\r", "\n")
        if self._search is not None:
            event.stop()
            event.prevent_default()
            self._search.query += event.text.split("\n", 1)[0]
            self._show_search()
        else:
            self._armed = True

    # -- history --------------------------------------------------------------------------------------------

    def _walk_history(self, key: str) -> bool:
        entries = self.prompt_history.entries
        row = self.cursor_location[0]
        if key == "up" and entries and row == 0:
            if self._browse is None:
                self._draft = self.text
                self._recall(len(entries) - 1)
            elif self._browse > 0:
                self._recall(self._browse - 1)
            return True
        if key == "down" and self._browse is not None and row == self.document.line_count - 1:
            self._recall(self._browse + 1 if self._browse + 1 < len(entries) else None)
            return True
        return False

    def _recall(self, index: int | None) -> None:
        self._browse = index
        self._replace_all(self._draft if index is None else self.prompt_history.entries[index])

    def _replace_all(self, text: str) -> None:
        self._armed = False
        self._close_popup()
        self.text = text
        self.move_cursor(self.document.end)

    def _open_search(self) -> None:
        self._search = _Search()
        self._show_search()

    def _show_search(self) -> None:
        search = self._search
        assert search is not None
        rows = [Candidate(text, _one_line(text)) for text in self.prompt_history.search(search.query)]
        self._show_popup(rows, f"history search: {search.query}▏ (Enter picks · Esc cancels)", "no match")

    def _search_key(self, event: events.Key) -> bool:
        search = self._search
        assert search is not None
        key = event.key
        if key in ("escape", "ctrl+g"):
            self._end_search(pick=False)
        elif key in ("enter", "tab") or key in SEARCH_PICK_AND_MOVE:
            self._end_search(pick=True)
            return key in ("enter", "tab")  # the moves go on to the TextArea
        elif key in ("up", "ctrl+r"):
            self.popup.move(1)  # newest first: further down is older
        elif key == "down":
            self.popup.move(-1)
        elif key == "backspace":
            search.query = search.query[:-1]
            self._show_search()
        elif event.is_printable and event.character:
            search.query += event.character
            self._show_search()
        return True

    def _end_search(self, pick: bool) -> None:
        picked = self.popup.current if pick else None
        self._search = None
        self._close_popup()
        if picked is not None:
            self._browse = None
            self._replace_all(picked.insert)

    # -- completion -----------------------------------------------------------------------------------------

    def _popup_key(self, key: str) -> bool:
        if key in ("up", "down"):
            self.popup.move(-1 if key == "up" else 1)
        elif key == "tab":
            self._accept(self.popup.current)
        elif key == "enter":
            token, picked = self._token(), self.popup.current
            if token is None or picked is None or _token_text(self, token) == picked.insert.rstrip():
                self._close_popup()
                return False  # nothing to complete: Enter sends
            self._accept(picked)
        elif key == "escape":
            token = self._token()
            self._dismissed = (token.row, token.start) if token else None
            self._close_popup()
        else:
            return False
        return True

    def _on_text_area_changed(self, _: TextArea.Changed) -> None:
        self._follow_completion()

    def _on_text_area_selection_changed(self, _: TextArea.SelectionChanged) -> None:
        self._follow_completion()

    def on_prompt_input_files_listed(self, event: PromptInput.FilesListed) -> None:
        event.stop()
        self._follow_completion()

    def _token(self) -> Token | None:
        row, column = self.cursor_location
        return find_token(self.document[row], row, column)

    def _follow_completion(self) -> None:
        if not self._armed or self._search is not None:
            return
        token = self._token()
        if token is None or (token.row, token.start) != self._dismissed:
            self._dismissed = None
        if token is None or self._dismissed is not None:
            self._close_popup()
            return
        self._listed_for = (token.row, token.start, _token_text(self, token))
        self._show_popup(self._candidates(token))

    def _catch_up(self) -> None:
        """The list follows the text on the TextArea's Changed messages, which queue behind keys that arrive
        together (a fast typist, a terminal's key macro, tmux): before a key acts on the list, it follows the
        text as it is now, or Enter after `/clear` typed in one go would accept the `/help` listed for `/`."""
        token = self._token()
        if token is None or (token.row, token.start, _token_text(self, token)) != self._listed_for:
            self._follow_completion()

    def _candidates(self, token: Token) -> list[Candidate]:
        if token.kind == "slash":
            return slash_candidates(self.commands(), token.query) if self.commands is not None else []
        if self.files is None:
            return []
        self.files.refresh(self._files_listed)
        return self.files.candidates(token.query)

    def _files_listed(self) -> None:
        """Called from the listing's thread."""
        with suppress(RuntimeError):  # the app's loop is gone: nobody to tell
            self.post_message(self.FilesListed())

    def _accept(self, picked: Candidate | None) -> None:
        token = self._token()
        self._close_popup()
        if token is None or picked is None:
            return
        self._armed = False
        self.replace(picked.insert, (token.row, token.start), (token.row, token.end))
        self.move_cursor((token.row, token.start + len(picked.insert)))

    def _pick(self, index: int) -> None:
        """A click on a row of the list."""
        self.popup.highlighted = index
        if self._search is not None:
            self._end_search(pick=True)
        else:
            self._accept(self.popup.current)
        self.focus()

    def _show_popup(self, rows: list[Candidate], title: str = "", empty: str = "") -> None:
        if not self.popup.is_mounted:
            return  # keys before the first paint still edit the text; the list comes with the next one
        if rows or empty:
            self.popup.show(rows, title, empty)
        else:
            self.popup.hide()

    def _close_popup(self) -> None:
        if self.popup.is_open:
            self.popup.hide()


def _token_text(box: TextArea, token: Token) -> str:
    return box.document[token.row][token.start:token.end]


def _one_line(text: str, width: int = 200) -> str:
    first, _, rest = text.strip().partition("\n")
    line = first[:width]
    return line + (" ⏎…" if rest or len(first) > width else "")
