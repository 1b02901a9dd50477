"""A value computed in a thread from now on, for work that overlaps the rest of a run: the git status before a
run (it overlaps the first model call), the report counted while the model answers, the TLS context built
while the SDK imports (loading the CA store releases the GIL: it runs on another core)."""

from __future__ import annotations

import threading
from typing import Any


class Later:
    """`fn(*args)` started in a daemon thread; `get()` waits for its value, or raises what it raised."""

    def __init__(self, fn: Any, *args: Any, name: str | None = None) -> None:
        self._result: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn, *args), daemon=True, name=name)
        self._thread.start()

    def _run(self, fn: Any, *args: Any) -> None:
        try:
            self._result = fn(*args)
        except BaseException as e:  # noqa: BLE001 - handed to the caller of get()
            self._error = e

    def get(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result
