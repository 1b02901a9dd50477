"""What is made through the kept compiled code — dataclasses, string annotations, regular expressions — behaves as
what Python compiles itself, and a second process compiles nothing it kept."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import typing
import warnings
from dataclasses import InitVar, dataclass, field
from pathlib import Path

import pytest

from ghostline import codecache

REPO = Path(__file__).resolve().parents[1]


def _classes():
    """Every kind of method dataclasses generates: init with defaults, factories, InitVar and post-init; repr;
    eq and order; frozen's setattr/delattr; hash; keyword-only fields; slots."""
    @dataclass(frozen=True, order=True)
    class Point:
        x: int
        y: int = 0
        tags: list = field(default_factory=list, compare=False)

    @dataclass(kw_only=True, slots=True)
    class Config:
        name: str
        scale: InitVar[float] = 1.0
        size: int = field(default=0, repr=False)

        def __post_init__(self, scale: float) -> None:
            self.size = int(self.size * scale)

    return Point, Config


def _behaviour() -> list:
    Point, Config = _classes()
    p, q = Point(1), Point(1, 2, ["t"])
    out = [repr(p), repr(q), p == Point(1, 0, ["other"]), p < q, hash(p) == hash(Point(1)),
           repr(Config(name="a", size=3, scale=2.0)), Config(name="b").size, [f.name for f in dataclasses.fields(Point)],
           repr(Point.__init__.__annotations__), repr(Config.__init__.__annotations__)]
    for attempt in (lambda: setattr(p, "x", 5), lambda: delattr(p, "y"), lambda: Point(),
                    lambda: Config("positional"), lambda: Point(1, z=2)):
        try:
            attempt()
            out.append("no error")
        except Exception as e:  # noqa: BLE001 - the error's kind and text are what is compared
            out.append(f"{type(e).__name__}: {e}")
    return out


def test_classes_behave_as_without_the_cache(tmp_path: Path) -> None:
    codecache.uninstall()
    plain = _behaviour()
    cache = codecache.install(str(tmp_path))
    assert cache is not None and vars(dataclasses)["exec"].cache is cache
    try:
        first = _behaviour()
        compiled = cache.compiled
        again = _behaviour()  # from the cache now: the same texts, nothing compiled
    finally:
        codecache.uninstall()
    assert plain == first == again
    assert compiled > 0 and cache.compiled == compiled


SCRIPT = ("import re, sys; from ghostline import codecache; codecache.WORTH_SAVING_S = float(sys.argv[2]); "
          "c = codecache.install(sys.argv[1]); "
          "from tests.test_codecache import _behaviour, _annotations, _patterns; _behaviour(); _annotations(); "
          "_patterns(); re.compile(sys.argv[3]); print(c.compiled)")


def _compiled_by_a_process(data_dir: Path, worth_saving_s: float = 0.0, pattern: str = "x") -> int:
    """How many texts a process doing `_behaviour`, `_annotations`, `_patterns` and compiling `pattern` compiled."""
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(data_dir), str(worth_saving_s), pattern],
                         env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO, check=True, capture_output=True,
                         text=True)
    return int(out.stdout.split()[-1])


def test_another_process_compiles_only_what_was_not_kept(tmp_path: Path) -> None:
    first = _compiled_by_a_process(tmp_path)
    kept = Path(codecache.cache_path(str(tmp_path)))
    assert first > 0 and kept.exists()
    assert _compiled_by_a_process(tmp_path) == 0  # everything came from the file the first process wrote at exit
    kept.write_bytes(b"not marshal data")
    assert _compiled_by_a_process(tmp_path) == first  # a file that cannot be read: compiled anew, written again
    assert _compiled_by_a_process(tmp_path) == 0


