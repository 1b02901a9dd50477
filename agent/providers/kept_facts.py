"""What a cold start works out from an SDK's source files, kept in the data dir for the next run while the file
is as it was (same path, size and modification time).

Reading the SDK's largest files costs a cold start tens of milliseconds: parsing `anthropic/_base_client.py`
to see which names can be deferred (sdk_defer.py), scanning the ~1,900 lines of `anthropic/types/beta/__init__`
for what it re-exports (sdk_import.py). Each kind of fact has its own JSON file under `<data dir>/cache/`, and a
version: a change of the rules that produced the facts makes the kept ones stale.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from ghostline.dirs import data_dir
from ghostline.files import replace_file


class KeptFacts:
    """`get(key, path, rules)` is what `put(key, path, rules, value)` kept, if `path` and `rules` (anything JSON
    can hold that the facts depend on besides the file) are unchanged; else None. Values come back as JSON
    gives them (a tuple as a list)."""

    def __init__(self, name: str, version: int):
        self.name, self.version = name, version
        self._kept: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def get(self, key: str, path: str, rules: Any = None) -> Any | None:
        stamp = self._stamp(path, rules)
        with self._lock:
            entry = self._load().get(key)
        if stamp is None or not isinstance(entry, dict) or entry.get("stamp") != stamp:
            return None
        return entry.get("value")

    def put(self, key: str, path: str, rules: Any, value: Any) -> None:
        """Keep `value` for the next run (quietly nothing when the data dir cannot be written)."""
        stamp = self._stamp(path, rules)
        if stamp is None:
            return
        with self._lock:
            kept = {**self._load(), key: {"stamp": stamp, "value": value}}
            where = self._path()
            try:
                os.makedirs(os.path.dirname(where), exist_ok=True)
                replace_file(where, [json.dumps(kept).encode()], 0o600)
            except OSError:
                return
            self._kept = kept

    def _stamp(self, path: str, rules: Any) -> list[Any] | None:
        try:
            st = os.stat(path)
        except (OSError, TypeError):
            return None
        # through JSON, as a kept stamp comes back (tuples become lists)
        return json.loads(json.dumps([self.version, rules, path, st.st_size, st.st_mtime_ns]))

    def _path(self) -> str:
        return os.path.join(data_dir(), "cache", f"{self.name}.json")

    def _load(self) -> dict[str, Any]:
        if self._kept is None:
            try:
                with open(self._path(), encoding="utf-8") as f:
                    loaded = json.load(f)
                self._kept = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):  # none yet, or unreadable: worked out again
                self._kept = {}
        return self._kept
