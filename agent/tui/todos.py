"""The todo checklist above the input: the model's latest todo list (from `todo_list` events, or a resumed
session's last one), shown while something on it is left to do."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

MAX_SHOWN = 10
MARK = {"completed": ("☑", "dim strike"), "in_progress": ("◐", "bold"), "pending": ("☐", "")}


def checklist_text(items: list[dict[str, Any]]) -> Text:
    """The list as the panel shows it: a header with the count, then one line per item (the item being worked
    on in bold, by its `activeForm` when the model gave one; at most MAX_SHOWN, the rest counted)."""
    done = sum(1 for i in items if i.get("status") == "completed")
    text = Text(f"Todo {done}/{len(items)}", style="bold")
    start = next((n for n, i in enumerate(items) if i.get("status") != "completed"), 0)
    start = max(0, min(start, len(items) - MAX_SHOWN))  # keep the first open item in view
    for item in items[start:start + MAX_SHOWN]:
        mark, style = MARK.get(str(item.get("status")), MARK["pending"])
        words = item.get("activeForm") if item.get("status") == "in_progress" else None
        text.append(f"\n{mark} {words or item.get('content', '')}", style=style)
    hidden = len(items) - MAX_SHOWN
    if hidden > 0:
        text.append(f"\n… {hidden} more", style="dim")
    return text


class TodoPanel(Static):
    DEFAULT_CSS = """
    TodoPanel { height: auto; padding: 0 1; margin: 0 1; border-left: thick $accent; display: none; }
    TodoPanel.shown { display: block; }
    """

    def __init__(self, **kw: Any) -> None:
        super().__init__("", **kw)
        self.items: list[dict[str, Any]] = []

    def show_items(self, items: list[dict[str, Any]]) -> None:
        """Show this list; hidden when it is empty or every item is done."""
        self.items = list(items)
        open_items = any(i.get("status") != "completed" for i in self.items)
        self.set_class(open_items, "shown")
        self.update(checklist_text(self.items) if self.items else "")