def test_a_process_that_compiled_little_leaves_the_file_alone(tmp_path: Path) -> None:
    _compiled_by_a_process(tmp_path)
    kept = Path(codecache.cache_path(str(tmp_path)))
    before = kept.stat()
    # One pattern of the run's own (a grep the model asked for): far less compiling than writing the file costs.
    assert _compiled_by_a_process(tmp_path, worth_saving_s=1.0, pattern="new (pattern)+") == 1
    assert (kept.stat().st_ino, kept.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert _compiled_by_a_process(tmp_path, worth_saving_s=1.0, pattern="new (pattern)+") == 1  # not kept
    assert _compiled_by_a_process(tmp_path, worth_saving_s=0.0, pattern="new (pattern)+") == 1
    assert _compiled_by_a_process(tmp_path, worth_saving_s=1.0, pattern="new (pattern)+") == 0


def test_not_installed_over_another_exec(tmp_path: Path) -> None:
    codecache.uninstall()
    dataclasses.exec = exec  # type: ignore[attr-defined]  # someone else's
    try:
        assert codecache.install(str(tmp_path)) is None
    finally:
        del dataclasses.exec  # type: ignore[attr-defined]


# Patterns of every shape the compiler handles: groups named and not, flags inline and passed, bytes, classes,
# look-arounds, repeats, back-references, alternations and a large character class (the one ~19 ms pattern).
PATTERNS = [(r"a(?P<x>b)+c", 0), (r"^\s*(\w+)\s*=\s*(.*?)\s*$", re.MULTILINE), (r"(?i)straße|SS", 0),
            (rb"\x00[\x01-\x7f]{2,}", 0), (r"(?<=@)\w+(?!\.)", 0), (r"(a|b)*?\1", re.IGNORECASE),
            (r"""  \d+  # digits
                  (?:\.\d*)?  """, re.VERBOSE), (r"[a-z0-9_\-*/]{0,255}@[a-z][a-z0-9_\-*/]{0,13}", 0),
            (r"(?P<q>['\"]).*?(?P=q)", re.DOTALL), (r"\bx\B", re.ASCII)]
SUBJECT = "key = value\nStraße ss SS me@host. ab aB 3.14 'quoted' \"two\" tenant*id@sys_x x"


def _patterns() -> list:
    re.purge()  # re's own per-process cache would answer before the compiler is asked
    out = []
    for text, flags in PATTERNS:
        p = re.compile(text, flags)
        subject = SUBJECT.encode() if isinstance(text, bytes) else SUBJECT
        out.append((p.pattern, p.flags, p.groups, dict(p.groupindex), p.findall(subject),
                    [m.span() for m in p.finditer(subject)]))
    return out


def _annotations() -> list:
    class Node(typing.TypedDict):
        name: str
        children: list[Node]
        weight: float | None  # strings all (this module has `from __future__ import annotations`)

    hints = typing.get_type_hints(Node, localns={"Node": Node})
    bad = []
    for text in ("1 +", "*tuple[int, str]"):
        try:
            bad.append(repr(typing.ForwardRef(text)))
        except SyntaxError as e:
            bad.append(f"SyntaxError: {e}")
    return [sorted((k, repr(v)) for k, v in hints.items()), bad]


def test_annotations_and_patterns_behave_as_without_the_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(codecache, "WORTH_SAVING_S", 0.0)
    codecache.uninstall()
    plain = (_annotations(), _patterns())
    re.purge()
    programs = [re.compile(text, flags) for text, flags in PATTERNS]
    cache = codecache.install(str(tmp_path))
    try:
        first = (_annotations(), _patterns())
        kinds = {kind: len(cache.table(kind).entries) for kind in ("eval", "re")}
        cache.save()
        fresh = codecache.CodeCache(cache.path)  # what a later process reads back
        assert set(fresh.table("re").entries) >= {(text, flags) for text, flags in PATTERNS}
        vars(dataclasses)["exec"].cache = typing.compile.cache = re._compiler.compile.cache = fresh
        again = (_annotations(), _patterns())
        re.purge()
        from_file = [re.compile(text, flags) for text, flags in PATTERNS]
    finally:
        codecache.uninstall()
    assert plain == first == again
    assert kinds["eval"] >= 3 and kinds["re"] >= len(PATTERNS) and fresh.compiled == 0
    # Patterns compare equal only when their programs are the same, instruction for instruction.
    assert from_file == programs and all(a is not b for a, b in zip(from_file, programs, strict=True))


def test_a_bad_pattern_fails_as_without_the_cache(tmp_path: Path) -> None:
    codecache.uninstall()

    def error(text: str) -> str:
        re.purge()
        with pytest.raises(re.error) as caught:
            re.compile(text)
        return str(caught.value)

    plain = [error(t) for t in ("a(b", "[z-a]", "(?P<1>x)")]
    cache = codecache.install(str(tmp_path))
    try:
        assert [error(t) for t in ("a(b", "[z-a]", "(?P<1>x)")] == plain
    finally:
        codecache.uninstall()
    assert cache is not None and cache.compiled == 0


def test_a_process_keeps_at_most_a_kinds_limit_of_new_entries() -> None:
    table = codecache.Table({"kept": 1}, limit=2)
    for key in ("a", "b", "c"):
        table.put(key, 0, 0.001)
    assert set(table.entries) == {"kept", "a", "b"} and table.added == 2
    assert table.kept() == {"a": 0, "b": 0}  # over the limit: what this process used


def test_a_pattern_the_parser_warns_about_warns_every_time(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(codecache, "WORTH_SAVING_S", 0.0)
    codecache.uninstall()
    cache = codecache.install(str(tmp_path))
    try:
        for _ in range(2):
            re.purge()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                re.compile(r"[[a]--x]")
            assert [type(w.message) for w in caught] == [FutureWarning]  # "Possible nested set"
    finally:
        codecache.uninstall()
    assert cache is not None and "[[a]--x]" not in {text for text, _ in cache.table("re").entries}
