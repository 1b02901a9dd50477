"""The token encoding's tables kept between runs: the same encoding back, or nothing when unsure."""

from __future__ import annotations

from pathlib import Path

import pytest
import tiktoken

from ghostline.compaction import encoding_cache

from .helpers import PINNED_ENCODING

TEXTS = ["hello world", "def f(x):\n    return x * 2\n", "héllo wörld ✓ 漢字 🙂 <|endoftext|> text"]


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GHOSTLINE_DATA_DIR", str(tmp_path))
    return tmp_path


def test_kept_tables_give_the_same_encoding() -> None:
    original = tiktoken.get_encoding(PINNED_ENCODING)
    assert encoding_cache.load(PINNED_ENCODING) is None  # nothing kept yet
    encoding_cache.store(PINNED_ENCODING, original)
    kept = encoding_cache.load(PINNED_ENCODING)
    assert kept is not None and kept.name == original.name
    for text in TEXTS:
        assert kept.encode_ordinary(text) == original.encode_ordinary(text)
        assert kept.encode(text, allowed_special="all") == original.encode(text, allowed_special="all")


def test_tables_made_from_other_files_are_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    encoding_cache.store(PINNED_ENCODING, tiktoken.get_encoding(PINNED_ENCODING))
    monkeypatch.setattr(encoding_cache, "_stamp", lambda tk: ["an upgraded tiktoken_ext"])
    assert encoding_cache.load(PINNED_ENCODING) is None


def test_a_torn_copy_is_not_used(data_dir: Path) -> None:
    encoding_cache.store(PINNED_ENCODING, tiktoken.get_encoding(PINNED_ENCODING))
    path = next((data_dir / "cache").glob("tiktoken-*.marshal"))
    path.write_bytes(path.read_bytes()[:1000])
    assert encoding_cache.load(PINNED_ENCODING) is None
