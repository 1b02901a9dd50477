"""Benchmark of the repository index (index/): build, refresh, query latency, size and recall@5.

    .venv/bin/python bench/index_bench.py            # full run (a few minutes on 2 CPU cores)
    .venv/bin/python bench/index_bench.py --quick    # tiny corpus, seconds (smoke test)

Corpus: source trees of installed packages copied to bench/.cache/corpus/ (> 2,000 files for the full run).
Query set, built from the corpus itself before indexing:
  * docstring -> function: the first sentence of a sampled Python function's docstring; that docstring is
    removed from the corpus copy (otherwise the query is found verbatim, which measures nothing);
  * identifier -> definition: the name of a sampled function/class whose name is defined only once.
A query is a hit when a top-5 result covers the target definition's first line.

Two indexes, because embedding all ~30k chunks of the full corpus takes tens of minutes on 2 CPU cores:
  A. the full corpus, lexical-only: cold build, refresh after touching one file, lexical latency, size,
     lexical recall;
  B. a sub-corpus embedded completely (bounded by --dense-packages): embedding throughput, the same
     timings with embeddings on, and recall@5 for lexical / dense / hybrid on its own query set.
Baselines measured in the same run: the cold build for the refresh ratio; ripgrep (`rg -F -l`) over the
same files for the lexical latency ratio; and, when the `bm25s` package is importable (it is not a
dependency: `pip install --target DIR bm25s` and put DIR on PYTHONPATH), bm25s over the same tokens as the
alternative BM25 store.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FULL_PACKAGES = ["rich", "textual", "sentence_transformers", "hypothesis", "pygments", "click", "httpx", "typer",
                 "numpy", "torch/_inductor"]
DENSE_PACKAGES = ["rich", "click", "httpx", "typer"]
QUICK_PACKAGES = ["click"]


def site_packages() -> Path:
    import click

    return Path(click.__file__).resolve().parent.parent


def copy_corpus(dest: Path, packages: list[str]) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    sp = site_packages()
    for pkg in packages:
        src = sp / pkg
        shutil.copytree(src, dest / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd", "*.dll"))
    subprocess.run(["git", "init", "-q", str(dest)], check=False)
    return dest


def _first_sentence(doc: str) -> str:
    para = doc.strip().split("\n\n")[0]
    text = " ".join(para.split())
    for stop in (". ", ".\n"):
        if stop in text:
            text = text.split(stop)[0]
    return text.rstrip(".")


def build_queries(corpus: Path, n_doc: int, n_ident: int, seed: int = 0) -> list[dict]:
    """Sample queries; strip the sampled docstrings from the corpus copy."""
    defs: dict[str, list[tuple[str, int]]] = {}
    doc_candidates: list[tuple[str, int, int, int, str]] = []  # path, def line, doc start, doc end, query
    for path in sorted(corpus.rglob("*.py")):
        rel = path.relative_to(corpus).as_posix()
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                line = node.decorator_list[0].lineno if node.decorator_list else node.lineno
                defs.setdefault(node.name, []).append((rel, node.lineno))
                doc = ast.get_docstring(node)
                body = node.body
                if (doc and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and len(body) > 1
                        and isinstance(body[0], ast.Expr)):
                    q = _first_sentence(doc)
                    if 4 <= len(q.split()) <= 30 and not q.lower().startswith(("see ", "alias", "deprecated")):
                        doc_candidates.append((rel, line, body[0].lineno, body[0].end_lineno or body[0].lineno, q))
    rng = random.Random(seed)
    doc_sample = rng.sample(doc_candidates, min(n_doc, len(doc_candidates)))
    unique = [(name, locs[0]) for name, locs in sorted(defs.items())
              if len(locs) == 1 and len(name) >= 8 and not name.startswith("test")]
    ident_sample = rng.sample(unique, min(n_ident, len(unique)))
    # remove the sampled docstrings (bottom-up per file so line numbers of earlier ones stay valid)
    by_file: dict[str, list[tuple[int, int, int, str]]] = {}
    for rel, line, s, e, q in doc_sample:
        by_file.setdefault(rel, []).append((line, s, e, q))
    queries: list[dict] = []
    for rel, items in by_file.items():
        path = corpus / rel
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        removed_before: list[tuple[int, int]] = []
        for _line, s, e, _q in sorted(items, key=lambda t: -t[1]):
            del lines[s - 1 : e]
            removed_before.append((s, e - s + 1))
        path.write_text("".join(lines), encoding="utf-8")
        for line, _s, _e, q in items:
            shift = sum(n for s, n in removed_before if s < line)
            queries.append({"kind": "docstring", "query": q, "path": rel, "line": line - shift})
    ident_names = {name for name, _ in ident_sample}
    for name, (rel, line) in ident_sample:
        # definitions in files whose docstrings moved: recompute the line from the edited file
        if rel in by_file:
            try:
                tree = ast.parse((corpus / rel).read_text(encoding="utf-8"))
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if getattr(node, "name", None) == name and name in ident_names:
                    line = node.lineno
                    break
        queries.append({"kind": "identifier", "query": name, "path": rel, "line": line})
    queries.sort(key=lambda q: (q["kind"], q["path"], q["line"]))
    return queries


def recall_at(idx, queries: list[dict], mode: str, k: int = 5) -> dict[str, float]:
    hits: dict[str, list[int]] = {}
    for q in queries:
        res = idx.search(q["query"], k=k, mode=mode)
        ok = any(h.path == q["path"] and h.start_line <= q["line"] <= h.end_line for h in res)
        hits.setdefault(q["kind"], []).append(int(ok))
        hits.setdefault("all", []).append(int(ok))
    return {kind: sum(v) / len(v) for kind, v in hits.items()}


def latency(idx, queries: list[dict], mode: str, repeat: int = 1) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        for q in queries:
            t = time.perf_counter()
            idx.search(q["query"], k=10, mode=mode)
            times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"p50_ms": statistics.median(times), "p95_ms": times[int(0.95 * (len(times) - 1))], "n": len(times)}


def rg_latency(corpus: Path, queries: list[dict]) -> dict[str, float] | None:
    rg = shutil.which("rg")
    if rg is None:
        return None
    times = []
    for q in queries:
        if q["kind"] != "identifier":
            continue
        t = time.perf_counter()
        subprocess.run([rg, "-F", "-l", q["query"], str(corpus)], capture_output=True, check=False)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"p50_ms": statistics.median(times), "p95_ms": times[int(0.95 * (len(times) - 1))], "n": len(times)}


def compare_bm25s(index_db: Path, queries: list[dict]) -> dict | None:
    """The same identifier-aware tokens in bm25s (in-memory, numpy) instead of FTS5: build time, query
    latency and recall@5. None when bm25s is not importable (it is not a dependency)."""
    try:
        import bm25s
    except ImportError:
        return None
    import sqlite3

    from ghostline.index import tokens as tok

    conn = sqlite3.connect(f"file:{index_db}?mode=ro", uri=True)
    rows = conn.execute("SELECT path, start_line, end_line, symbol, text FROM chunks ORDER BY id").fetchall()
    conn.close()
    t = time.perf_counter()
    docs = [tok.identifier_tokens(f"{p} {sym or ''} {sym or ''} {text}") or ["_"] for p, _s, _e, sym, text in rows]
    retriever = bm25s.BM25()
    retriever.index(docs, show_progress=False)
    build_s = time.perf_counter() - t
    times, hits = [], []
    for q in queries:
        terms = tok.query_terms(q["query"]) or ["_"]
        t = time.perf_counter()
        res = retriever.retrieve([terms], k=10, show_progress=False)
        times.append((time.perf_counter() - t) * 1000)
        top = [rows[int(i)] for i in res.documents[0][:5]]
        hits.append(any(r[0] == q["path"] and r[1] <= q["line"] <= r[2] for r in top))
    times.sort()
    return {"build_s": build_s, "p50_ms": statistics.median(times), "p95_ms": times[int(0.95 * (len(times) - 1))],
            "recall@5": sum(hits) / len(hits), "version": getattr(bm25s, "__version__", "?")}


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def touch_one(corpus: Path, rel: str) -> None:
    p = corpus / rel
    p.write_text(p.read_text(encoding="utf-8") + "\n# touched by the benchmark\n", encoding="utf-8")


def run_index(name: str, corpus: Path, queries: list[dict], embeddings: str, touch: str,
              modes: list[str], reuse: bool = False) -> dict:
    from ghostline.index import RepoIndex

    index_dir = corpus.parent / f"{name}-index"
    reused = reuse and (index_dir / "index.db").exists()
    if index_dir.exists() and not reused:
        shutil.rmtree(index_dir)
    out: dict = {"corpus": str(corpus), "reused_index": reused}
    t = time.perf_counter()
    idx = RepoIndex.open(corpus, embeddings=embeddings, index_dir=index_dir)  # type: ignore[arg-type]
    out["open_s"] = time.perf_counter() - t  # includes loading the embedding model when embeddings="on"
    t = time.perf_counter()
    stats = idx.refresh(embed=False)
    out["cold_index_s"] = time.perf_counter() - t
    out["files"] = stats.scanned
    if embeddings == "on":
        t = time.perf_counter()
        est = idx.refresh()
        out["embed_s"] = time.perf_counter() - t
        out["embedded_chunks"] = est.embedded
        out["embed_chunks_per_s"] = est.embedded / out["embed_s"] if out["embed_s"] else 0.0
    out["cold_build_s"] = out["cold_index_s"] + out.get("embed_s", 0.0)
    st = idx.status()
    out["chunks"], out["symbols"], out["indexed_files"] = st.chunks, st.symbols, st.files
    t = time.perf_counter()
    idx.refresh()
    out["noop_refresh_s"] = time.perf_counter() - t
    touch_one(corpus, touch)
    t = time.perf_counter()
    rs = idx.refresh(embed=False)
    out["refresh_one_file_s"] = time.perf_counter() - t  # re-hash, re-chunk, BM25/symbols: search sees it
    out["refresh_reused_vectors"] = rs.embeddings_reused
    if embeddings == "on":
        t = time.perf_counter()
        rs = idx.refresh()
        out["refresh_embed_s"] = time.perf_counter() - t  # then its changed chunks are embedded
        out["refresh_one_file_with_embed_s"] = out["refresh_one_file_s"] + out["refresh_embed_s"]
        out["refresh_reembedded"] = rs.embedded
    out["size_open_mb"] = dir_size(index_dir) / 1e6  # while open: the database plus its write-ahead log
    out["latency"] = {}
    out["recall@5"] = {}
    emb = idx._embeddings.model
    if emb is not None:  # the query embedding alone (uncached), the floor of dense and hybrid latency
        times = []
        for q in queries:
            t = time.perf_counter()
            emb.encode([q["query"]], batch_size=1)
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        out["query_embed_ms"] = {"p50_ms": statistics.median(times), "p95_ms": times[int(0.95 * (len(times) - 1))]}
    for mode in modes:
        idx.search("warm up query", k=10, mode=mode)
        if emb is not None:
            emb.clear_query_cache()  # every mode pays for its own query embeddings
        out["latency"][mode] = latency(idx, queries, mode)
        out["recall@5"][mode] = recall_at(idx, queries, mode)
    idx.close()
    out["size_mb"] = dir_size(index_dir) / 1e6  # closed: the log is checkpointed into the database
    out["source_mb"] = dir_size(corpus) / 1e6
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny corpus, seconds: a smoke test")
    ap.add_argument("--queries", type=int, default=100, help="queries of each kind per corpus (default 100)")
    ap.add_argument("--dense-packages", default=",".join(DENSE_PACKAGES),
                    help="packages of the fully embedded sub-corpus B")
    ap.add_argument("--seed", type=int, default=7,
                    help="query sampling seed (A uses it, B seed+1; the fusion constant was tuned on B seed 1)")
    ap.add_argument("--no-dense", action="store_true", help="skip the embedded sub-corpus")
    ap.add_argument("--reuse-index", action="store_true",
                    help="keep indexes a previous run built (build times then measure only an incremental refresh)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "index_bench.json"))
    ap.add_argument("--cache", default=str(ROOT / "bench" / ".cache"), help="where corpora and indexes go")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    nq = 15 if args.quick else args.queries
    results: dict = {"quick": args.quick, "seed": args.seed, "cpus": os.cpu_count(), "loadavg_start": os.getloadavg()}

    full_pkgs = QUICK_PACKAGES if args.quick else FULL_PACKAGES
    corpus_a = copy_corpus(cache / "corpus-full", full_pkgs)
    queries_a = build_queries(corpus_a, nq, nq, seed=args.seed)
    (cache / "queries-A.json").write_text(json.dumps(queries_a, indent=1))
    touch_a = next(q["path"] for q in queries_a if q["kind"] == "identifier")
    print(f"[A] corpus {', '.join(full_pkgs)}: {len(queries_a)} queries", file=sys.stderr)
    a = run_index("A", corpus_a, queries_a, "off", touch_a, ["lexical"], args.reuse_index)
    a["packages"] = full_pkgs
    a["queries"] = len(queries_a)
    a["rg_latency"] = rg_latency(corpus_a, queries_a)
    a["bm25s"] = compare_bm25s(cache / "A-index" / "index.db", queries_a)
    results["A_full_lexical"] = a

    if not args.no_dense:
        dense_pkgs = QUICK_PACKAGES if args.quick else [p for p in args.dense_packages.split(",") if p]
        corpus_b = copy_corpus(cache / "corpus-dense", dense_pkgs)
        queries_b = build_queries(corpus_b, nq, nq, seed=args.seed + 1)
        (cache / "queries-B.json").write_text(json.dumps(queries_b, indent=1))
        touch_b = next(q["path"] for q in queries_b if q["kind"] == "identifier")
        print(f"[B] corpus {', '.join(dense_pkgs)}: {len(queries_b)} queries (embedding everything)", file=sys.stderr)
        b = run_index("B", corpus_b, queries_b, "on", touch_b, ["lexical", "dense", "hybrid"], args.reuse_index)
        b["packages"] = dense_pkgs
        b["queries"] = len(queries_b)
        results["B_sub_hybrid"] = b

    results["loadavg_end"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print_table(results)
    print(f"\nJSON: {args.out}")
    return 0


def print_table(r: dict) -> None:
    a = r["A_full_lexical"]
    print("\n== index_bench ==")
    print(f"{r['cpus']} CPUs; load average at start {r['loadavg_start'][0]:.1f}, at end {r['loadavg_end'][0]:.1f} "
          "(other processes share these cores: absolute times are noisy, ratios less so)")
    if a.get("reused_index"):
        print("indexes reused from an earlier run (--reuse-index): the build times below are incremental refreshes")
    print(f"A (full corpus, lexical-only): {a['files']} files, {a['chunks']} chunks, {a['symbols']} symbols, "
          f"{a['queries']} queries")
    rows = [
        ("cold build (s)", f"{a['cold_build_s']:.2f}"),
        ("no-op refresh (s)", f"{a['noop_refresh_s']:.3f}"),
        ("refresh, 1 file touched (s)", f"{a['refresh_one_file_s']:.3f}  "
         f"(ratio to cold build {a['refresh_one_file_s'] / a['cold_build_s']:.4f})"),
        ("index size (MB)", f"{a['size_mb']:.1f}  ({a['size_mb'] / a['source_mb']:.2f}x the {a['source_mb']:.1f} MB "
                            f"of source; {a['size_open_mb']:.1f} while open, with its log)"),
        ("lexical p50 / p95 (ms)", f"{a['latency']['lexical']['p50_ms']:.2f} / {a['latency']['lexical']['p95_ms']:.2f}"),
    ]
    if a.get("rg_latency"):
        rg = a["rg_latency"]
        rows.append(("baseline rg -F -l p50 (ms)", f"{rg['p50_ms']:.1f}  (lexical is "
                     f"{rg['p50_ms'] / a['latency']['lexical']['p50_ms']:.0f}x faster)"))
    rec = a["recall@5"]["lexical"]
    if a.get("bm25s") is None:
        rows.append(("bm25s comparison", "skipped (bm25s is not installed; see --help)"))
    else:
        bm = a["bm25s"]
        rows.append((f"bm25s {bm['version']} (same tokens) p50/p95", f"{bm['p50_ms']:.2f} / {bm['p95_ms']:.2f} ms, "
                     f"recall@5 {bm['recall@5']:.2f} vs FTS5 {rec['all']:.2f}; in-memory build {bm['build_s']:.1f}s"))
    rows.append(("lexical recall@5 (doc / ident / all)",
                 f"{rec.get('docstring', 0):.2f} / {rec.get('identifier', 0):.2f} / {rec['all']:.2f}"))
    for k, v in rows:
        print(f"  {k:<38} {v}")
    b = r.get("B_sub_hybrid")
    if not b:
        return
    print(f"\nB (embedded sub-corpus {', '.join(b['packages'])}): {b['files']} files, {b['chunks']} chunks, "
          f"{b['queries']} queries")
    rows = [
        ("model load (s)", f"{b['open_s']:.2f}"),
        ("cold build: index + embed (s)", f"{b['cold_index_s']:.2f} + {b['embed_s']:.1f}  "
         f"({b['embed_chunks_per_s']:.1f} chunks/s)"),
        ("refresh, 1 file touched (s)", f"{b['refresh_one_file_s']:.3f} + embed {b['refresh_embed_s']:.3f}  "
         f"({b['refresh_reembedded']} chunks re-embedded, {b['refresh_reused_vectors']} vectors reused)"),
        ("query embedding alone p50 / p95 (ms)",
         f"{b['query_embed_ms']['p50_ms']:.1f} / {b['query_embed_ms']['p95_ms']:.1f}"),
        ("index size (MB)", f"{b['size_mb']:.1f}  ({b['size_mb'] / b['source_mb']:.2f}x the source, vectors included)"),
    ]
    for k, v in rows:
        print(f"  {k:<38} {v}")
    print(f"\n  {'mode':<10}{'p50 ms':>9}{'p95 ms':>9}{'R@5 doc':>9}{'R@5 id':>9}{'R@5 all':>9}")
    for mode in ("lexical", "dense", "hybrid"):
        lat, rec = b["latency"][mode], b["recall@5"][mode]
        print(f"  {mode:<10}{lat['p50_ms']:>9.2f}{lat['p95_ms']:>9.2f}{rec.get('docstring', 0):>9.2f}"
              f"{rec.get('identifier', 0):>9.2f}{rec['all']:>9.2f}")
    best_single = max(b["recall@5"]["lexical"]["all"], b["recall@5"]["dense"]["all"])
    print(f"  hybrid / best single recall@5: {b['recall@5']['hybrid']['all'] / best_single:.3f}"
          if best_single else "")


if __name__ == "__main__":
    raise SystemExit(main())
