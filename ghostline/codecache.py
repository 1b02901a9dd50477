"""What Python compiles anew on every start from the same text, kept in the data dir as a .pyc keeps a module.

Before its first request a cold `agent run` compiles three kinds of text that are the same every time:

* `dataclasses`' methods: each class's `__init__`, `__repr__`, ... is written as source and compiled (Python 3.11
  compiles each method alone): ~650 per start, ~40 ms;
* string annotations: `typing.ForwardRef` compiles each one (pydantic-core's and the SDKs' TypedDicts, typer
  reading the commands' signatures): ~1,700 per start, ~12 ms;
* regular expressions: `re` parses each pattern and generates its program: ~170 per start, ~30 ms (19 of them
  for the W3C trace-state key pattern of opentelemetry, which the Anthropic SDK imports).

What compiling gives depends on the text alone (a class's globals, an annotation's namespace, the string a
pattern matches are bound later), so `install()` puts a look-up in front of each compile: `dataclasses` and
`typing` get a module global (`exec`, `compile`) that shadows the builtin in that module only, and `re` its
compiler's entry point. The results are read from `<data dir>/cache/` at their first use and written back at
exit when this process compiled something new. The file is per Python build (bytecode and regex programs differ
between versions); a file that cannot be read is compiled anew.
"""

from __future__ import annotations

import atexit
import builtins
import dataclasses
import marshal
import os
import re
import sys
import threading
import types
import typing
from time import perf_counter
from types import CodeType
from typing import Any

# Past its limit a kind keeps only what the saving process used (old versions' entries go): ~3 MB in all.
LIMITS = {"exec": 3000, "eval": 10000, "re": 2000}
# Written back only when what this process compiled anew took longer than writing the file does (a few ms, at
# exit): a first start or a new version, not a run that compiled the model's grep pattern.
WORTH_SAVING_S = 0.005
_re_compiler: Any = re._compiler  # type: ignore[attr-defined]  # the stdlib's own module since 3.11


class Table:
    """One kind's kept results: text -> what compiling it gave."""

    def __init__(self, entries: dict, limit: int):
        self.entries = entries
        self.limit = limit
        self.used: set = set()
        self.added = 0  # compiled by this process, not yet saved
        self.added_s = 0.0  # the time that took

    def get(self, key: Any) -> Any:
        value = self.entries.get(key)
        if value is not None:
            self.used.add(key)
        return value

    def put(self, key: Any, value: Any, took_s: float) -> None:
        if self.added >= self.limit:  # a long session's own patterns (globs, greps): memory stays bounded
            return
        self.entries[key] = value
        self.used.add(key)
        self.added += 1
        self.added_s += took_s

    def kept(self) -> dict:
        entries = dict(self.entries)  # one step under the GIL: another thread may be adding
        if len(entries) <= self.limit:
            return entries
        return {k: v for k, v in entries.items() if k in self.used}


class CodeCache:
    """The kinds' tables, read from one file at the first look-up and written back by `save()`."""

    def __init__(self, path: str):
        self.path = path
        self._tables: dict[str, Table] | None = None
        self._lock = threading.Lock()

    def table(self, kind: str) -> Table:
        tables = self._tables
        if tables is None:
            with self._lock:
                if self._tables is None:
                    self._tables = _read(self.path)
                tables = self._tables
        return tables[kind]

    def code(self, source: str, mode: str) -> CodeType:
        """`source` compiled in `mode` ("exec" or "eval", each a table of its own) with no __future__ flags: the
        kept code, or compiled now and kept. A SyntaxError is the caller's to word."""
        table = self.table(mode)
        code = table.get(source)
        if type(code) is not CodeType:
            start = perf_counter()
            code = compile(source, "<string>", mode, dont_inherit=True)  # this module's __future__ flags left out
            table.put(source, code, perf_counter() - start)
        return code

    @property
    def compiled(self) -> int:
        """Texts this process compiled and has not saved: 0 once the file holds everything it used."""
        return sum(t.added for t in self._tables.values()) if self._tables else 0

    def save(self) -> None:
        """Write the tables back if compiling what this process added took long enough to be worth it (quietly
        nothing when it cannot)."""
        if self._tables is None or sum(t.added_s for t in self._tables.values()) < WORTH_SAVING_S:
            return
        from ghostline.files import replace_file  # at exit only, and only after something new

        try:
            blob = marshal.dumps({kind: table.kept() for kind, table in self._tables.items()})
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            replace_file(self.path, [blob], 0o600)
        except (OSError, ValueError):  # a read-only data dir; something marshal cannot write
            return
        for table in self._tables.values():
            table.added, table.added_s = 0, 0.0


def _read(path: str) -> dict[str, Table]:
    try:
        with open(path, "rb") as f:
            kept = marshal.loads(f.read())  # not marshal.load(f): that reads the file an object at a time (~5x)
    except (OSError, EOFError, ValueError, TypeError):
        kept = {}
    if not isinstance(kept, dict):
        kept = {}
    return {kind: Table(kept[kind] if isinstance(kept.get(kind), dict) else {}, limit)
            for kind, limit in LIMITS.items()}


# -- the three look-ups ----------------------------------------------------------------------------------------

