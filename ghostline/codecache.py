"""The compiled code of dataclasses' generated methods, kept in the data dir like a .pyc of generated source.

`@dataclass` writes each class's `__init__`, `__repr__`, `__eq__`, ... as source text and compiles it when the
class is created: Python 3.11 compiles every method on its own, ~0.1 ms each, and an `agent run` creates ~180
dataclasses (ours, pydantic's, the SDKs') before its first request: ~650 compiles, ~40 ms of a cold start. The
code depends on the text alone (the class's globals and defaults are bound when it runs), so `install()` gives
the `dataclasses` module an `exec` of its own that looks the text up in a cache first: loaded from
`<data dir>/cache/` at the first class, written back at exit when this process compiled something new. The file
is per Python build (bytecode differs between versions); a file that cannot be read is compiled anew.
"""

from __future__ import annotations

import atexit
import builtins
import dataclasses
import marshal
import os
import sys
import threading
from types import CodeType

MAX_ENTRIES = 3000  # past this (~3 MB), a save keeps only what this process used: old versions go


class CodeCache:
    """Source text -> code object, for `exec` calls whose text is generated (`exec(source, globals, locals)`)."""

    def __init__(self, path: str):
        self.path = path
        self._codes: dict[str, CodeType] | None = None
        self._used: set[str] = set()
        self._lock = threading.Lock()
        self.compiled = 0  # texts this process compiled: 0 once the cache holds every class it creates

    def exec(self, source: object, globals: dict | None = None, locals: dict | None = None, /) -> None:
        if not isinstance(source, str) or globals is None:  # not generated text, or the caller's own globals
            return builtins.exec(source, sys._getframe(1).f_globals if globals is None else globals, locals)
        codes = self._load()
        code = codes.get(source)
        if type(code) is not CodeType:
            # The flags `dataclasses` compiles with: it has no __future__ imports (this module has).
            code = codes[source] = compile(source, "<string>", "exec", dont_inherit=True)
            self.compiled += 1
        self._used.add(source)
        return builtins.exec(code, globals, locals)

    def _load(self) -> dict[str, CodeType]:
        if self._codes is None:
            with self._lock:
                if self._codes is None:
                    self._codes = _read(self.path)
        return self._codes

    def save(self) -> None:
        """Write the cache back if this process compiled anything (quietly nothing when it cannot)."""
        if not self.compiled or self._codes is None:
            return
        codes = dict(self._codes)
        if len(codes) > MAX_ENTRIES:
            codes = {k: v for k, v in codes.items() if k in self._used}
        from ghostline.files import replace_file  # at exit only, and only after something new

        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            replace_file(self.path, [marshal.dumps(codes)], 0o600)
        except (OSError, ValueError):  # a read-only data dir; a code object marshal cannot write
            return
        self.compiled = 0


def _read(path: str) -> dict[str, CodeType]:
    try:
        with open(path, "rb") as f:
            codes = marshal.load(f)
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    return codes if isinstance(codes, dict) else {}


def cache_path(data_dir: str) -> str:
    build = f"{sys.implementation.cache_tag}-{sys.hexversion:x}"
    return os.path.join(data_dir, "cache", f"dataclass-code-{build}.marshal")


def install(data_dir: str) -> CodeCache | None:
    """Give `dataclasses` the caching `exec` (once per process), saved at exit; None when something else
    already replaced its `exec`."""
    current = vars(dataclasses).get("exec")
    if isinstance(getattr(current, "__self__", None), CodeCache):
        return current.__self__
    if current is not None:
        return None
    cache = CodeCache(cache_path(data_dir))
    dataclasses.exec = cache.exec  # type: ignore[attr-defined]  # a module global: shadows the builtin there only
    atexit.register(cache.save)
    return cache


def uninstall() -> None:
    """Back to the builtin (tests)."""
    current = vars(dataclasses).get("exec")
    if isinstance(getattr(current, "__self__", None), CodeCache):
        atexit.unregister(current.__self__.save)
        del dataclasses.exec  # type: ignore[attr-defined]
