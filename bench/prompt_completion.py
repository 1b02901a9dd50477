"""`@path` completion in the input box on a large repository: listing time and per-keystroke match time.

    .venv/bin/python bench/prompt_completion.py              # 20,000 files
    .venv/bin/python bench/prompt_completion.py --files 50000

A synthetic repository (seeded, so the same tree every run) of FILES files under nested package directories,
plus an ignored build/ tree, is written to a temporary directory. Rows: the file list (the repository walker,
then the matcher's tables: done once in a thread, then reused), and queries as a user types them: each prefix
of a name (the matcher narrows from the previous survivors), fresh queries (a path fragment, a scattered
abbreviation, a typo), and the empty query. Times: median and worst of --repeat runs, wall clock and CPU time
of the matching thread (load-independent). Target: a query under 20 ms once the list is built.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from ghostline.agent.tui.completion import PathMatcher, list_repo_files  # noqa: E402

WORDS = ("core util model view parser lexer config client server cache index query store event handler "
         "render widget session token stream worker queue policy sandbox tool agent daemon engine format "
         "schema migrate backend frontend plugin loader report metric trace logger auth user admin api").split()
EXTS = (".py", ".py", ".py", ".ts", ".md", ".json", ".rs", ".go")


def make_repo(root: Path, files: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    made = 0
    while made < files:
        depth = rng.randint(1, 5)
        parts = [f"{rng.choice(WORDS)}_{rng.randint(0, 40)}" if i == 0 else rng.choice(WORDS) for i in range(depth)]
        name = "_".join(rng.sample(WORDS, rng.randint(1, 3))) + rng.choice(EXTS)
        path = root.joinpath(*parts, name)
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x\n")
        made += 1
    (root / "build" / "gen").mkdir(parents=True)
    for i in range(2000):
        (root / "build" / "gen" / f"generated_{i}.py").write_text("x\n")
    (root / ".gitignore").write_text("build/\n")
    (root / ".git").mkdir()


def timed(fn, repeat: int, setup=lambda: None) -> tuple[float, float, float, object]:
    """Median and worst wall time, median CPU time (ms) of fn(setup()), setup not timed; fn's last result."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        state = setup()
        w, c = time.perf_counter(), time.thread_time()
        result = fn(state)
        cpus.append(time.thread_time() - c)
        walls.append(time.perf_counter() - w)
    return statistics.median(walls) * 1000, max(walls) * 1000, statistics.median(cpus) * 1000, result


def typing_rows(paths: list[str], repeat: int) -> list[dict]:
    rows = []
    word = "session_token"
    for n in range(1, len(word) + 1):  # each keystroke narrows the previous query's survivors
        def after_previous_keystroke(n: int = n) -> PathMatcher:
            m = PathMatcher(paths)
            m.match(word[: n - 1])
            return m
        p50, worst, cpu, hits = timed(lambda m, n=n: m.match(word[:n]), repeat, after_previous_keystroke)
        rows.append({"query": word[:n], "kind": "typing", "ms": p50, "worst_ms": worst, "cpu_ms": cpu,
                     "hits": len(hits), "first": hits[0] if hits else ""})
    for query, kind in (("", "empty"), ("s", "fresh"), ("render/widget", "fresh"), ("qhdlr", "fresh"),
                        ("sesion_tokn", "fresh (typo)"), ("zzzzqqq", "fresh (nothing)")):
        p50, worst, cpu, hits = timed(lambda m, q=query: m.match(q), repeat, lambda: PathMatcher(paths))
        rows.append({"query": query, "kind": kind, "ms": p50, "worst_ms": worst, "cpu_ms": cpu,
                     "hits": len(hits), "first": hits[0] if hits else ""})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_repo(root, args.files)
        list_ms, _, list_cpu, paths = timed(lambda _: list_repo_files(root), 3)
        table_ms, _, _, _ = timed(lambda _: PathMatcher(paths), 3)
    assert isinstance(paths, list) and not any(p.startswith("build/") for p in paths)
    rows = typing_rows(paths, args.repeat)
    print(f"files listed: {len(paths):,} (build/ ignored)   walk {list_ms:.0f} ms (cpu {list_cpu:.0f} ms)   "
          f"matcher tables {table_ms:.1f} ms")
    print(f"{'query':<16} {'kind':<16} {'median ms':>9} {'worst ms':>9} {'cpu ms':>7} {'hits':>5}  first")
    for r in rows:
        print(f"{r['query']!r:<16} {r['kind']:<16} {r['ms']:9.2f} {r['worst_ms']:9.2f} {r['cpu_ms']:7.2f} "
              f"{r['hits']:5d}  {r['first']}")
    worst = max(r["ms"] for r in rows)
    print(f"slowest median: {worst:.2f} ms (target < 20 ms)")
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "prompt_completion.json").write_text(json.dumps(
        {"files": len(paths), "walk_ms": list_ms, "walk_cpu_ms": list_cpu, "matcher_tables_ms": table_ms,
         "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