class DataclassExec:
    """`exec` as `dataclasses` calls it: `exec(generated_source, globals, namespace)`."""

    def __init__(self, cache: CodeCache):
        self.cache = cache

    def __call__(self, source: object, globals: dict | None = None, locals: dict | None = None, /) -> None:
        if not isinstance(source, str) or globals is None:  # not generated text, or the caller's own globals
            return builtins.exec(source, sys._getframe(1).f_globals if globals is None else globals, locals)
        return builtins.exec(self.cache.code(source, "exec"), globals, locals)  # `dataclasses` has no __future__


class AnnotationCompile:
    """`compile` as `typing` calls it: a ForwardRef's expression, `compile(text, "<string>", "eval")`."""

    def __init__(self, cache: CodeCache):
        self.cache = cache

    def __call__(self, source: Any, filename: Any, mode: str, flags: int = 0, dont_inherit: bool = False,
                 optimize: int = -1, **kwargs: Any) -> Any:
        # dont_inherit: `typing` has no __future__ imports, this module has.
        if type(source) is not str or filename != "<string>" or mode != "eval" or flags or optimize != -1 or kwargs:
            return compile(source, filename, mode, flags, True, optimize, **kwargs)
        return self.cache.code(source, "eval")


class RegexCompile:
    """`re._compiler.compile(pattern, flags)`: a pattern's program is looked up, its parse and code generation
    skipped. What the real compiler hands `_sre.compile` (final flags, program, groups, group names) is what is
    kept: the compiler sees a copy of the `_sre` module whose `compile` notes its arguments."""

    def __init__(self, cache: CodeCache):
        self.cache = cache
        self.real = _re_compiler.compile
        self.sre = _re_compiler._sre
        self.noting_sre = types.ModuleType(self.sre.__name__)
        vars(self.noting_sre).update(vars(self.sre))
        self.noting_sre.compile = self._note  # type: ignore[attr-defined]
        self._noted = threading.local()

    def __call__(self, pattern: Any, flags: int = 0) -> Any:
        if type(pattern) not in (str, bytes) or type(flags) is not int or flags & re.DEBUG or _may_warn(pattern):
            return self.real(pattern, flags)  # a parsed pattern (re.Scanner), one that prints its program or warns
        table = self.cache.table("re")
        key = (pattern, flags)
        args = table.get(key)
        if args is not None:
            return self.sre.compile(pattern, *args)
        self._noted.args = None
        start = perf_counter()
        compiled = self.real(pattern, flags)
        if self._noted.args is not None:
            table.put(key, self._noted.args, perf_counter() - start)
        return compiled

    def _note(self, pattern: Any, *args: Any) -> Any:
        # The program's opcodes are int subclasses (named constants): kept as the ints _sre reads them as.
        try:
            plain = tuple([int(v) for v in arg] if type(arg) is list else arg for arg in args)
            marshal.dumps(plain)  # kept only if the file can hold it
            self._noted.args = plain
        except (TypeError, ValueError):
            pass
        return self.sre.compile(pattern, *args)


# What the parser warns about (FutureWarning: a set inside a set, set operations; DeprecationWarning: a group
# name that is not ASCII, a conditional group's reference) happens only while parsing: such patterns are always
# compiled, so their warnings come as without the cache. Their texts contain one of these.
_WARNING_MARKS = ("[[", "--", "&&", "~~", "||", "(?(")


def _may_warn(pattern: str | bytes) -> bool:
    if isinstance(pattern, bytes):
        return not pattern.isascii() or any(mark.encode() in pattern for mark in _WARNING_MARKS)
    return any(mark in pattern for mark in _WARNING_MARKS)


def cache_path(data_dir: str) -> str:
    build = f"{sys.implementation.cache_tag}-{sys.hexversion:x}"
    return os.path.join(data_dir, "cache", f"compiled-{build}.marshal")


def install(data_dir: str) -> CodeCache | None:
    """The look-ups in front of the three compiles (once per process), saved at exit; None when something else
    already replaced `dataclasses`' exec."""
    current = vars(dataclasses).get("exec")
    if isinstance(current, DataclassExec):
        return current.cache
    if current is not None:
        return None
    cache = CodeCache(cache_path(data_dir))
    dataclasses.exec = DataclassExec(cache)  # type: ignore[attr-defined]  # shadows the builtin there only
    if "compile" not in vars(typing):
        typing.compile = AnnotationCompile(cache)  # type: ignore[attr-defined]
    if type(_re_compiler.compile) is types.FunctionType:
        regex = RegexCompile(cache)
        _re_compiler._sre, _re_compiler.compile = regex.noting_sre, regex
    atexit.register(cache.save)
    return cache


def uninstall() -> None:
    """Back to the builtins (tests)."""
    current = vars(dataclasses).get("exec")
    if not isinstance(current, DataclassExec):
        return
    atexit.unregister(current.cache.save)
    del dataclasses.exec  # type: ignore[attr-defined]
    if isinstance(vars(typing).get("compile"), AnnotationCompile):
        del typing.compile  # type: ignore[attr-defined]
    if isinstance(_re_compiler.compile, RegexCompile):
        _re_compiler._sre, _re_compiler.compile = _re_compiler.compile.sre, _re_compiler.compile.real
