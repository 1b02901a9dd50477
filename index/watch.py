"""Following a repository's file changes (watchfiles) and refreshing the index for them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ghostline.index.refresh import RefreshStats
from ghostline.index.walker import relative_path

_NEVER_WATCHED = (".git", ".ghostline")  # top-level directories whose churn is never the repository's content


def watch(root: Path, refresh: Callable[[list[str]], RefreshStats], stop_event: threading.Event | None = None,
          on_refresh: Callable[[RefreshStats], None] | None = None, debounce_ms: int = 200) -> None:
    """Blocking: call refresh(changed paths) for each debounced batch of changes under root until stop_event
    is set; on_refresh(stats) after each refresh that changed the index."""
    from watchfiles import watch as watch_changes  # its Rust extension loads only for a watcher

    def wanted(_change: Any, path: str) -> bool:
        rel = relative_path(root, path)
        if rel is None:
            return False
        parts = rel.split("/")
        return not (parts[0] in _NEVER_WATCHED or "__pycache__" in parts)

    for changes in watch_changes(root, stop_event=stop_event, debounce=debounce_ms, watch_filter=wanted,
                                 raise_interrupt=False):
        stats = refresh(sorted({p for _, p in changes}))
        if on_refresh is not None and stats.touched:
            on_refresh(stats)
