"""Reading the index: BM25 over identifier tokens, dense cosine over the in-memory vectors, their reciprocal
rank fusion; where symbols are defined and who imports a module; snippets for the code around a cursor."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ghostline.index import tokens as tok
from ghostline.index.embed import Embedder
from ghostline.index.lazy_embedder import LazyEmbedder
from ghostline.index.store import IndexStore, like_prefix
from ghostline.index.walker import relative_path

SearchMode = Literal["hybrid", "lexical", "dense"]
SEARCH_MODES = ("hybrid", "lexical", "dense")
# Reciprocal rank fusion constant. Small values let the top ranks of each list dominate; 5 beat 60 (the
# web-search default) on both halves of the bench's tuning query set (bench/index_bench.py, seed 1).
RRF_K = 5
# Lexical: a chunk defining an identifier spelled in the query gains this many times the top BM25 score,
# unless the name has more than MAX_DEFINITIONS definitions.
DEFINITION_BOOST = 1.0
MAX_DEFINITIONS = 5
COMMON_TERM_FRACTION = 0.2
MAX_QUERY_TERMS = 12  # a long docstring query keeps its rarest terms: p95 16 -> 13 ms, same recall on the bench
# BM25 column weights: chunk body, names of the definitions it holds, its path.
BM25_WEIGHTS = (1.0, 3.0, 1.5)
Ranked = list[tuple[int, float]]  # (chunk id, score), best first


@dataclass
class Hit:
    path: str  # relative to the repository root, forward slashes
    start_line: int  # 1-based, inclusive
    end_line: int
    score: float
    text: str
    symbol: str | None = None


@dataclass
class SymbolHit:
    path: str
    name: str
    qualname: str
    kind: str
    signature: str
    line: int
    end_line: int


@dataclass
class ImportHit:
    path: str
    module: str
    line: int


def rrf(lists: list[Ranked], k0: int = RRF_K) -> Ranked:
    """Reciprocal rank fusion of ranked id lists; ties keep first-seen order."""
    scores: dict[int, float] = {}
    for ranked in lists:
        for rank, (cid, _) in enumerate(ranked):
            scores[cid] = scores.get(cid, 0.0) + 1.0 / (k0 + rank + 1)
    return sorted(scores.items(), key=lambda kv: -kv[1])


def prune_common(terms: list[str], total: int, counts: dict[str, int]) -> list[str]:
    """Drop terms found in over COMMON_TERM_FRACTION of the `total` chunks (near-zero IDF, long posting lists:
    they cost most of a query's time and add nothing to its ranking), then all but the MAX_QUERY_TERMS rarest;
    keeps at least the rarest term. counts: chunks holding each term."""
    if total < 1000:
        return terms
    kept = [t for t in terms if counts[t] <= COMMON_TERM_FRACTION * total]
    if len(kept) > MAX_QUERY_TERMS:
        kept = sorted(kept, key=lambda t: counts[t])[:MAX_QUERY_TERMS]
    return kept or [min(terms, key=lambda t: counts[t])]


class IndexQuery:
    """The read side of one index (every method takes the store's lock for its own statements)."""

    def __init__(self, root: Path, store: IndexStore, embeddings: LazyEmbedder) -> None:
        self.root = root
        self._store = store
        self._embeddings = embeddings

    def search(self, query: str, k: int, mode: SearchMode) -> list[Hit]:
        if k <= 0 or not query.strip():
            return []
        emb = self._embeddings.get() if mode != "lexical" else None
        if emb is None or mode == "lexical":
            return self.hits(self.lexical_ids(query, k), k)
        if mode == "dense":
            return self.hits(self.dense_ids(emb, query, k), k)
        depth = max(k * 4, 40)
        return self.hits(rrf([self.lexical_ids(query, depth), self.dense_ids(emb, query, depth)]), k)

    def lexical_ids(self, query: str, k: int, *, boost_definitions: bool = True) -> Ranked:
        """BM25 over identifier tokens; chunks defining an identifier named in the query (written as code:
        snake_case, camelCase, dotted, or a lone word) rank first."""
        terms = tok.query_terms(query)
        if not terms:
            return []
        store = self._store
        with store.lock:
            if len(terms) > 1:
                terms = prune_common(terms, *store.doc_counts(terms))
            rows = store.conn.execute(
                "SELECT rowid, bm25(chunks_fts, ?, ?, ?) AS s FROM chunks_fts WHERE chunks_fts MATCH ? "
                "ORDER BY s LIMIT ?",
                (*BM25_WEIGHTS, tok.fts_query(terms), max(k, 20) if boost_definitions else k),
            ).fetchall()
            ranked = [(int(r), -float(s)) for r, s in rows]
            defs = self._definition_chunks(query) if boost_definitions else {}
        if not defs:
            return ranked[:k]
        top = ranked[0][1] if ranked else 1.0
        scores = dict(ranked)
        for cid in defs:
            # a definition BM25 did not rank (its text may not even repeat the name) still comes first
            scores[cid] = scores.get(cid, top * 0.5) + top * DEFINITION_BOOST
        return sorted(scores.items(), key=lambda kv: -kv[1])[:k]

    def _definition_chunks(self, query: str) -> dict[int, None]:
        """Chunks holding the definition of identifiers the query spells as code (caller holds the lock)."""
        words = tok.code_identifiers(query)
        if not words:
            return {}
        marks = ",".join("?" * len(words))
        rows = self._store.conn.execute(
            f"SELECT name, path, line FROM symbols WHERE name IN ({marks}) LIMIT ?", (*words, 4 * MAX_DEFINITIONS)
        ).fetchall()
        per_name: dict[str, int] = {}
        for name, _p, _l in rows:
            per_name[name] = per_name.get(name, 0) + 1
        out: dict[int, None] = {}
        for name, p, line in rows:
            if per_name[name] > MAX_DEFINITIONS:  # `__init__`, `run`: a definition says nothing
                continue
            cid = self._chunk_at(p, line)
            if cid is not None:
                out[cid] = None
        return out

    def _chunk_at(self, path: str, line: int) -> int | None:
        """The first chunk of `path` holding `line` (caller holds the lock)."""
        row = self._store.conn.execute(
            "SELECT id FROM chunks WHERE path=? AND start_line<=? AND end_line>=? ORDER BY id LIMIT 1",
            (path, line, line),
        ).fetchone()
        return int(row[0]) if row is not None else None

    def dense_ids(self, emb: Embedder, query: str, k: int) -> Ranked:
        vec = np.asarray(emb.encode_query(query), dtype=np.float32).reshape(-1)
        norm = float(np.linalg.norm(vec))
        with self._store.lock:
            current = self._store.dense.current(self._store.conn)
        if current is None or norm == 0.0:
            return []
        ids, matrix = current
        import torch  # loaded already with the embedding model; its own thread pool, so no BLAS oversubscription

        # cosine similarity, as sqlite-vec's distance_metric=cosine ranks; fp16 halves the memory-bound scan
        # (54k x 384: 1.6 ms vs 8.5 ms in fp32 here) and leaves the top 10 the same (9.98/10 measured)
        query16 = torch.from_numpy((vec / norm).astype(np.float16))
        scores = torch.mv(torch.from_numpy(matrix), query16).float().numpy()
        n = min(k, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(ids[i]), float(scores[i])) for i in top]

    def hits(self, ranked: Ranked, k: int, exclude: Callable[[str], bool] | None = None) -> list[Hit]:
        """The chunks of `ranked` as hits, at most k, skipping those whose path `exclude` refuses."""
        if not ranked:
            return []
        ids = [cid for cid, _ in ranked]
        rows = {}
        with self._store.lock:
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                marks = ",".join("?" * len(part))
                for row in self._store.conn.execute(
                    f"SELECT id, path, start_line, end_line, text, symbol FROM chunks WHERE id IN ({marks})", part
                ):
                    rows[row[0]] = row
        out: list[Hit] = []
        for cid, score in ranked:
            row = rows.get(cid)
            if row is None or (exclude is not None and exclude(row[1])):
                continue
            out.append(Hit(row[1], row[2], row[3], float(score), row[4], row[5]))
            if len(out) >= k:
                break
        return out

    def find_symbol(self, name: str, limit: int = 50) -> list[SymbolHit]:
        """Where is `name` defined: exact name or qualified name (`Class.method`), case-insensitive fallback."""
        name = name.strip()
        if not name:
            return []
        short = name.replace("::", ".").rsplit(".", 1)[-1]
        with self._store.lock:
            rows = self._store.conn.execute(
                "SELECT path, name, qualname, kind, signature, line, end_line FROM symbols "
                "WHERE name = ? COLLATE NOCASE ORDER BY path, line LIMIT ?",
                (short, limit * 4),
            ).fetchall()
        hits = [SymbolHit(*r) for r in rows]
        if short != name:
            want = name.replace("::", ".")
            hits = [h for h in hits if h.qualname.replace("::", ".") == want
                    or h.qualname.replace("::", ".").endswith("." + want)]
        exact = [h for h in hits if h.name == short]
        return (exact or hits)[:limit]

    def importers(self, module: str, limit: int = 200) -> list[ImportHit]:
        """Who imports `module` (or a submodule of it): one hit per import statement."""
        module = module.strip()
        if not module:
            return []
        with self._store.lock:
            rows = self._store.conn.execute(
                "SELECT path, module, line FROM imports WHERE module = ? OR module LIKE ? ESCAPE '\\' "
                "OR module LIKE ? ESCAPE '\\' ORDER BY path, line LIMIT ?",
                (module, like_prefix(module, "."), like_prefix(module, "/"), limit),
            ).fetchall()
        return [ImportHit(*r) for r in rows]

    def context_snippets(self, path: str | os.PathLike[str], text: str, cursor_line: int, k: int,
                         budget_ms: float) -> list[Hit]:
        """See RepoIndex.context_snippets."""
        t_end = time.perf_counter() + budget_ms / 1000.0
        # a refresh writing a batch holds the connection: wait for it at most the budget
        if not self._store.lock.acquire(timeout=max(budget_ms / 1000.0, 0.001)):
            return []
        try:
            return self._snippets(relative_path(self.root, path) or str(path), text, cursor_line, k, t_end)
        finally:
            self._store.lock.release()

    def _snippets(self, rel: str, text: str, cursor_line: int, k: int, t_end: float) -> list[Hit]:
        """Definitions of the identifiers near the cursor, BM25 neighbours of the lines above it, and dense
        neighbours when the model is loaded, fused; chunks of the buffer's own file left out."""
        lines = text.splitlines()
        cur = max(0, min(len(lines), cursor_line) - 1)
        window = lines[max(0, cur - 30) : min(len(lines), cur + 10)]
        near = "\n".join(lines[max(0, cur - 6) : cur + 1])
        lists = [self._definitions_of(_identifiers_near(near, window), rel)]
        if time.perf_counter() < t_end:
            lists.append(self.lexical_ids("\n".join(window[-12:]), k * 4))
        if t_end - time.perf_counter() > 0.015 and (emb := self._embeddings.loaded()) is not None:
            lists.append(self.dense_ids(emb, near or text[:500], k * 4))
        return self.hits(rrf(lists), k, exclude=lambda p: p == rel)

    def _definitions_of(self, idents: list[str], rel: str) -> Ranked:
        """Chunks defining these identifiers outside `rel`, in the identifiers' order (lock held)."""
        if not idents:
            return []
        marks = ",".join("?" * len(idents))
        rows = self._store.conn.execute(
            # config keys (`name`, `timeout`) are not what an identifier in code refers to
            f"SELECT s.path, s.line, s.name FROM symbols s WHERE s.name IN ({marks}) AND s.path != ? "
            "AND s.kind NOT IN ('key', 'table') LIMIT 64", (*idents, rel),
        ).fetchall()
        order = {w: i for i, w in enumerate(idents)}
        rows.sort(key=lambda r: order.get(r[2], 99))
        defs: dict[int, float] = {}
        for p, line, _ in rows:
            cid = self._chunk_at(p, line)
            if cid is not None:
                defs.setdefault(cid, 1.0)
        return list(defs.items())


def _identifiers_near(near: str, window: list[str]) -> list[str]:
    """Up to 24 identifiers around the cursor, the closest first, without stopwords and short names."""
    out: list[str] = []
    seen: set[str] = set()
    for w in reversed(tok._WORD.findall(near) + tok._WORD.findall("\n".join(window))):
        if len(w) > 2 and w.lower() not in tok.STOPWORDS and w not in seen:
            seen.add(w)
            out.append(w)
    return out[:24]
