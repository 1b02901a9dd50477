"""RepoIndex, lexical-only (embeddings="off"): no model is loaded in these tests."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ghostline.index import SCHEMA_VERSION, RepoIndex, lazy_embedder, query, store
from ghostline.index import embed as embed_mod


def write(root: Path, rel: str, text: str) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    write(root, "pkg/__init__.py", "")
    write(root, "pkg/config.py", '''
        import json
        from .paths import config_path


        def load_config(path):
            """Read the TOML configuration file and merge defaults."""
            with open(path) as fh:
                return json.load(fh)


        class RetryPolicy:
            def backoff_delay(self, attempt: int) -> float:
                return min(30.0, 0.5 * 2 ** attempt)
        ''')
    write(root, "pkg/paths.py", '''
        import os


        def config_path():
            return os.path.expanduser("~/.config/app.toml")
        ''')
    write(root, "web/client.ts", '''
        import { sleep } from "./util";
        export class HttpClient {
          async sendRequest(url: string): Promise<string> { await sleep(1); return url; }
        }
        ''')
    write(root, ".gitignore", "build/\n*.log\n")
    write(root, "build/generated.py", "def load_config_generated():\n    pass\n")
    write(root, "debug.log", "load_config failed\n")
    (root / "blob.dat2").write_bytes(b"\x00\x01\x02load_config" * 100)
    write(root, "sub/.gitignore", "secret.py\n")
    write(root, "sub/secret.py", "def hidden_function():\n    pass\n")
    write(root, "sub/visible.py", "def visible_function():\n    pass\n")
    return root


@pytest.fixture
def idx(repo: Path, tmp_path: Path):
    index = RepoIndex.open(repo, embeddings="off")
    index.refresh()
    yield index
    index.close()


def paths(hits) -> list[str]:
    return [h.path for h in hits]


def test_build_respects_gitignore_and_skips_binaries(idx: RepoIndex, repo: Path) -> None:
    st = idx.status()
    assert st.embeddings == "off"
    assert Path(st.db_path) == repo / ".ghostline" / "index" / "index.db"
    assert (repo / ".ghostline" / "index" / ".gitignore").read_text() == "*\n"
    rows = {r[0] for r in idx._store.conn.execute("SELECT DISTINCT path FROM chunks")}
    assert "pkg/config.py" in rows and "web/client.ts" in rows and "sub/visible.py" in rows
    assert not {"build/generated.py", "debug.log", "blob.dat2", "sub/secret.py"} & rows
    assert not any(p.startswith(".ghostline") for p in rows)


def test_lexical_search_finds_definitions_by_split_identifiers(idx: RepoIndex) -> None:
    hits = idx.search("loadConfig", k=3)
    assert hits and hits[0].path == "pkg/config.py"
    assert hits[0].start_line <= 6 <= hits[0].end_line
    assert "def load_config" in hits[0].text
    hits = idx.search("send request", k=3, mode="lexical")
    assert hits[0].path == "web/client.ts" and hits[0].symbol == "HttpClient"
    assert idx.search("", k=3) == []
    assert idx.search("zzzqqqnothing", k=3) == []
    # FTS5 syntax in a query is treated as text, never as an error
    assert isinstance(idx.search('config" OR NEAR( * "', k=3), list)
    # without embeddings, dense and hybrid answer lexically
    assert paths(idx.search("loadConfig", k=3, mode="dense")) == paths(idx.search("loadConfig", k=3, mode="lexical"))
    with pytest.raises(ValueError):
        idx.search("x", mode="fuzzy")  # type: ignore[arg-type]


def test_find_symbol_and_importers(idx: RepoIndex) -> None:
    found = idx.find_symbol("backoff_delay")
    assert [(s.path, s.qualname, s.kind) for s in found] == [("pkg/config.py", "RetryPolicy.backoff_delay", "method")]
    assert found[0].signature == "def backoff_delay(self, attempt: int) -> float"
    assert [s.qualname for s in idx.find_symbol("RetryPolicy.backoff_delay")] == ["RetryPolicy.backoff_delay"]
    assert idx.find_symbol("Other.backoff_delay") == []
    assert [s.path for s in idx.find_symbol("HttpClient")] == ["web/client.ts"]
    # relative imports are resolved to dotted names
    assert [(i.path, i.module) for i in idx.importers("pkg.paths")] == [("pkg/config.py", "pkg.paths")]
    assert {i.path for i in idx.importers("os")} == {"pkg/paths.py"}
    assert {i.path for i in idx.importers("pkg")} == {"pkg/config.py"}  # submodules count
    assert [i.path for i in idx.importers("./util")] == ["web/client.ts"]


def test_refresh_is_incremental_and_tracks_a_merkle_root(idx: RepoIndex, repo: Path) -> None:
    root0 = idx.status().root_hash
    s = idx.refresh()
    assert (s.added, s.changed, s.removed, s.chunks_written) == (0, 0, 0, 0)
    assert s.unchanged == s.scanned and s.root_hash == root0
    # same content, new mtime: re-hashed, not re-chunked
    p = repo / "pkg" / "paths.py"
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10_000_000))
    s = idx.refresh()
    assert (s.changed, s.chunks_written) == (0, 0) and s.root_hash == root0
    # one changed file: only it is re-chunked
    p.write_text(p.read_text() + "\n\ndef brand_new_helper():\n    return 42\n")
    s = idx.refresh()
    assert (s.added, s.changed, s.removed) == (0, 1, 0)
    assert s.root_hash != root0
    assert idx.find_symbol("brand_new_helper")[0].path == "pkg/paths.py"
    # removal
    (repo / "web" / "client.ts").unlink()
    s = idx.refresh()
    assert s.removed == 1 and idx.find_symbol("HttpClient") == []
    assert idx.search("sendRequest", k=3) == []
    tree = dict(idx._store.conn.execute("SELECT dir, hash FROM tree").fetchall())
    assert "web" not in tree and tree[""] == s.root_hash


def test_refresh_paths_and_invalidate(idx: RepoIndex, repo: Path) -> None:
    write(repo, "pkg/new_mod.py", "def freshly_written():\n    pass\n")
    s = idx.refresh(["pkg/new_mod.py", repo / "build" / "generated.py", "../outside.py"])
    assert s.added == 1 and s.scanned == 2  # ignored file considered but not indexed; outside dropped
    assert idx.find_symbol("load_config_generated") == []
    write(repo, "pkg/new_mod.py", "def renamed_function():\n    pass\n")
    idx.invalidate([str(repo / "pkg" / "new_mod.py")])
    assert idx.find_symbol("freshly_written") == []  # the next query re-reads invalidated files
    assert idx.find_symbol("renamed_function")[0].path == "pkg/new_mod.py"
    (repo / "pkg" / "new_mod.py").unlink()
    idx.invalidate(["pkg/new_mod.py"])
    assert "pkg/new_mod.py" not in paths(idx.search("renamed_function", k=3))


def test_huge_and_minified_files_are_skipped(repo: Path) -> None:
    write(repo, "big.py", "x = 1\n" * 200_000)  # 1.2 MB
    write(repo, "min.js", "var a=1;" * 5000)  # one 40 kB line
    with RepoIndex.open(repo, embeddings="off") as idx:
        idx.refresh()
        rows = {r[0] for r in idx._store.conn.execute("SELECT DISTINCT path FROM chunks")}
    assert "big.py" not in rows and "min.js" not in rows and "pkg/config.py" in rows


def test_schema_change_rebuilds_cleanly(repo: Path) -> None:
    with RepoIndex.open(repo, embeddings="off") as idx:
        idx.refresh()
        idx._store.conn.execute("UPDATE meta SET value='0' WHERE key='schema_version'")
    with RepoIndex.open(repo, embeddings="off") as idx:
        assert idx.status().chunks == 0  # rebuilt from scratch
        assert idx._store.meta("schema_version") == str(SCHEMA_VERSION)
        s = idx.refresh()
        assert s.added == s.scanned > 0


def test_two_processes_share_the_index(idx: RepoIndex, repo: Path) -> None:
    write(repo, "pkg/other.py", "def from_other_process():\n    pass\n")
    code = (
        "import sys; from ghostline.index import RepoIndex\n"
        "i = RepoIndex.open(sys.argv[1], embeddings='off'); s = i.refresh()\n"
        "print(s.added, len(i.find_symbol('load_config')))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    # the other process writes while this one holds an open connection
    out = subprocess.run([sys.executable, "-c", code, str(repo)], capture_output=True, text=True, env=env,
                         timeout=60, check=True).stdout.split()
    assert out == ["1", "1"]
    assert idx.find_symbol("from_other_process")[0].path == "pkg/other.py"
    assert idx.refresh().added == 0  # this process sees the other's work


def test_context_snippets_prefers_definitions_from_other_files(idx: RepoIndex, repo: Path) -> None:
    buffer = "from pkg.config import load_config, RetryPolicy\n\n\ndef main():\n    cfg = load_config(p)\n    "
    hits = idx.context_snippets(repo / "app.py", buffer, cursor_line=6, k=3, budget_ms=500)
    assert hits and hits[0].path == "pkg/config.py"
    assert "def load_config" in hits[0].text or "RetryPolicy" in hits[0].text
    # the buffer's own file is never offered back
    own = idx.context_snippets("pkg/config.py", (repo / "pkg/config.py").read_text(), 8, k=5, budget_ms=500)
    assert all(h.path != "pkg/config.py" for h in own)
    # an exhausted budget still returns promptly with what it has (possibly nothing), never raises
    assert isinstance(idx.context_snippets("x.py", buffer, 6, k=3, budget_ms=0), list)


def test_auto_mode_without_a_model_is_lexical_only_and_says_so(repo: Path, monkeypatch) -> None:
    monkeypatch.setattr(embed_mod, "_loaded", None)
    monkeypatch.setattr(embed_mod, "_failure", None)
    monkeypatch.setenv("GHOSTLINE_EMBED_MODEL", str(repo / "no-such-model"))
    monkeypatch.setattr(lazy_embedder, "_noticed", set())
    with RepoIndex.open(repo, embeddings="auto") as idx:
        s = idx.refresh()
        assert s.added > 0 and s.embedded == 0 and s.pending_embeddings == 0
        assert idx.notice is not None and "lexical" in idx.notice
        assert idx.search("load config", k=2, mode="hybrid")[0].path == "pkg/config.py"
        assert idx.status().embeddings.startswith("unavailable")
    from ghostline.index import EmbeddingsUnavailable

    with pytest.raises(EmbeddingsUnavailable):
        RepoIndex.open(repo, embeddings="on")


def test_off_mode_never_imports_the_model_stack(repo: Path) -> None:
    code = (
        "import sys; from ghostline.index import RepoIndex\n"
        "i = RepoIndex.open(sys.argv[1], embeddings='off'); i.refresh(); i.search('load config')\n"
        "i.context_snippets('a.py', 'load_config()', 1)\n"
        "print(any(m in sys.modules for m in ('torch', 'sentence_transformers', 'transformers')))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-c", code, str(repo)], capture_output=True, text=True, env=env,
                         timeout=60, check=True).stdout.strip()
    assert out == "False"


def test_watch_refreshes_changed_files(idx: RepoIndex, repo: Path) -> None:
    import threading

    stop = threading.Event()
    seen: list = []

    def on_refresh(stats) -> None:
        seen.append(stats)
        stop.set()

    t = threading.Thread(target=idx.watch, kwargs={"stop_event": stop, "on_refresh": on_refresh,
                                                    "debounce_ms": 50}, daemon=True)
    t.start()
    import time

    deadline = time.monotonic() + 20
    while not seen and time.monotonic() < deadline:
        write(repo, "pkg/watched.py", f"def watched_function_{len(seen)}():\n    pass\n")
        stop.wait(0.5)
    stop.set()
    t.join(10)
    assert seen and seen[0].touched >= 1
    assert idx.find_symbol("watched_function_0")


def test_refresh_of_a_moved_directory(idx: RepoIndex, repo: Path) -> None:
    (repo / "pkg").rename(repo / "lib")
    s = idx.refresh(["pkg", "lib"])  # what a watcher reports for `mv pkg lib`
    assert s.removed == 2 and s.added == 2  # (the empty __init__.py is not indexed)
    assert [x.path for x in idx.find_symbol("load_config")] == ["lib/config.py"]
    (repo / "lib" / "more").mkdir()
    write(repo, "lib/more/extra.py", "def extra_function():\n    pass\n")
    assert idx.refresh(["lib/more"]).added == 1


def test_definition_outranks_mentions_for_code_identifiers(idx: RepoIndex, repo: Path) -> None:
    calls = "".join(f"    backoff_delay(attempt_{i}) + backoff_delay(attempt_{i})\n" for i in range(8))
    write(repo, "pkg/callers.py", f"def use_it():\n{calls}")
    idx.refresh()
    assert idx.search("backoff_delay", k=1, mode="lexical")[0].path == "pkg/config.py"
    plain = idx._query.lexical_ids("backoff_delay", 5, boost_definitions=False)
    top = idx._query.hits(plain, 1)[0]
    assert top.path == "pkg/callers.py"  # pure BM25 prefers the repeated mentions: the boost matters


def test_analyzer_change_reanalyses_without_a_rebuild(repo: Path) -> None:
    with RepoIndex.open(repo, embeddings="off") as idx:
        first = idx.refresh()
        idx._store.conn.execute("UPDATE meta SET value='1' WHERE key='analyzer_version'")
    with RepoIndex.open(repo, embeddings="off") as idx:
        assert idx.status().chunks > 0  # kept: searchable before the refresh
        assert idx._store.meta("analyzer_version") == str(store.ANALYZER_VERSION)
        s = idx.refresh()
        assert s.changed == first.added and s.unchanged == 0 and s.added == 0
        assert idx.refresh().unchanged == first.added


def _fts_sql(index: RepoIndex) -> str:
    return index._store.conn.execute("SELECT sql FROM sqlite_master WHERE name='chunks_fts'").fetchone()[0]


def test_fts_is_contentless_and_forgets_deleted_chunks(idx: RepoIndex, repo: Path) -> None:
    assert "content=''" in _fts_sql(idx) and "contentless_delete" in _fts_sql(idx)
    assert idx.search("backoff delay", mode="lexical")[0].path == "pkg/config.py"
    (repo / "pkg" / "config.py").unlink()
    idx.refresh()
    assert all(h.path != "pkg/config.py" for h in idx.search("backoff delay", mode="lexical"))
    rows = idx._store.conn.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH 'backoff'").fetchone()[0]
    assert rows == 0


def test_an_fts_table_holding_its_own_text_is_replaced_by_a_contentless_one(repo: Path) -> None:
    with RepoIndex.open(repo, embeddings="off") as idx:
        files = idx.refresh().added
        conn = idx._store.conn
        old = conn.execute("SELECT rowid, body, names, path FROM chunks_fts").fetchall()
        conn.execute("DROP TABLE chunks_fts")  # what an index written before contentless FTS holds
        conn.execute(store._FTS_WITH_CONTENT)
        conn.executemany("INSERT INTO chunks_fts(rowid, body, names, path) VALUES(?,?,?,?)", old)
    with RepoIndex.open(repo, embeddings="off") as idx:
        assert "contentless_delete" in _fts_sql(idx)
        assert idx._store.meta("vacuum_pending") == "1"
        s = idx.refresh()  # every file re-analysed into the new table, then the file compacted
        assert s.changed == files and s.unchanged == 0 and idx._store.meta("vacuum_pending") is None
        assert idx.search("backoff delay", mode="lexical")[0].path == "pkg/config.py"
        assert idx.refresh().unchanged == files


def test_without_contentless_delete_the_fts_keeps_its_own_text(repo: Path, monkeypatch) -> None:
    # SQLite < 3.43 rejects the option; simulate its error
    monkeypatch.setattr(store, "_FTS_CONTENTLESS", store._FTS_CONTENTLESS.replace(
        "contentless_delete=1", "contentless_delete_unknown=1"))
    with RepoIndex.open(repo, embeddings="off") as idx:
        assert "content=''" not in _fts_sql(idx)
        idx.refresh()
        assert idx.search("backoff delay", mode="lexical")[0].path == "pkg/config.py"
        (repo / "pkg" / "config.py").unlink()
        idx.refresh()
        assert all(h.path != "pkg/config.py" for h in idx.search("backoff delay", mode="lexical"))
    with RepoIndex.open(repo, embeddings="off") as idx:  # and it is not rebuilt on every open
        assert idx.refresh().unchanged > 0


def test_long_queries_keep_their_rarest_terms() -> None:
    terms = [f"term{i}" for i in range(20)] + ["everywhere"]
    counts = {"everywhere": 9_000, **{t: 10 + i for i, t in enumerate(terms[:20])}}
    kept = query.prune_common(terms, 10_000, counts)
    assert kept == terms[: query.MAX_QUERY_TERMS]  # the rarest, in order; the near-universal term dropped
    assert query.prune_common(["everywhere", "term5"], 10_000, counts) == ["term5"]
    assert query.prune_common(["everywhere"] * 2, 10_000, counts) == ["everywhere"]  # the rarest stays
    assert query.prune_common(terms, 999, counts) == terms  # a small index prunes nothing


def test_term_counts_follow_the_index(idx: RepoIndex, repo: Path) -> None:
    with idx._store.lock:
        total, counts = idx._store.doc_counts(["backoff", "zzznothing"])
    assert total == idx.status().chunks and counts["backoff"] >= 1 and counts["zzznothing"] == 0
    write(repo, "pkg/more.py", "def zzznothing():\n    pass\n")
    idx.refresh()
    with idx._store.lock:
        assert idx._store.doc_counts(["zzznothing"]) == (total + 1, {"zzznothing": 1})


def test_context_snippets_do_not_take_config_keys_for_definitions(idx: RepoIndex, repo: Path, monkeypatch) -> None:
    # a config file whose keys spell the identifiers near the cursor (and nothing else to match in BM25)
    write(repo, "deploy/values.yaml", "".join(f"{k}:\n  enabled: true\n  size: {i}\n" for i, k in
                                             enumerate(["load_config", "RetryPolicy"] * 1)))
    idx.refresh()
    assert {h.kind for h in idx.find_symbol("load_config")} == {"function", "key"}  # both are symbols
    buffer = "from pkg.config import load_config, RetryPolicy\n\n\ndef main():\n    cfg = load_config(p)\n    "
    monkeypatch.setattr(idx._query, "lexical_ids", lambda *a, **k: [])  # the definitions alone (the YAML matches in BM25)
    hits = idx.context_snippets(repo / "app.py", buffer, cursor_line=6, k=5, budget_ms=500)
    assert {h.path for h in hits} == {"pkg/config.py"}
