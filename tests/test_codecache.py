"""Dataclasses made through the kept compiled code behave as the ones dataclasses compiles itself, and a second
process compiles nothing it kept."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from dataclasses import InitVar, dataclass, field
from pathlib import Path

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
    assert cache is not None and vars(dataclasses)["exec"].__self__ is cache
    try:
        first = _behaviour()
        compiled = cache.compiled
        again = _behaviour()  # from the cache now: the same texts, nothing compiled
    finally:
        codecache.uninstall()
    assert plain == first == again
    assert compiled > 0 and cache.compiled == compiled


def test_another_process_compiles_only_what_was_not_kept(tmp_path: Path) -> None:
    script = ("import sys; from ghostline import codecache; c = codecache.install(sys.argv[1]); "
              "from tests.test_codecache import _behaviour; _behaviour(); print(c.compiled)")
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def compiled() -> int:
        out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, cwd=REPO, check=True,
                             capture_output=True, text=True)
        return int(out.stdout.split()[-1])

    first = compiled()
    kept = Path(codecache.cache_path(str(tmp_path)))
    assert first > 0 and kept.exists()
    assert compiled() == 0  # every method came from the file the first process wrote at exit
    kept.write_bytes(b"not marshal data")
    assert compiled() == first  # a file that cannot be read: compiled anew (and written again)
    assert compiled() == 0


def test_not_installed_over_another_exec(tmp_path: Path) -> None:
    codecache.uninstall()
    dataclasses.exec = exec  # type: ignore[attr-defined]  # someone else's
    try:
        assert codecache.install(str(tmp_path)) is None
    finally:
        del dataclasses.exec  # type: ignore[attr-defined]
