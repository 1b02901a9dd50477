"""The index benchmark runs end to end on its tiny lexical-only corpus (no model, a few seconds)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a benchmark smoke run: deselect locally with -m "not slow"

ROOT = Path(__file__).resolve().parents[2]


def test_index_bench_quick_lexical(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "index_bench.py"), "--quick", "--no-dense", "--out", str(out),
         "--cache", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "== index_bench ==" in r.stdout
    data = json.loads(out.read_text())
    a = data["A_full_lexical"]
    assert a["files"] > 10 and a["chunks"] > 100
    assert 0.0 <= a["recall@5"]["lexical"]["all"] <= 1.0 and a["queries"] > 10
